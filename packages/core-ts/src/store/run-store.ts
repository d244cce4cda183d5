// The run store: one directory per training run, named by the hash of the run's key (the
// normalised TrainSpec and the identity of its data: its name, limits and the fingerprint of
// the files' content), laid out for a person to browse:
//
//   <root>/runs/<specHash(key)>/
//     spec.json      the key, its hash and a one-line description ("b1024x1@0.01 -> b64x30@0.01, sgd, seeds 0,1, ...")
//     metrics.csv    one row per seed and epoch (header: see metricsHeader)
//     summary.json   written only once the run has finished
//     checkpoint/    the latest checkpoint: one .npy per tensor and state.json
//     exports/<name>/<tensor>.npy   weight exports
//     lock           present while a process has the run open (a lease, see lock.ts)
//
// Finished runs are reused (finished()), interrupted ones resumed (loadCheckpoint() and
// truncateMetrics()). Every file is replaced atomically (written beside, fsynced, renamed), the
// checkpoint directory is swapped by renames, and a run is open in one process at a time
// (lock.ts), so Ctrl-C, kill -9 or a second process never leave a half-written run behind.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BsxError } from '../errors.js';
import type { TrainSpec } from '../experiments/train.js';
import { decodeNpy, encodeNpy, type NpyData } from '../io/npy.js';
import { fsyncDir, TMP_NAME_RE, tmpName, writeFileAtomic, writeFileDurable, writeJsonAtomic } from './atomic.js';
import { canonicalJson, specHash } from './hash.js';
import { acquireLock, type DirLock, type LockOptions } from './lock.js';
import {
  anyValue,
  arrayOf,
  integer,
  matching,
  nonEmptyString,
  object,
  oneOf,
  parseJsonFile,
  string,
  type Check,
  type CheckJsonOptions,
} from './validate.js';

// ---------------------------------------------------------------------------
// Keys

/** The identity of a run's data. Leave a limit out when the whole split is used. */
export interface RunData {
  name: string;
  trainLimit?: number;
  testLimit?: number;
  /**
   * The content of the data files (fingerprintFiles: SHA-256 of each file's bytes), so that a
   * run is not reused once the files in the same folder have changed.
   */
  fingerprint?: string;
}

/** What identifies a run: a normalised spec (widths given) and its data. */
export interface RunKey {
  spec: TrainSpec;
  data: RunData;
}

/** The content of spec.json. */
export interface RunSpecFile extends RunKey {
  format: 1;
  hash: string;
  description: string;
  createdAt: string;
}

function invalid(msg: string): never {
  throw new BsxError('BSX_INVALID_ARGUMENT', msg);
}

/** Deep copy without object properties whose value is undefined (optional fields left out). */
function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) out[k] = stripUndefined(x);
    return out;
  }
  return v;
}

/**
 * Checks a run key and returns a copy without undefined fields: the form that is hashed and
 * written to spec.json. Every field of the key counts, including fields TrainSpec may gain later.
 */
export function normalizeRunKey(key: RunKey): RunKey {
  if (key === null || typeof key !== 'object') invalid('run key must be an object {spec, data}');
  const { spec, data } = key;
  if (spec === null || typeof spec !== 'object') invalid('run key: spec must be an object');
  if (!Array.isArray(spec.widths)) invalid('run key: spec.widths must be given (normalise the spec with normalizeSpec first)');
  if (!Array.isArray(spec.seeds) || !Array.isArray(spec.phases)) invalid('run key: spec.seeds and spec.phases must be arrays');
  if (data === null || typeof data !== 'object') invalid('run key: data must be an object {name, trainLimit?, testLimit?}');
  if (typeof data.name !== 'string' || data.name === '') invalid('run key: data.name must be a non-empty string');
  if (data.fingerprint !== undefined && (typeof data.fingerprint !== 'string' || data.fingerprint === '')) {
    invalid('run key: data.fingerprint must be a non-empty string');
  }
  for (const f of ['trainLimit', 'testLimit'] as const) {
    const v = data[f];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) invalid(`run key: data.${f} must be a positive integer, got ${String(v)}`);
  }
  const out = stripUndefined({ spec, data }) as RunKey;
  canonicalJson(out); // rejects NaN, functions, ... with the path
  return out;
}

/** The hash that names a run's directory. */
export function runHash(key: RunKey): string {
  return specHash(normalizeRunKey(key));
}

