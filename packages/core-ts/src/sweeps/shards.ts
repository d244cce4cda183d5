// A cluster is a set of shards: units of work (a pack of training runs, a gradient study at one
// batch size, a run of the finding suite) are given to N shards by a deterministic,
// cost-balanced assignment (longest first, each to the least loaded shard), which depends on
// the units alone: every shard of a job array computes the same assignment without talking to
// the others, and a rerun of the array gives every shard the same units again (it then does
// only what the store lacks). The shard comes from --shard k/N, or from the job array's
// environment: Slurm's SLURM_ARRAY_TASK_ID (counted from SLURM_ARRAY_TASK_MIN) and
// SLURM_ARRAY_TASK_COUNT, or Kubernetes' JOB_COMPLETION_INDEX of an Indexed Job with the count
// from --shards or BSX_SHARDS.

import { BsxError } from '../errors.js';

/** Shard `index` (from 1) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** What the assignment needs of a unit: a stable id and a cost (any unit, the same on every host). */
export interface ShardableUnit {
  id: string;
  cost: number;
}

/** Reads `k/N` (1 <= k <= N): shard k of N. */
export function parseShard(text: string, where = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const k = m ? Number(m[1]) : Number.NaN;
  const n = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isSafeInteger(k) || !Number.isSafeInteger(n) || n < 1 || k < 1 || k > n) {
    throw new BsxError('BSX_INVALID_ARGUMENT', `${where} must be k/N with 1 <= k <= N (shard k of N), got '${text}'`);
  }
  return { index: k, count: n };
}

/** The shard and a sentence saying where it came from. */
export interface ShardChoice {
  shard: Shard;
  source: string;
}

function envInt(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new BsxError('BSX_INVALID_ENV', `${name} must be an integer, got '${v}'`);
  const n = Number(v);
  if (n < min) throw new BsxError('BSX_INVALID_ENV', `${name} must be >= ${min}, got ${n}`);
  return n;
}

/**
 * The shard to run: `--shard` when given, else the job array's environment (Slurm, then
 * Kubernetes); undefined when none says (the whole study in one process). `shards` is the
 * count for Kubernetes (--shards; BSX_SHARDS when not given).
 */
export function chooseShard(opts: { shard?: string; shards?: number; env?: NodeJS.ProcessEnv } = {}): ShardChoice | undefined {
  const env = opts.env ?? process.env;
  if (opts.shard !== undefined) {
    const shard = parseShard(opts.shard);
    if (opts.shards !== undefined && opts.shards !== shard.count) {
      throw new BsxError('BSX_INVALID_ARGUMENT', `--shards ${opts.shards} disagrees with --shard ${opts.shard}`);
    }
    return { shard, source: `--shard ${shard.index}/${shard.count}` };
  }
  const slurmId = envInt(env, 'SLURM_ARRAY_TASK_ID', 0);
  if (slurmId !== undefined) {
    const count = envInt(env, 'SLURM_ARRAY_TASK_COUNT', 1);
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN', 0) ?? 0;
    const max = envInt(env, 'SLURM_ARRAY_TASK_MAX', 0);
    const n = opts.shards ?? count;
    if (n === undefined) throw new BsxError('BSX_INVALID_ENV', 'SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give --shards N');
    if (max !== undefined && max - min + 1 !== n) {
      throw new BsxError('BSX_INVALID_ENV', `the array's task ids run from ${min} to ${max}, not ${n} consecutive ids: submit it as --array=0-${n - 1} (a step or a list of ids is not a set of shards)`);
    }
    const k = slurmId - min + 1;
    if (k < 1 || k > n) throw new BsxError('BSX_INVALID_ENV', `SLURM_ARRAY_TASK_ID ${slurmId} is not one of ${n} tasks from ${min}`);
    return {
      shard: { index: k, count: n },
      source: `SLURM_ARRAY_TASK_ID=${slurmId} of ${n} tasks (SLURM_ARRAY_TASK_MIN=${min}${opts.shards !== undefined ? ', count from --shards' : ', SLURM_ARRAY_TASK_COUNT'})`,
    };
  }
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX', 0);
  if (k8s !== undefined) {
    const n = opts.shards ?? envInt(env, 'BSX_SHARDS', 1);
    if (n === undefined) {
      throw new BsxError('BSX_INVALID_ARGUMENT', 'JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the number of shards, the Job\'s completions, as --shards N or BSX_SHARDS');
    }
    if (k8s >= n) throw new BsxError('BSX_INVALID_ENV', `JOB_COMPLETION_INDEX ${k8s} is not below the ${n} shards`);
    return {
      shard: { index: k8s + 1, count: n },
      source: `JOB_COMPLETION_INDEX=${k8s} of ${n} completions (${opts.shards !== undefined ? '--shards' : 'BSX_SHARDS'})`,
    };
  }
  if (opts.shards !== undefined) throw new BsxError('BSX_INVALID_ARGUMENT', '--shards is given but no shard: give --shard k/N, or run in a Slurm array or a Kubernetes Indexed Job');
  return undefined;
}

/**
 * The units of each shard: longest first (ties by id), each to the shard with the least cost so
 * far (ties to the lowest shard). Depends only on the units' ids and costs.
 */
export function assignShards<U extends ShardableUnit>(units: readonly U[], count: number): U[][] {
  if (!Number.isSafeInteger(count) || count < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `shards: count must be a positive integer, got ${count}`);
  const ids = new Set<string>();
  for (const u of units) {
    if (ids.has(u.id)) throw new BsxError('BSX_INVALID_ARGUMENT', `shards: two units have the id ${u.id}`);
    ids.add(u.id);
  }
  const order = [...units].sort((a, b) => b.cost - a.cost || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const load = new Array<number>(count).fill(0);
  const out: U[][] = Array.from({ length: count }, () => []);
  for (const u of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s]! < load[best]!) best = s;
    load[best]! += u.cost;
    out[best]!.push(u);
  }
  // each shard keeps the units in the order they were given (dependencies first)
  const pos = new Map(units.map((u, i) => [u.id, i]));
  for (const list of out) list.sort((a, b) => pos.get(a.id)! - pos.get(b.id)!);
  return out;
}

/** The units of one shard (all of them without a shard). */
export function unitsOfShard<U extends ShardableUnit>(units: readonly U[], shard: Shard | undefined): U[] {
  if (!shard) return [...units];
  return assignShards(units, shard.count)[shard.index - 1]!;
}
