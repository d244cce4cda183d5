// Exclusive locks on run directories, across processes and hosts. The lock is the file
// `<dir>/lock`, created with open(..., 'wx') (fails if it exists) and holding {pid, hostname,
// pidNamespace, startedAt, token, leaseMs}. It is a lease: while the lock is held, the holder
// touches the file (its mtime) every leaseMs / 4 and checks that the file is still its own (a
// holder whose lease was broken marks its lock lost and tells its owner, see onLost).
//
// A lock is stale, and is taken over, when
//   - its holder ran in this host's process namespace (same hostname and pidNamespace) and that
//     process is gone (process.kill(pid, 0) fails with ESRCH: it crashed or was killed with
//     kill -9): at once, as a pid means something here;
//   - otherwise (another host, another container, a lock of an earlier bsx without the
//     namespace) when its lease expired: the file was not touched for leaseMs by the clock of
//     this host, or this process has seen it unchanged for leaseMs by its own monotonic clock
//     (which does not depend on the hosts' clocks agreeing). A pid means nothing on another host.
// One process at a time (serialised by `<dir>/lock.takeover`, itself created with 'wx') checks
// it is still the same stale lock, renames it away and then competes for a fresh 'wx' create
// like everybody else. A lock whose holder is live is waited for (polling) or reported as
// BSX_RUN_LOCKED. Locks are released by release() (idempotent) and, for locks still held, when
// the process exits normally; a process killed by a signal leaves a lock that the next opener
// takes over (at once on this host, after the lease elsewhere).

import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, statSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
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
  /**
   * The process namespace the pid belongs to (the boot id and the pid namespace, on Linux):
   * locks of the same hostname but another namespace (another container) are judged by their
   * lease, not by their pid.
   */
  pidNamespace?: string;
  /** How long the lease lasts without being renewed (the holder touches the file every leaseMs / 4). */
  leaseMs?: number;
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
  /**
   * The lease of a lock this process takes, in ms (default: BSX_LEASE_SECONDS x 1000, else
   * 60 s). Locks of other hosts are judged by the lease written in their file.
   */
  leaseMs?: number;
}

export interface DirLock {
  /** The lock file. */
  readonly path: string;
  readonly info: LockInfo;
  readonly released: boolean;
  /**
   * The lease was broken by another process (the file is no longer this lock's): whoever holds
   * the lock must stop writing what it guards.
   */
  readonly lost: boolean;
  /** Called once when the lock is found lost (at once if it already is). */
  onLost(fn: () => void): void;
  /** Removes the lock file if it is still this lock's; later calls do nothing. */
  release(): void;
}

export const LOCK_FILE = 'lock';
const TAKEOVER_FILE = 'lock.takeover';
/** A lock file that cannot be parsed is assumed mid-creation for this long, then treated as stale. */
const UNREADABLE_GRACE_MS = 10_000;
/** A takeover marker older than this was left by a crashed process and is removed. */
const TAKEOVER_STALE_MS = 10_000;
/** The lease when neither the options nor BSX_LEASE_SECONDS say otherwise. */
export const DEFAULT_LEASE_MS = 60_000;

/** The lease of the locks this process takes: BSX_LEASE_SECONDS (a number > 0) or 60 s. */
export function defaultLeaseMs(): number {
  const v = process.env.BSX_LEASE_SECONDS;
  if (v === undefined || v === '') return DEFAULT_LEASE_MS;
  const n = /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : Number.NaN;
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new BsxError('BSX_INVALID_ENV', `BSX_LEASE_SECONDS must be a number of seconds > 0, got '${v}'`);
  }
  return n * 1000;
}

let namespaceCache: string | undefined | null = null;