/** A one-line description of a run: "b1024x1@0.01 -> b64x30@0.01, sgd, seeds 0,1, widths 784-1024-1024-10, mnist". */
export function describeRun(key: RunKey): string {
  const { spec, data } = key;
  // the optimiser as `sgd` or `sgd(momentum=0.9,nesterov)` (its hyperparameters in key order)
  const text = (o: unknown): string => {
    if (typeof o === 'string') return o;
    const { name, ...hp } = o as { name: string; [k: string]: unknown };
    const parts = Object.entries(hp).map(([k, v]) => (v === true ? k : `${k}=${String(v)}`));
    return parts.length > 0 ? `${name}(${parts.join(',')})` : name;
  };
  const opts = [...new Set(spec.phases.map((p) => text(p.optimizer)))];
  const mixed = opts.length > 1;
  const phases = spec.phases.map((p) => `b${p.batchSize}x${p.epochs}@${p.lr}${mixed ? ` ${text(p.optimizer)}` : ''}`).join(' -> ');
  const limits = [
    data.trainLimit !== undefined ? `train ${data.trainLimit}` : '',
    data.testLimit !== undefined ? `test ${data.testLimit}` : '',
  ].filter((s) => s !== '');
  const parts = [phases];
  if (!mixed && opts.length === 1) parts.push(String(opts[0]));
  parts.push(`seeds ${spec.seeds.join(',')}`);
  if (spec.widths) parts.push(`widths ${spec.widths.join('-')}`);
  parts.push(`${data.name}${limits.length > 0 ? ` (${limits.join(', ')})` : ''}`);
  return parts.join(', ');
}

// ---------------------------------------------------------------------------
// Metrics CSV

export interface MetricsRow {
  seed: number;
  /** 1-based epoch (0 may be used for the initial weights). */
  epoch: number;
  /** Index of the phase the epoch belongs to. */
  phase: number;
  trainLoss: number;
  /** Fraction in [0, 1]. */
  trainAcc: number;
  testLoss: number;
  testAcc: number;
  weightDistance: number;
  biasDistance: number;
  weightNorm: number;
  biasNorm: number;
  /** One per layer. */
  cosine: number[];
  samplesPerSec: number;
  diverged: boolean;
}

export const METRICS_FILE = 'metrics.csv';

const LEAD_COLS = ['seed', 'epoch', 'phase'] as const;
const NUM_COLS = [
  ['train_loss', 'trainLoss'],
  ['train_acc', 'trainAcc'],
  ['test_loss', 'testLoss'],
  ['test_acc', 'testAcc'],
  ['weight_distance', 'weightDistance'],
  ['bias_distance', 'biasDistance'],
  ['weight_norm', 'weightNorm'],
  ['bias_norm', 'biasNorm'],
] as const;

/** The CSV columns for `layers` cosine columns. */
export function metricsHeader(layers: number): string[] {
  const cos = Array.from({ length: layers }, (_, i) => `cosine_l${i + 1}`);
  return [...LEAD_COLS, ...NUM_COLS.map(([c]) => c), ...cos, 'samples_per_sec', 'diverged'];
}

/** A double as text that parses back to the same bits: String(x), -0, nan, inf, -inf. */
export function formatCsvNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parses formatCsvNumber's output (and plain decimal numbers); undefined if `s` is not a number. */
export function parseCsvNumber(s: string): number | undefined {
  const t = s.trim().toLowerCase();
  if (t === 'nan') return Number.NaN;
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  return NUMBER_RE.test(t) ? Number(t) : undefined;
}

function checkRow(r: MetricsRow, layers: number, i: number): void {
  const where = `metrics row ${i} (seed ${String(r?.seed)}, epoch ${String(r?.epoch)})`;
  if (r === null || typeof r !== 'object') invalid(`metrics row ${i} must be an object`);
  for (const f of LEAD_COLS) {
    if (!Number.isSafeInteger(r[f]) || r[f] < 0) invalid(`${where}: ${f} must be an integer >= 0, got ${String(r[f])}`);
  }
  for (const [, f] of NUM_COLS) if (typeof r[f] !== 'number') invalid(`${where}: ${f} must be a number`);
  if (typeof r.samplesPerSec !== 'number') invalid(`${where}: samplesPerSec must be a number`);
  if (!Array.isArray(r.cosine) || r.cosine.some((c) => typeof c !== 'number')) invalid(`${where}: cosine must be an array of numbers`);
  if (r.cosine.length !== layers) invalid(`${where}: has ${r.cosine.length} cosine values, expected ${layers} (one per layer, as in the other rows)`);
  if (typeof r.diverged !== 'boolean') invalid(`${where}: diverged must be a boolean`);
}

