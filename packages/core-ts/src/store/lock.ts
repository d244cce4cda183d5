// Exclusive locks on run directories, across processes. The lock is the file `<dir>/lock`,
// created with open(..., 'wx') (fails if it exists) and holding {pid, hostname, startedAt,
// token}. A lock whose process is gone from this host (process.kill(pid, 0) fails with ESRCH:
// the holder crashed or was killed with kill -9) is stale and is taken over: one process at a
// time (serialised by `<dir>/lock.takeover`, itself created with 'wx') checks it is still the
// same stale lock, renames it away and then competes for a fresh 'wx' create like everybody
// else. A lock held by a live process is waited for (polling) or reported as BSX_RUN_LOCKED.
// Locks are released by release() (idempotent) and, for locks still held, when the process
// exits normally; a process killed by a signal leaves a stale lock that the next opener takes over.

import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BsxError } from '../errors.js';

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO 8601 time the lock was taken. */
  startedAt: string;
  /** Random, unique to this acquisition: release() only removes its own lock. */
  token?: string;
}

export interface LockOptions {
  /** Wait (polling) for a live holder to release, instead of throwing BSX_RUN_LOCKED. Default false. */
  wait?: boolean;
  /** With wait: give up (BSX_RUN_LOCKED) after this many ms. Default: wait indefinitely. */
  timeoutMs?: number;
  /** With wait: how often to look again, in ms. Default 200. */
  pollMs?: number;
  /** Cancels a wait (BSX_CANCELLED). */
  signal?: AbortSignal;
}

export interface DirLock {
  /** The lock file. */
  readonly path: string;
  readonly info: LockInfo;
  readonly released: boolean;
  /** Removes the lock file if it is still this lock's; later calls do nothing. */
  release(): void;
}

export const LOCK_FILE = 'lock';
const TAKEOVER_FILE = 'lock.takeover';
/** A lock file that cannot be parsed is assumed mid-creation for this long, then treated as stale. */
const UNREADABLE_GRACE_MS = 10_000;
/** A takeover marker older than this was left by a crashed process and is removed. */
const TAKEOVER_STALE_MS = 10_000;

const held = new Set<DirLock>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const l of [...held]) {
      try {
        l.release();
      } catch {
        // exiting anyway; a lock left behind is stale and will be taken over
      }
    }
  });
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether process `pid` exists on this host (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) !== 'ESRCH';
  }
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo> | null;
    if (
      v &&
      typeof v === 'object' &&
      Number.isSafeInteger(v.pid) &&
      (v.pid as number) > 0 &&
      typeof v.hostname === 'string' &&
      typeof v.startedAt === 'string'
    ) {
      return v as LockInfo;
    }
  } catch {
    // fall through
  }
  return undefined;
}

type Holder =
  | { state: 'free' }
  | { state: 'live'; info: LockInfo }
  | { state: 'stale'; text: string; why: string }
  | { state: 'unknown'; ageMs: number };

async function inspect(path: string): Promise<Holder> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(path, 'utf8');
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (e) {
    if (errno(e) === 'ENOENT') return { state: 'free' };
    throw e;
  }
  const info = parseLock(text);
  if (!info) {
    const ageMs = Date.now() - mtimeMs;
    // A holder writes its lock file right after creating it; an unreadable one that stays so
    // was left by a process that died in between.
    if (ageMs > UNREADABLE_GRACE_MS) return { state: 'stale', text, why: 'unreadable' };
    return { state: 'unknown', ageMs };
  }
  if (info.hostname === hostname() && !processAlive(info.pid)) {
    return { state: 'stale', text, why: `process ${info.pid} is gone` };
  }
  return { state: 'live', info };
}

async function tryCreate(path: string, info: LockInfo): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  }
  try {
    await fh.writeFile(`${JSON.stringify(info)}\n`);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw e;
  }
  await fh.close();
  return true;
}

/**
 * Removes the stale lock whose text was `text`, if it is still that one. Only one process at a
 * time does this (the takeover marker), so nobody can remove a lock another process has just
 * created in its place.
 */