/** This process's namespace: the kernel's boot id and the pid namespace (Linux), else undefined. */
export function pidNamespace(): string | undefined {
  if (namespaceCache !== null) return namespaceCache;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    namespaceCache = `${boot}/${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    namespaceCache = undefined;
  }
  return namespaceCache;
}

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
      typeof v.startedAt === 'string' &&
      (v.leaseMs === undefined || (typeof v.leaseMs === 'number' && v.leaseMs > 0)) &&
      (v.pidNamespace === undefined || typeof v.pidNamespace === 'string')
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
  | { state: 'live'; info: LockInfo; ageMs: number }
  | { state: 'stale'; text: string; why: string }
  | { state: 'unknown'; ageMs: number };

/** Whether a lock's pid can be checked here: taken in this host's process namespace. */
function sameNamespace(info: LockInfo): boolean {
  if (info.hostname !== hostname()) return false;
  // a lock without a namespace (an earlier bsx) is judged by its hostname, as it was then
  return info.pidNamespace === undefined || info.pidNamespace === pidNamespace();
}

/** What a process saw of a lock file: its text and mtime, and since when (monotonic) unchanged. */
type Seen = { text: string; mtimeMs: number; since: number };

async function inspect(path: string, seen?: Map<string, Seen>): Promise<Holder> {
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
  const ageMs = Date.now() - mtimeMs;
  if (sameNamespace(info)) {
    if (!processAlive(info.pid)) return { state: 'stale', text, why: `process ${info.pid} is gone` };
    return { state: 'live', info, ageMs };
  }
  const lease = info.leaseMs ?? DEFAULT_LEASE_MS;
  if (ageMs > lease) return { state: 'stale', text, why: `its lease expired ${Math.round((ageMs - lease) / 1000)} s ago` };
  // unchanged for a lease by this process's own clock: expired, whatever the hosts' clocks say
  if (seen) {
    const now = performance.now();
    const prev = seen.get(path);
    if (!prev || prev.text !== text || prev.mtimeMs !== mtimeMs) seen.set(path, { text, mtimeMs, since: now });
    else if (now - prev.since > lease) return { state: 'stale', text, why: `its lease was not renewed for ${Math.round((now - prev.since) / 1000)} s` };
  }
  return { state: 'live', info, ageMs };
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

function lockedError(dir: string, info: LockInfo | undefined, waitedMs?: number, ageMs?: number): BsxError {
  const lease =
    info && !sameNamespace(info) && ageMs !== undefined
      ? ` (lease of ${Math.round((info.leaseMs ?? DEFAULT_LEASE_MS) / 1000)} s renewed ${Math.max(0, Math.round(ageMs / 1000))} s ago)`
      : '';
  const who = info
    ? `process ${info.pid}${info.hostname !== hostname() ? ` on host ${info.hostname}` : ''} since ${info.startedAt}${lease}`
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
  const leaseMs = opts.leaseMs ?? defaultLeaseMs();
  if (!(leaseMs > 0) || !Number.isFinite(leaseMs)) throw new BsxError('BSX_INVALID_ARGUMENT', `lock: leaseMs must be a number > 0, got ${leaseMs}`);
  const t0 = performance.now();
  const seen = new Map<string, Seen>();
  for (;;) {
    if (opts.signal?.aborted) throw new BsxError('BSX_CANCELLED', `cancelled while waiting for the lock of ${dir}`);
    const ns = pidNamespace();
    const info: LockInfo = {
      pid: process.pid,
      hostname: hostname(),
      ...(ns !== undefined ? { pidNamespace: ns } : {}),
      startedAt: new Date().toISOString(),
      token: randomBytes(8).toString('hex'),
      leaseMs,
    };
    if (await tryCreate(path, info)) return makeLock(path, info);
    const holder = await inspect(path, seen);
    if (holder.state === 'free') continue;
    if (holder.state === 'stale') {
      await takeOver(dir, path, holder.text);
      continue;
    }
    const liveInfo = holder.state === 'live' ? holder.info : undefined;
    const liveAge = holder.state === 'live' ? holder.ageMs : undefined;
    // An unreadable lock younger than the grace period is waited for even without `wait`,
    // briefly: it is almost always a holder between creating and writing its file.
    if (!opts.wait && holder.state === 'live') throw lockedError(dir, liveInfo, undefined, liveAge);
    if (!opts.wait && holder.state === 'unknown' && performance.now() - t0 > 1000) throw lockedError(dir, undefined);
    const waited = performance.now() - t0;
    if (opts.wait && opts.timeoutMs !== undefined && waited >= opts.timeoutMs) throw lockedError(dir, liveInfo, waited, liveAge);
    const delay = opts.wait ? pollMs : Math.min(pollMs, 50);
    try {
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
    } catch {
      throw new BsxError('BSX_CANCELLED', `cancelled while waiting for the lock of ${dir}`);
    }
  }
}

/** Whether the lock file at `path` still holds this acquisition's token. */
function stillOurs(path: string, info: LockInfo): boolean {
  try {
    const cur = parseLock(readFileSync(path, 'utf8'));
    return cur !== undefined && cur.token === info.token && cur.pid === info.pid;
  } catch {
    return false;
  }
}

function makeLock(path: string, info: LockInfo): DirLock {
  let released = false;
  let lost = false;
  const lostHandlers: (() => void)[] = [];
  const markLost = (): void => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    for (const fn of lostHandlers.splice(0)) fn();
  };
  // renew the lease: touch the file while it is still ours (touching a file another process
  // has put in its place, between the check and the touch, only renews that holder's lease)
  const timer = setInterval(() => {
    void (async () => {
      if (released || lost) return;
      if (!stillOurs(path, info)) {
        if (!released) markLost();
        return;
      }
      const now = new Date();
      await utimes(path, now, now).catch(() => undefined);
    })();
  }, Math.max(50, Math.floor((info.leaseMs ?? DEFAULT_LEASE_MS) / 4)));
  timer.unref();
  const lock: DirLock = {
    path,
    info,
    get released() {
      return released;
    },
    get lost() {
      return lost;
    },
    onLost(fn) {
      if (lost) fn();
      else lostHandlers.push(fn);
    },
    release() {
      if (released) return;
      released = true;
      clearInterval(timer);
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

/** Who holds the lock of `dir`, for status displays: undefined when nobody (or a stale lock) does. */
export function lockHolder(dir: string): (LockInfo & { renewedMsAgo: number }) | undefined {
  const path = join(dir, LOCK_FILE);
  let info: LockInfo | undefined;
  let mtimeMs: number;
  try {
    info = parseLock(readFileSync(path, 'utf8'));
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
  if (!info) return undefined;
  const age = Date.now() - mtimeMs;
  if (sameNamespace(info) ? !processAlive(info.pid) : age > (info.leaseMs ?? DEFAULT_LEASE_MS)) return undefined;
  return { ...info, renewedMsAgo: age };
}