function rowLine(r: MetricsRow): string {
  const cells = [
    String(r.seed),
    String(r.epoch),
    String(r.phase),
    ...NUM_COLS.map(([, f]) => formatCsvNumber(r[f])),
    ...r.cosine.map(formatCsvNumber),
    formatCsvNumber(r.samplesPerSec),
    r.diverged ? 'true' : 'false',
  ];
  return cells.join(',');
}

/** metrics.csv text for `rows` (all with the same number of cosine values). */
export function formatMetricsCsv(rows: readonly MetricsRow[], layers = rows[0]?.cosine.length ?? 0): string {
  rows.forEach((r, i) => checkRow(r, layers, i));
  return [metricsHeader(layers).join(','), ...rows.map(rowLine)].join('\n') + '\n';
}

/** Parses metrics.csv text; `name` (the file) is named in errors (BSX_RUN_CORRUPT). Returns the rows and the layer count. */
export function parseMetricsCsv(text: string, name: string): { rows: MetricsRow[]; layers: number } {
  const fail = (line: number, problem: string): never => {
    throw new BsxError('BSX_RUN_CORRUPT', `${name}: line ${line}: ${problem}`, { path: name });
  };
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) fail(1, 'empty file (expected a header line)');
  const header = lines[0]!.split(',');
  const layers = header.length - metricsHeader(0).length;
  if (layers < 0 || header.join(',') !== metricsHeader(layers).join(',')) {
    fail(1, `unexpected header "${lines[0]}" (expected "${metricsHeader(layers < 0 ? 0 : layers).join(',')}" with one cosine_l<i> column per layer)`);
  }
  const rows: MetricsRow[] = [];
  for (let li = 1; li < lines.length; li++) {
    const cells = lines[li]!.split(',');
    if (cells.length !== header.length) fail(li + 1, `${cells.length} fields, expected ${header.length}`);
    const num = (k: number): number => {
      const v = parseCsvNumber(cells[k]!);
      return v === undefined ? fail(li + 1, `column ${header[k]}: "${cells[k]}" is not a number`) : v;
    };
    const int = (k: number): number => {
      const v = num(k);
      return Number.isSafeInteger(v) && v >= 0 ? v : fail(li + 1, `column ${header[k]}: "${cells[k]}" is not an integer >= 0`);
    };
    const d = cells[cells.length - 1]!.trim().toLowerCase();
    if (d !== 'true' && d !== 'false' && d !== '1' && d !== '0') fail(li + 1, `column diverged: "${cells[cells.length - 1]}" is not true/false`);
    const n0 = LEAD_COLS.length;
    const row = { seed: int(0), epoch: int(1), phase: int(2) } as MetricsRow;
    NUM_COLS.forEach(([, f], j) => {
      row[f] = num(n0 + j);
    });
    const c0 = n0 + NUM_COLS.length;
    row.cosine = Array.from({ length: layers }, (_, j) => num(c0 + j));
    row.samplesPerSec = num(c0 + layers);
    row.diverged = d === 'true' || d === '1';
    rows.push(row);
  }
  return { rows, layers };
}

// ---------------------------------------------------------------------------
// Checkpoints

/**
 * The name of a tensor's slot ('param', 'snapshot', 'adamM', ...): any non-empty string (the
 * trainer decides which slots a checkpoint holds; the store only keeps them).
 */
export type CheckpointSlot = string;

export interface CheckpointTensor {
  slot: CheckpointSlot;
  index: number;
  shape: number[];
  data: Float32Array;
}

export interface Checkpoint {
  /** Epochs completed. */
  epoch: number;
  /** Phase of the next epoch (or of the last completed one; the caller's convention). */
  phase: number;
  tensors: CheckpointTensor[];
  optimizerSteps: number[];
  /** The optimiser, as the trainer describes it (any JSON value, e.g. 'sgd'). */
  optimizer: unknown;
  rng: { nextEpoch: number };
  /** Anything else JSON can carry. */
  extra?: unknown;
}

interface StateTensor {
  slot: CheckpointSlot;
  index: number;
  shape: number[];
  dtype: '<f4';
  file: string;
  sha256: string;
}