async function takeOver(dir: string, path: string, text: string): Promise<void> {
  const marker = join(dir, TAKEOVER_FILE);
  let fh;
  try {
    fh = await open(marker, 'wx');
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
    try {
      if (Date.now() - (await stat(marker)).mtimeMs > TAKEOVER_STALE_MS) await unlink(marker);
    } catch (e2) {
      if (errno(e2) !== 'ENOENT') throw e2;
    }
    return; // somebody else is taking over; look again
  }
  try {
    await fh.close();
    let now: string;
    try {
      now = await readFile(path, 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT') return;
      throw e;
    }
    if (now !== text) return; // replaced meanwhile: look again
    const aside = `${path}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
    await rename(path, aside);
    await unlink(aside).catch(() => undefined);
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

function lockedError(dir: string, info: LockInfo | undefined, waitedMs?: number): BsxError {
  const who = info
    ? `process ${info.pid}${info.hostname !== hostname() ? ` on host ${info.hostname}` : ''} since ${info.startedAt}`
    : 'another process (its lock file is being written)';
  const waited = waitedMs !== undefined ? ` (gave up after waiting ${Math.round(waitedMs)} ms)` : '';
  return new BsxError('BSX_RUN_LOCKED', `run directory ${dir} is in use by ${who}; wait for it or stop it${waited}`, {
    path: join(dir, LOCK_FILE),
  });
}

/** Takes the exclusive lock on directory `dir` (which must exist). */
export async function acquireLock(dir: string, opts: LockOptions = {}): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  const pollMs = Math.max(1, opts.pollMs ?? 200);
  const t0 = performance.now();
  for (;;) {
    if (opts.signal?.aborted) throw new BsxError('BSX_CANCELLED', `cancelled while waiting for the lock of ${dir}`);
    const info: LockInfo = {
      pid: process.pid,
      hostname: hostname(),
      startedAt: new Date().toISOString(),
      token: randomBytes(8).toString('hex'),
    };
    if (await tryCreate(path, info)) return makeLock(path, info);
    const holder = await inspect(path);
    if (holder.state === 'free') continue;
    if (holder.state === 'stale') {
      await takeOver(dir, path, holder.text);
      continue;
    }
    const liveInfo = holder.state === 'live' ? holder.info : undefined;
    // An unreadable lock younger than the grace period is waited for even without `wait`,
    // briefly: it is almost always a holder between creating and writing its file.
    if (!opts.wait && holder.state === 'live') throw lockedError(dir, liveInfo);
    if (!opts.wait && holder.state === 'unknown' && performance.now() - t0 > 1000) throw lockedError(dir, undefined);
    const waited = performance.now() - t0;
    if (opts.wait && opts.timeoutMs !== undefined && waited >= opts.timeoutMs) throw lockedError(dir, liveInfo, waited);
    const delay = opts.wait ? pollMs : Math.min(pollMs, 50);
    try {
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
    } catch {
      throw new BsxError('BSX_CANCELLED', `cancelled while waiting for the lock of ${dir}`);
    }
  }
}

function makeLock(path: string, info: LockInfo): DirLock {
  let released = false;
  const lock: DirLock = {
    path,
    info,
    get released() {
      return released;
    },
    release() {
      if (released) return;
      released = true;
      held.delete(lock);
      try {
        // Only remove the file if it is still ours (it may have been taken over if this process
        // looked dead to someone, e.g. a hand-deleted lock re-created by another process).
        const cur = parseLock(readFileSync(path, 'utf8'));
        if (cur && cur.token === info.token && cur.pid === info.pid) unlinkSync(path);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
    },
  };
  held.add(lock);
  installExitHook();
  return lock;
}

/** Reads the lock file of `dir`, if any (for messages and status displays). */
export function readLockInfo(dir: string): LockInfo | undefined {
  try {
    return parseLock(readFileSync(join(dir, LOCK_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}
