// Atomic file writes: the data goes to a temporary file beside the target
// (`<target>.tmp-<pid>-<random>`), is flushed to disk, and is then renamed over the target, so
// a reader (or a process that was killed mid-write) sees either the old file or the new one,
// never a partial one. The directory is fsynced afterwards where the platform allows it, so
// the rename itself survives a power cut.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Matches the names of the temporary files and directories this module and the run store create. */
export const TMP_NAME_RE = /\.tmp-\d+-[0-9a-f]{12}$/;

/** A name for a temporary sibling of `path`, unique to this process and call. */
export function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Errors that mean "directories cannot be fsynced here" (Windows, some file systems): ignored. */
function ignorableDirSyncError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EBADF' || code === 'EACCES' || code === 'ENOTSUP';
}

/** Flushes a directory's entries (renames, creations) to disk where the platform allows it. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Synchronous fsyncDir. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `data` to a new file at `path` (which must not exist) and fsyncs it. */
export async function writeFileDurable(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(toBytes(data));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces the file at `path` with `data` atomically: readers and crashes see the old content or
 * the new, never a mix. The temporary file is removed if the write fails.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tmpName(path);
  try {
    await writeFileDurable(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** Synchronous writeFileAtomic. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tmpName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const bytes = toBytes(data);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // it may never have been created
    }
    throw e;
  }
  fsyncDirSync(dirname(path));
}

/** JSON text as the store writes it: 2-space indented, with a final newline. */
function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Writes `value` as indented JSON to `path` atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, jsonText(value));
}

/** Synchronous writeJsonAtomic. */
export function writeJsonAtomicSync(path: string, value: unknown): void {
  writeFileAtomicSync(path, jsonText(value));
}