interface StateFile {
  format: 1;
  epoch: number;
  phase: number;
  optimizer: unknown;
  optimizerSteps: number[];
  rng: { nextEpoch: number };
  extra?: unknown;
  savedAt: string;
  tensors: StateTensor[];
  /**
   * SHA-256 of the canonical JSON of every other field (which include each tensor file's
   * SHA-256): the whole checkpoint is checked by it. Absent in checkpoints of earlier versions.
   */
  checksum?: string;
}

/** The checksum of a state.json's content (without its checksum field), as it reads back. */
function stateChecksum(state: Omit<StateFile, 'checksum'>): string {
  return createHash('sha256').update(canonicalJson(JSON.parse(JSON.stringify(state))), 'utf8').digest('hex');
}

export const CHECKPOINT_DIR = 'checkpoint';
const STATE_FILE = 'state.json';
/** checkpoint.tmp-<pid>-<hex> (being written or abandoned) and checkpoint.old-<pid>-<hex> (being replaced). */
const CHECKPOINT_SIDE_RE = /^checkpoint\.(tmp|old)-\d+-[0-9a-f]+$/;

/** The file of a tensor: <slot>-<index>.npy, the slot percent-encoded where it is not a plain name. */
function tensorFile(slot: string, index: number): string {
  return `${encodeURIComponent(slot)}-${index}.npy`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkCheckpoint(cp: Checkpoint): void {
  const intField = (v: unknown, f: string): void => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) invalid(`checkpoint: ${f} must be an integer >= 0, got ${String(v)}`);
  };
  if (cp === null || typeof cp !== 'object') invalid('checkpoint must be an object');
  intField(cp.epoch, 'epoch');
  intField(cp.phase, 'phase');
  if (cp.optimizer === undefined) invalid('checkpoint: optimizer must be given');
  canonicalJson(cp.optimizer);
  if (!Array.isArray(cp.optimizerSteps)) invalid('checkpoint: optimizerSteps must be an array');
  cp.optimizerSteps.forEach((s, i) => intField(s, `optimizerSteps[${i}]`));
  if (cp.rng === null || typeof cp.rng !== 'object') invalid('checkpoint: rng must be an object {nextEpoch}');
  intField(cp.rng.nextEpoch, 'rng.nextEpoch');
  if (cp.extra !== undefined) canonicalJson(cp.extra);
  if (!Array.isArray(cp.tensors)) invalid('checkpoint: tensors must be an array');
  const seen = new Set<string>();
  cp.tensors.forEach((t, i) => {
    const f = `checkpoint: tensors[${i}]`;
    if (typeof t.slot !== 'string' || t.slot === '') invalid(`${f}.slot must be a non-empty string, got ${String(t.slot)}`);
    intField(t.index, `tensors[${i}].index`);
    const id = tensorFile(t.slot, t.index);
    if (seen.has(id)) invalid(`${f}: slot ${t.slot} index ${t.index} appears twice`);
    seen.add(id);
    if (!(t.data instanceof Float32Array)) invalid(`${f}.data must be a Float32Array`);
    if (!Array.isArray(t.shape)) invalid(`${f}.shape must be an array`);
    let n = 1;
    t.shape.forEach((d, j) => {
      intField(d, `tensors[${i}].shape[${j}]`);
      n *= d;
    });
    if (n !== t.data.length) invalid(`${f}: shape [${t.shape.join(', ')}] holds ${n} values but data has ${t.data.length}`);
  });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw e;
  }
}

function corrupt(file: string, problem: string, cause?: unknown): never {
  throw new BsxError('BSX_RUN_CORRUPT', `${file}: ${problem}`, { path: file, ...(cause !== undefined ? { cause } : {}) });
}

const stateCheck = object(
  {
    format: oneOf(1),
    epoch: integer(0),
    phase: integer(0),
    optimizer: anyValue,
    optimizerSteps: arrayOf(integer(0)),
    rng: object({ nextEpoch: integer(0) }),
    tensors: arrayOf(
      object({ slot: nonEmptyString, index: integer(0), shape: arrayOf(integer(0)), dtype: oneOf('<f4'), file: string, sha256: matching(/^[0-9a-f]{64}$/, 'a SHA-256 in hex') }),
    ),
  },
  { savedAt: string, checksum: matching(/^[0-9a-f]{64}$/, 'a SHA-256 in hex') },
) as Check<StateFile>;

/** What the user can do about a damaged checkpoint. */
const CHECKPOINT_HINT = 'rerun with --no-resume to start the run over';

/** Reads and checks state.json of a checkpoint directory (throws BSX_RUN_CORRUPT naming it and the field). */
async function readState(dir: string): Promise<StateFile> {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') corrupt(file, 'missing: the checkpoint is incomplete');
    throw e;
  }
  const s = parseJsonFile(file, text, stateCheck, { hint: CHECKPOINT_HINT });
  if (s.checksum !== undefined) {
    const { checksum, ...rest } = s;
    if (stateChecksum(rest) !== checksum) {
      corrupt(file, `checksum does not match the content (a field was edited or the file damaged); ${CHECKPOINT_HINT}`);
    }
  }
  const seen = new Set<string>();
  s.tensors.forEach((t, i) => {
    if (t.file !== tensorFile(t.slot, t.index)) {
      corrupt(file, `tensors[${i}].file must be ${tensorFile(t.slot, t.index)}, got ${JSON.stringify(t.file)}; ${CHECKPOINT_HINT}`);
    }
    if (seen.has(t.file)) corrupt(file, `tensors[${i}]: ${t.file} is listed twice; ${CHECKPOINT_HINT}`);
    seen.add(t.file);
  });
  return s;
}

/** Reads a complete checkpoint directory, checking every file; throws BSX_RUN_CORRUPT naming the file at fault. */
async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  const s = await readState(dir);
  const tensors: CheckpointTensor[] = [];
  for (const t of s.tensors) {
    const file = join(dir, t.file);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (e) {
      if (errno(e) === 'ENOENT') corrupt(file, `missing (listed in ${STATE_FILE}); ${CHECKPOINT_HINT}`);
      throw e;
    }
    const arr = decodeNpy(bytes, file, 'BSX_RUN_CORRUPT');
    if (arr.dtype !== '<f4') corrupt(file, `dtype ${arr.dtype}, expected <f4; ${CHECKPOINT_HINT}`);
    if (!sameShape(arr.shape, t.shape)) {
      corrupt(file, `shape (${arr.shape.join(', ')}) differs from (${t.shape.join(', ')}) in ${STATE_FILE}; ${CHECKPOINT_HINT}`);
    }
    if (sha256(bytes) !== t.sha256) {
      corrupt(file, `content does not match its SHA-256 in ${STATE_FILE} (the file was damaged or changed); ${CHECKPOINT_HINT}`);
    }
    tensors.push({ slot: t.slot, index: t.index, shape: arr.shape, data: arr.data as Float32Array });
  }
  const cp: Checkpoint = {
    epoch: s.epoch,
    phase: s.phase,
    tensors,
    optimizerSteps: [...s.optimizerSteps],
    optimizer: s.optimizer,
    rng: { nextEpoch: s.rng.nextEpoch },
  };
  if (s.extra !== undefined) cp.extra = s.extra;
  return cp;
}

// ---------------------------------------------------------------------------
// Summaries: JSON, with non-finite numbers (a diverged run's loss) kept as "NaN", "Infinity",
// "-Infinity" strings instead of JSON.stringify's null, and turned back into numbers on reading.

function summaryReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

/** @internal Turns the strings summary.json keeps for non-finite numbers back into numbers (JSON.parse's reviver). */
export function summaryReviver(_k: string, v: unknown): unknown {
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v;
}

export const SUMMARY_FILE = 'summary.json';
export const SPEC_FILE = 'spec.json';
export const EXPORTS_DIR = 'exports';
const SAFE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// ---------------------------------------------------------------------------
// The store

export type RunOpenOptions = LockOptions;

export class RunStore {
  readonly root: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') invalid('RunStore: root must be a non-empty path');
    this.root = root;
  }

  /** The directory of the run with this key: <root>/runs/<specHash(key)>. */
  runDir(key: RunKey): string {
    return join(this.root, 'runs', runHash(key));
  }

  /**
   * Opens the run with this key (creating its directory and spec.json if needed) and takes its
   * lock: BSX_RUN_LOCKED if another live process has it open, unless `wait`. BSX_RUN_CORRUPT if
   * an existing spec.json does not match the key.
   */
  async open(key: RunKey, opts: RunOpenOptions = {}): Promise<RunHandle> {
    const nkey = normalizeRunKey(key);
    const hash = specHash(nkey);
    const dir = join(this.root, 'runs', hash);
    await mkdir(dir, { recursive: true });
    const lock = await acquireLock(dir, opts);
    try {
      await removeLeftovers(dir);
      const description = describeRun(nkey);
      await ensureSpecFile(join(dir, SPEC_FILE), nkey, hash, description);
      return new RunHandle(dir, nkey, hash, description, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }
}

/** Removes temporary files left by killed writers (the lock is held, so none is in use). Checkpoint directories are left for recovery. */
async function removeLeftovers(dir: string): Promise<void> {
  const sweep = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if (errno(e) === 'ENOENT') return;
      throw e;
    }
    for (const ent of entries) {
      if (ent.isFile() && (TMP_NAME_RE.test(ent.name) || /^lock\.stale-/.test(ent.name))) {
        await unlink(join(d, ent.name)).catch(() => undefined);
      }
    }
  };
  await sweep(dir);
  let exportsEntries;
  try {
    exportsEntries = await readdir(join(dir, EXPORTS_DIR), { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  for (const ent of exportsEntries) if (ent.isDirectory()) await sweep(join(dir, EXPORTS_DIR, ent.name));
}

const specFileCheck = object({
  format: oneOf(1),
  hash: string,
  description: string,
  spec: object({ widths: arrayOf(integer(1)), seeds: arrayOf(integer(0)), phases: arrayOf(object({})) }),
  data: object({ name: string }),
  createdAt: string,
}) as unknown as Check<RunSpecFile>;

async function ensureSpecFile(file: string, key: RunKey, hash: string, description: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
    const content: RunSpecFile = { format: 1, hash, description, spec: key.spec, data: key.data, createdAt: new Date().toISOString() };
    await writeJsonAtomic(file, content);
    return;
  }
  const hint = 'move the run directory away to start the run afresh';
  const j = parseJsonFile(file, text, specFileCheck, { hint });
  let same = false;
  let theirs = '';
  try {
    same = canonicalJson({ spec: j.spec, data: j.data }) === canonicalJson(key);
    theirs = describeRun(normalizeRunKey({ spec: j.spec, data: j.data }));
  } catch {
    // content that is no run key: not the same
  }
  if (!same) {
    corrupt(
      file,
      `does not match the run it is the directory of (expected "${description}"${theirs ? `, found "${theirs}"` : ''}): ` +
        'a hash collision or a hand-edited file; move the run directory away to start the run afresh',
    );
  }
}

/** An open run (holding its lock). Made by RunStore.open. */
export class RunHandle {
  private lock: DirLock;
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(
    readonly dir: string,
    /** The normalised key. */
    readonly key: RunKey,
    readonly hash: string,
    readonly description: string,
    lock: DirLock,
  ) {
    this.lock = lock;
  }

  get released(): boolean {
    return this.lock.released;
  }

  /** Releases the lock; the handle can no longer be used. Idempotent. */
  release(): void {
    this.lock.release();
  }

  /** Runs `fn` after every earlier operation of this handle has finished (one at a time). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lock.released) return Promise.reject(new BsxError('BSX_INVALID_ARGUMENT', `run ${this.dir}: the handle was released`));
    if (this.lock.lost) {
      return Promise.reject(
        new BsxError('BSX_RUN_LOCKED', `run ${this.dir}: another process broke this process's lease on the run (it was not renewed in time); nothing more is written to it`),
      );
    }
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  /**
   * The content of summary.json if the run has finished, else undefined; checked with `check`
   * when given (BSX_RUN_CORRUPT naming the file and the field, with `opts.hint` appended).
   */
  finished<T = unknown>(check?: Check<T>, opts: CheckJsonOptions = {}): Promise<T | undefined> {
    return this.serial(async () => {
      const file = this.path(SUMMARY_FILE);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if (errno(e) === 'ENOENT') return undefined;
        throw e;
      }
      return parseJsonFile(file, text, check ?? (anyValue as Check<T>), { ...opts, reviver: summaryReviver });
    });
  }

  /** The lease of the run's lock was broken by another process (see lock.ts): nothing more is written. */
  get lost(): boolean {
    return this.lock.lost;
  }

  /** Called once if the lease of the run's lock is broken by another process. */
  onLost(fn: () => void): void {
    this.lock.onLost(fn);
  }

  /** Removes summary.json (a damaged one, before the run is trained again). */
  discardSummary(): Promise<void> {
    return this.serial(async () => {
      await unlink(this.path(SUMMARY_FILE)).catch((e: unknown) => {
        if (errno(e) !== 'ENOENT') throw e;
      });
    });
  }

  /** Writes summary.json (atomically): marks the run finished. */
  writeSummary(summary: unknown): Promise<void> {
    return this.serial(async () => {
      if (summary === undefined || typeof summary === 'function') invalid('writeSummary: summary must be a JSON value');
      await writeFileAtomic(this.path(SUMMARY_FILE), `${JSON.stringify(summary, summaryReplacer, 2)}\n`);
    });
  }

  private async readMetricsFile(): Promise<{ rows: MetricsRow[]; layers: number } | undefined> {
    const file = this.path(METRICS_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return parseMetricsCsv(text, file);
    } catch (e) {
      if (e instanceof BsxError) throw new BsxError(e.code, `${e.message}; ${CHECKPOINT_HINT}`, { path: file, cause: e });
      throw e;
    }
  }

  /** The rows of metrics.csv (empty if none yet). */
  readMetrics(): Promise<MetricsRow[]> {
    return this.serial(async () => (await this.readMetricsFile())?.rows ?? []);
  }

  /**
   * Adds rows to metrics.csv by rewriting it atomically. Every row must have as many cosine
   * values as the file has columns, and no (seed, epoch) may be recorded twice.
   */
  appendMetrics(rows: readonly MetricsRow[]): Promise<void> {
    return this.serial(async () => {
      if (!Array.isArray(rows)) invalid('appendMetrics: rows must be an array');
      if (rows.length === 0) return;
      const cur = await this.readMetricsFile();
      const first = rows[0] as Partial<MetricsRow> | undefined;
      const layers = cur?.layers ?? (Array.isArray(first?.cosine) ? first.cosine.length : 0);
      rows.forEach((r, i) => checkRow(r, layers, i));
      const seen = new Set((cur?.rows ?? []).map((r) => `${r.seed}/${r.epoch}`));
      for (const r of rows) {
        const id = `${r.seed}/${r.epoch}`;
        if (seen.has(id)) invalid(`appendMetrics: seed ${r.seed} epoch ${r.epoch} is already in ${this.path(METRICS_FILE)}`);
        seen.add(id);
      }
      await writeFileAtomic(this.path(METRICS_FILE), formatMetricsCsv([...(cur?.rows ?? []), ...rows], layers));
    });
  }

  /** Removes metrics.csv (a run that starts over), readable or not. */
  clearMetrics(): Promise<void> {
    return this.serial(async () => {
      await unlink(this.path(METRICS_FILE)).catch((e: unknown) => {
        if (errno(e) !== 'ENOENT') throw e;
      });
    });
  }

  /** Drops the rows with epoch > upToEpoch (atomically); returns how many were dropped. */
  truncateMetrics(upToEpoch: number): Promise<number> {
    return this.serial(async () => {
      if (typeof upToEpoch !== 'number' || Number.isNaN(upToEpoch)) invalid('truncateMetrics: upToEpoch must be a number');
      const cur = await this.readMetricsFile();
      if (!cur) return 0;
      const kept = cur.rows.filter((r) => r.epoch <= upToEpoch);
      const dropped = cur.rows.length - kept.length;
      if (dropped > 0) await writeFileAtomic(this.path(METRICS_FILE), formatMetricsCsv(kept, cur.layers));
      return dropped;
    });
  }

  /**
   * Replaces the checkpoint: writes the directory checkpoint.tmp-<pid>-<hex> (tensors, then
   * state.json last), renames checkpoint/ to checkpoint.old-<pid>-<hex>, the new one into place,
   * and deletes the old.
   */
  saveCheckpoint(cp: Checkpoint): Promise<void> {
    return this.serial(async () => {
      checkCheckpoint(cp);
      const target = this.path(CHECKPOINT_DIR);
      const tmp = tmpName(target);
      await mkdir(tmp);
      try {
        const tensors: StateTensor[] = [];
        for (const t of cp.tensors) {
          const file = tensorFile(t.slot, t.index);
          const bytes = encodeNpy(t.data, t.shape);
          await writeFileDurable(join(tmp, file), bytes);
          tensors.push({ slot: t.slot, index: t.index, shape: [...t.shape], dtype: '<f4', file, sha256: sha256(bytes) });
        }
        const state: Omit<StateFile, 'checksum'> = {
          format: 1,
          epoch: cp.epoch,
          phase: cp.phase,
          optimizer: cp.optimizer,
          optimizerSteps: [...cp.optimizerSteps],
          rng: { nextEpoch: cp.rng.nextEpoch },
          ...(cp.extra !== undefined ? { extra: cp.extra } : {}),
          savedAt: new Date().toISOString(),
          tensors,
        };
        const withChecksum: StateFile = { ...state, checksum: stateChecksum(state) };
        await writeFileDurable(join(tmp, STATE_FILE), `${JSON.stringify(withChecksum, null, 2)}\n`);
        await fsyncDir(tmp);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
        throw e;
      }
      const old = join(this.dir, `${CHECKPOINT_DIR}.old-${tmp.slice(tmp.lastIndexOf('.tmp-') + 5)}`);
      let moved = false;
      try {
        await rename(target, old);
        moved = true;
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
      await rename(tmp, target);
      await fsyncDir(this.dir);
      if (moved) await rm(old, { recursive: true, force: true });
      await this.removeCheckpointSides();
    });
  }

  private async checkpointSides(): Promise<string[]> {
    const entries = await readdir(this.dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && CHECKPOINT_SIDE_RE.test(e.name)).map((e) => join(this.dir, e.name));
  }

  private async removeCheckpointSides(): Promise<void> {
    for (const d of await this.checkpointSides()) await rm(d, { recursive: true, force: true });
  }

  /**
   * The latest checkpoint, or undefined if there is none. If checkpoint/ is missing because a
   * swap was interrupted, the newest complete checkpoint.tmp-* or checkpoint.old-* (state.json
   * present and every file intact) is moved into place and returned. Throws BSX_RUN_CORRUPT
   * naming the file at fault if the checkpoint is damaged.
   */
  loadCheckpoint(): Promise<Checkpoint | undefined> {
    return this.serial(async () => {
      const target = this.path(CHECKPOINT_DIR);
      if (await exists(target)) {
        const cp = await readCheckpointDir(target);
        await this.removeCheckpointSides();
        return cp;
      }
      // Recovery: candidates with a readable state.json, newest (most epochs, then latest write) first.
      const candidates: { dir: string; epoch: number; mtime: number }[] = [];
      for (const d of await this.checkpointSides()) {
        try {
          const s = await readState(d);
          candidates.push({ dir: d, epoch: s.epoch, mtime: (await stat(join(d, STATE_FILE))).mtimeMs });
        } catch {
          // incomplete: state.json missing or half-written
        }
      }
      candidates.sort((a, b) => b.epoch - a.epoch || b.mtime - a.mtime);
      let firstError: unknown;
      for (const c of candidates) {
        let cp: Checkpoint;
        try {
          cp = await readCheckpointDir(c.dir);
        } catch (e) {
          firstError ??= e;
          continue;
        }
        await rename(c.dir, target);
        await fsyncDir(this.dir);
        await this.removeCheckpointSides();
        return cp;
      }
      if (firstError !== undefined) throw firstError;
      await this.removeCheckpointSides();
      return undefined;
    });
  }

  /** Writes exports/<name>/<tensor>.npy for each tensor (each file atomically); returns the directory. */
  exportTensors(name: string, tensors: readonly { name: string; data: NpyData; shape: number[] }[]): Promise<string> {
    return this.serial(async () => {
      if (typeof name !== 'string' || !SAFE_NAME_RE.test(name)) invalid(`exportTensors: name must match ${SAFE_NAME_RE}, got ${JSON.stringify(name)}`);
      if (!Array.isArray(tensors)) invalid('exportTensors: tensors must be an array');
      const names = new Set<string>();
      const encoded = tensors.map((t, i) => {
        if (typeof t.name !== 'string' || !SAFE_NAME_RE.test(t.name)) invalid(`exportTensors: tensors[${i}].name must match ${SAFE_NAME_RE}, got ${JSON.stringify(t.name)}`);
        if (names.has(t.name)) invalid(`exportTensors: tensor name ${t.name} appears twice`);
        names.add(t.name);
        return { file: `${t.name}.npy`, bytes: encodeNpy(t.data, t.shape) };
      });
      const out = join(this.dir, EXPORTS_DIR, name);
      await mkdir(out, { recursive: true });
      for (const e of encoded) await writeFileAtomic(join(out, e.file), e.bytes);
      return out;
    });
  }
}
