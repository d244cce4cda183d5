// Sweeps: a study (study.ts) made into units of work and run through the run store. A training
// unit is a pack of runs of the grid that share the batch-size schedule and the optimiser
// (their seeds and learning rates become replicas of one ensemble, trainPack); a gradient unit
// is one gradient study at one batch size and layer. `planSweep` lists the units with the time
// each needs (from the engine's speed measured on the spot), `runSweep` does what the store
// lacks (finished runs and points are read back, interrupted runs resume) for the whole study
// or for one shard of a cluster (shards.ts), `sweepStatus` counts what is done, running (and by
// whom: the leases of the run store's locks) and to do. Results live in the run store
// (<out>/runs/...) and in <out>/grad/<study>-<hash>/L<layer>-b<b>/point.json.

import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FINGERPRINT_CACHE_FILE, fingerprintFiles } from '../datasets/fingerprint.js';
import { loadMnist, mnistDir } from '../datasets/mnist.js';
import { Dataset } from '../engine/dataset.js';
import { decodeNpy } from '../io/npy.js';
import { BsxError } from '../errors.js';
import { gradientStudy, type GradStudyPoint, type RegimeModel } from '../experiments/grad-study.js';
import { checkMemory, estimateGradStudyMemory, estimateTrainingMemory } from '../experiments/memory.js';
import { runTraining, runTrainingPack } from '../experiments/run.js';
import { packSignature, type TrainEvent, type TrainSpec } from '../experiments/train.js';
import { defaultSuiteChunk } from '../findings/suite.js';
import { NO_SPEED, measureSpeed, readGradPoint, storedRunState, trainingSecondsLeft, trialSeconds, type PlanItem, type PlanStatus, type SpeedModel } from './units.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { specHash } from '../store/hash.js';
import { acquireLock, lockHolder, type LockInfo } from '../store/lock.js';
import { RunStore, runHash, type RunData } from '../store/run-store.js';
import { object, oneOf, parseJsonFile, string, type Check } from '../store/validate.js';
import { Journal } from './journal.js';
import { unitsOfShard, type Shard } from './shards.js';
import { checkStudyData, FASHION_MNIST_DIR, parseStudy, studyRun, type Study, type StudyGrad, type StudyRun } from './study.js';

// ---------------------------------------------------------------------------
// Data

export interface SweepData {
  train: Dataset;
  test: Dataset;
  /** The data's identity in the run store (as `bsx train` gives it for the same files). */
  identity: RunData;
  dir: string;
}

/** The folder of a study's IDX files. */
export function studyDataDir(study: Study): string {
  if (study.data.idx !== undefined) return study.data.idx;
  if (study.data.set === 'fashion-mnist') {
    if (!existsSync(FASHION_MNIST_DIR)) {
      throw new BsxError(
        'BSX_DATA_NOT_FOUND',
        `${study.file ?? 'study'}: data.set is fashion-mnist, but ${FASHION_MNIST_DIR} does not exist: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or give data.idx, a folder of its IDX files`,
        { path: FASHION_MNIST_DIR },
      );
    }
    return FASHION_MNIST_DIR;
  }
  return mnistDir();
}

/** Loads a study's data and its identity (the files' fingerprints are cached under `out`); checks the study against it. */
export async function loadStudyData(study: Study, out: string): Promise<SweepData> {
  const dir = studyDataDir(study);
  const m = await loadMnist({
    dir,
    name: study.data.set ?? 'idx',
    ...(study.data.trainLimit !== undefined ? { trainLimit: study.data.trainLimit } : {}),
    ...(study.data.testLimit !== undefined ? { testLimit: study.data.testLimit } : {}),
  });
  const identity: RunData = { name: study.data.set === 'mnist' ? 'mnist' : `idx:${resolve(dir)}` };
  if (study.data.trainLimit !== undefined) identity.trainLimit = m.train.count;
  if (study.data.testLimit !== undefined) identity.testLimit = m.test.count;
  await mkdir(out, { recursive: true });
  identity.fingerprint = await fingerprintFiles([m.train.files.images, m.train.files.labels, m.test.files.images, m.test.files.labels], {
    cacheFile: join(out, FINGERPRINT_CACHE_FILE),
  });
  const data = { train: Dataset.fromImages(m.train), test: Dataset.fromImages(m.test), identity, dir };
  checkStudyData(study, { trainCount: data.train.count, testCount: data.test.count, dim: data.train.dim, classes: data.train.classes });
  return data;
}

// ---------------------------------------------------------------------------
// Units

/** A pack of runs of the grid, trained together (one run folder each). */
export interface TrainUnit {
  kind: 'train';
  id: string;
  label: string;
  runs: StudyRun[];
  /** Nominal cost for the shard assignment: the same on every host. */
  cost: number;
}

/** The model a gradient study starts from. */
export type GradModel =
  | { kind: 'run'; spec: Required<TrainSpec>; replica: number; label: string; ofGrid: boolean }
  | { kind: 'weights'; dir: string; label: string };

/** One gradient study at one layer and batch size. */
export interface GradUnit {
  kind: 'grad';
  id: string;
  label: string;
  grad: StudyGrad;
  layer: number;
  b: number;
  model: GradModel;
  cost: number;
}

export type SweepUnit = TrainUnit | GradUnit;

function parameters(widths: readonly number[]): number {
  let p = 0;
  for (let l = 0; l + 1 < widths.length; l++) p += widths[l]! * widths[l + 1]! + widths[l + 1]!;
  return p;
}

/** Nominal seconds-free cost of a training sample at batch b (small batches pay per step). */
const sampleCost = (P: number, b: number): number => P * (1 + 32 / b);

/** The model of a gradient study: the grid's run when it starts after its last epoch, else a run of one seed stopped at that epoch. */
export function gradModel(study: Study, g: StudyGrad): GradModel {
  if (g.from.kind === 'weights') return { kind: 'weights', dir: g.from.dir, label: `weights in ${g.from.dir}` };
  const run = studyRun(study, g.from.run);
  const total = run.spec.phases.reduce((a, p) => a + p.epochs, 0);
  const replica = run.spec.seeds.indexOf(g.from.seed);
  if (g.from.epoch === total) return { kind: 'run', spec: run.spec, replica, label: `${run.label}, seed ${g.from.seed}, after epoch ${total}`, ofGrid: true };
  // the first `epoch` epochs of the run, one seed: the same weights as the grid's run has then
  const phases: TrainSpec['phases'] = [];
  let left = g.from.epoch;
  for (const p of run.spec.phases) {
    if (left <= 0) break;
    phases.push({ ...p, epochs: Math.min(p.epochs, left) });
    left -= p.epochs;
  }
  return { kind: 'run', spec: { widths: run.spec.widths, seeds: [g.from.seed], phases }, replica: 0, label: `${run.label}, seed ${g.from.seed}, after epoch ${g.from.epoch}`, ofGrid: false };
}

/**
 * The units of a study: training packs (runs with the same packSignature, at most
 * packReplicas replicas each), then one gradient unit per study, layer and batch size.
 * `trainCount`, `testCount`: the data's sizes (for the costs).
 */
export function sweepUnits(study: Study, sizes: { trainCount: number; testCount: number }): SweepUnit[] {
  const P = parameters(study.widths);
  const N = sizes.trainCount;
  const T = sizes.testCount;
  const runCost = (spec: Required<TrainSpec>): number =>
    spec.seeds.length * spec.phases.reduce((a, p) => a + p.epochs * (N * sampleCost(P, p.batchSize) + (N + T) * P * 0.3), 0);
  const groups = new Map<string, StudyRun[]>();
  for (const r of study.runs) {
    const sig = packSignature(r.spec);
    groups.set(sig, [...(groups.get(sig) ?? []), r]);
  }
  const units: SweepUnit[] = [];
  for (const runs of groups.values()) {
    let pack: StudyRun[] = [];
    let replicas = 0;
    const flush = (): void => {
      if (pack.length === 0) return;
      units.push({
        kind: 'train',
        id: `train:${pack.map((r) => r.id).join('+')}`,
        label: pack.length === 1 ? pack[0]!.label : `${pack[0]!.label} + ${pack.length - 1} more run${pack.length > 2 ? 's' : ''} (${replicas} replicas)`,
        runs: pack,
        cost: pack.reduce((a, r) => a + runCost(r.spec), 0),
      });
      pack = [];
      replicas = 0;
    };
    for (const r of runs) {
      if (replicas > 0 && replicas + r.spec.seeds.length > study.packReplicas) flush();
      pack.push(r);
      replicas += r.spec.seeds.length;
    }
    flush();
  }
  for (const g of study.grad) {
    const model = gradModel(study, g);
    // a run of its own to reach the epoch: counted with every unit of the study (any may train it)
    const extra = model.kind === 'run' && !model.ofGrid ? runCost(model.spec) / (g.batchSizes.length * g.layers.length) : 0;
    for (const layer of g.layers) {
      for (const b of g.batchSizes) {
        units.push({
          kind: 'grad',
          id: `grad:${g.name}:L${layer}:b${b}`,
          label: `${g.name}: layer ${layer}, b=${b}, ${g.trials} trials`,
          grad: g,
          layer,
          b,
          model,
          cost: g.trials * g.samplesPerTrial * sampleCost(P, b) + extra,
        });
      }
    }
  }
  return units;
}

// ---------------------------------------------------------------------------
// Where results are

/** The folder of a gradient unit's point and lock: <out>/grad/<study>-<hash>/L<layer>-b<bbbb>. */
export function gradUnitDir(out: string, unit: GradUnit, data: RunData, weightsId?: string): string {
  const g = unit.grad;
  const source =
    unit.model.kind === 'run'
      ? { run: runHash({ spec: unit.model.spec, data }), replica: unit.model.replica }
      : { weights: weightsId ?? unit.model.dir, data };
  const h = specHash({ source, widths: unit.model.kind === 'run' ? unit.model.spec.widths : null, trials: g.trials, samplesPerTrial: g.samplesPerTrial, lr: g.lr, seed: g.seed, format: 1 });
  return join(out, 'grad', `${g.name}-${h}`, `L${unit.layer}-b${String(unit.b).padStart(4, '0')}`);
}

export const POINT_FILE = 'point.json';

/** Reads stored weights (W1.npy, b1.npy, ... as `bsx train --export` writes them) and checks them against the model. */
export async function readWeights(dir: string, widths: readonly number[], where: string): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let l = 1; l < widths.length; l++) {
    for (const [name, shape] of [
      [`W${l}`, [widths[l]!, widths[l - 1]!]],
      [`b${l}`, [widths[l]!]],
    ] as const) {
      const file = join(dir, `${name}.npy`);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BsxError('BSX_DATA_NOT_FOUND', `${where}: ${file} is missing (the model ${widths.join('-')} needs ${name}.npy of shape [${shape.join(', ')}])`, { path: file });
        throw e;
      }
      const arr = decodeNpy(bytes, file, 'BSX_DATA_CORRUPT');
      if (arr.shape.join(',') !== shape.join(',')) {
        throw new BsxError('BSX_DATA_CORRUPT', `${where}: ${file} has shape [${arr.shape.join(', ')}], the model ${widths.join('-')} needs [${shape.join(', ')}]`, { path: file });
      }
      if (arr.dtype !== '<f4' && arr.dtype !== '<f8') throw new BsxError('BSX_DATA_CORRUPT', `${where}: ${file} holds ${arr.dtype}, not float32 or float64`, { path: file });
      out.push(Float32Array.from(arr.data as ArrayLike<number>));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// sweep.json: the study a results folder was last run with (for `bsx sweep report DIR`)

export const SWEEP_FILE = 'sweep.json';

export interface SweepFile {
  format: 1;
  bsx: string;
  name: string;
  hash: string;
  /** The study file it was read from, when it was. */
  file?: string;
  /** The study as data (paths absolute). */
  study: Record<string, unknown>;
}

const sweepFileCheck = object({ format: oneOf(1), bsx: string, name: string, hash: string, study: object({}) }, { file: string }) as unknown as Check<SweepFile>;

/** The study kept in a results folder's sweep.json. */
export async function readSweepFile(out: string): Promise<Study> {
  const file = join(out, SWEEP_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BsxError('BSX_DATA_NOT_FOUND', `${file} not found: the folder holds no sweep made by \`bsx sweep run\` (or give the study file)`, { path: file });
    throw e;
  }
  const f = parseJsonFile(file, text, sweepFileCheck, { hint: 'run `bsx sweep run STUDY --out DIR` again to rewrite it' });
  return parseStudy(f.study, { file });
}

// ---------------------------------------------------------------------------
// Plan and status

export interface SweepOptions {
  /** The results folder: the run store and the gradient points. */
  out: string;
  /** Run one shard of a cluster (every unit without). */
  shard?: Shard;
  backend?: 'cpu' | 'cuda';
  /** Gradient trials run at once (default 32 on a CPU, 250 on a GPU). */
  chunk?: number;
  signal?: AbortSignal;
  onEvent?: (e: SweepEvent) => void;
  /** Data already loaded (loadStudyData), to save loading it again. */
  data?: SweepData;
  /** Version written into sweep.json and the journal. */
  version?: string;
}

export interface SweepPlanItem extends PlanItem {
  unit: SweepUnit;
}

export type SweepEvent =
  | { type: 'plan'; items: SweepPlanItem[]; estimate: number; speed: SpeedModel; shard?: Shard }
  | { type: 'start'; item: SweepPlanItem }
  | { type: 'progress'; item: SweepPlanItem; fraction: number; overall: number; detail: string }
  | { type: 'done'; item: SweepPlanItem; seconds: number; reused: boolean };

/** The state of every unit (done, partial, todo) and who holds it, with the time left of each. */
async function unitStates(study: Study, units: readonly SweepUnit[], data: SweepData, out: string, speed: SpeedModel | undefined): Promise<SweepPlanItem[]> {
  const store = new RunStore(out);
  const N = data.train.count;
  const T = data.test.count;
  const items: SweepPlanItem[] = [];
  const runSeconds = (spec: Required<TrainSpec>, doneEpochs: number): number => trainingSecondsLeft(speed ?? NO_SPEED, spec, N, T, doneEpochs);
  for (const unit of units) {
    const heldBy: LockInfo[] = [];
    if (unit.kind === 'train') {
      let estimate = 0;
      const states: PlanStatus[] = [];
      for (const r of unit.runs) {
        const st = await storedRunState(store, r.spec, data.identity);
        states.push(st.status);
        if (st.status !== 'done') estimate += runSeconds(r.spec, st.epochs);
        const h = lockHolder(st.dir);
        if (h) heldBy.push(h);
      }
      const status: PlanStatus = states.every((s) => s === 'done') ? 'done' : states.every((s) => s === 'todo') ? 'todo' : 'partial';
      items.push({ kind: 'run', key: unit.id, label: unit.label, status, estimate, unit, ...(heldBy.length > 0 ? { heldBy } : {}) });
    } else {
      const dir = gradUnitDir(out, unit, data.identity, await weightsId(unit));
      const done = existsSync(join(dir, POINT_FILE));
      let estimate = 0;
      if (!done && speed) {
        const w = study.widths;
        const numel = (l: number): number => w[l - 1]! * w[l]!;
        estimate = trialSeconds(speed, unit.b, unit.grad.trials, unit.grad.samplesPerTrial, numel(unit.layer), numel(w.length - 1));
        if (unit.model.kind === 'run') {
          const st = await storedRunState(store, unit.model.spec, data.identity);
          if (st.status !== 'done' && !unit.model.ofGrid) estimate += runSeconds(unit.model.spec, st.epochs);
        }
      }
      const h = lockHolder(dir);
      if (h) heldBy.push(h);
      items.push({ kind: 'grad', key: unit.id, label: unit.label, status: done ? 'done' : 'todo', estimate, unit, ...(heldBy.length > 0 ? { heldBy } : {}) });
    }
  }
  return items;
}

const weightsIds = new Map<string, string>();

/** The identity of stored weights: the SHA-256 of their files (so that changed weights make a new study). */
async function weightsId(unit: GradUnit): Promise<string | undefined> {
  if (unit.model.kind !== 'weights') return undefined;
  const dir = unit.model.dir;
  let id = weightsIds.get(dir);
  if (id === undefined) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.npy')).sort().map((f) => join(dir, f));
    id = await fingerprintFiles(files);
    weightsIds.set(dir, id);
  }
  return id;
}

export interface SweepPlan {
  study: Study;
  units: SweepUnit[];
  /** Every unit with its state; `shard` set when planned for shards. */
  items: SweepPlanItem[];
  /** Seconds left, over the items of the shard asked for (or all). */
  estimate: number;
  /** Seconds left per shard, when planned for shards. */
  perShard?: number[];
  speed: SpeedModel;
}

/** Checks the study against its data and the machine, and lists its units with the time each needs. */
export async function planSweep(study: Study, opts: SweepOptions & { shards?: number; measure?: boolean }): Promise<SweepPlan> {
  const backend = opts.backend ?? 'cpu';
  const chunk = opts.chunk ?? defaultSuiteChunk(backend);
  const data = opts.data ?? (await loadStudyData(study, opts.out));
  const units = sweepUnits(study, { trainCount: data.train.count, testCount: data.test.count });
  checkSweepMemory(study, units, data, backend, chunk);
  const speed: SpeedModel =
    opts.measure === false ? NO_SPEED : await measureSpeed(data, 1, backend, chunk, study.widths);
  const items = await unitStates(study, units, data, opts.out, speed);
  const count = opts.shard?.count ?? opts.shards;
  let perShard: number[] | undefined;
  if (count !== undefined) {
    perShard = new Array<number>(count).fill(0);
    for (let s = 1; s <= count; s++) {
      for (const u of unitsOfShard(units, { index: s, count })) {
        const it = items.find((i) => i.key === u.id)!;
        it.shard = s;
        perShard[s - 1]! += it.estimate;
      }
    }
  }
  const mine = opts.shard ? items.filter((i) => i.shard === opts.shard!.index) : items;
  return { study, units, items, estimate: mine.reduce((a, i) => a + i.estimate, 0), ...(perShard ? { perShard } : {}), speed };
}

/** Refuses (BSX_TOO_LARGE) a study whose largest unit does not fit this machine. */
function checkSweepMemory(study: Study, units: readonly SweepUnit[], data: SweepData, backend: 'cpu' | 'cuda', chunk: number): void {
  for (const u of units) {
    if (u.kind === 'train') {
      checkMemory(
        estimateTrainingMemory({
          replicas: u.runs.reduce((a, r) => a + r.spec.seeds.length, 0),
          widths: study.widths,
          phases: u.runs.flatMap((r) => r.spec.phases),
          trainCount: data.train.count,
          testCount: data.test.count,
          backend,
          checkpoints: true,
          what: `the training unit ${u.label}`,
        }),
      );
    } else {
      checkMemory(
        estimateGradStudyMemory({
          chunk,
          trials: u.grad.trials,
          batchSizes: [u.b],
          samplesPerTrial: u.grad.samplesPerTrial,
          widths: study.widths,
          layer: u.layer - 1,
          trainCount: data.train.count,
          backend,
          what: `the gradient unit ${u.label}`,
        }),
      );
    }
  }
}

export interface SweepStatus {
  study: Study;
  items: SweepPlanItem[];
  done: number;
  running: number;
  todo: number;
}

/** What is done, running (held by a live lease) and to do, without training. */
export async function sweepStatus(study: Study, opts: { out: string; shards?: number; data?: SweepData }): Promise<SweepStatus> {
  const data = opts.data ?? (await loadStudyData(study, opts.out));
  const units = sweepUnits(study, { trainCount: data.train.count, testCount: data.test.count });
  const items = await unitStates(study, units, data, opts.out, undefined);
  if (opts.shards !== undefined) {
    for (let s = 1; s <= opts.shards; s++) for (const u of unitsOfShard(units, { index: s, count: opts.shards })) items.find((i) => i.key === u.id)!.shard = s;
  }
  const running = items.filter((i) => i.status !== 'done' && i.heldBy !== undefined).length;
  const done = items.filter((i) => i.status === 'done').length;
  return { study, items, done, running, todo: items.length - done - running };
}

// ---------------------------------------------------------------------------
// Running

export interface SweepResult {
  items: SweepPlanItem[];
  /** Units this call did work on. */
  ran: string[];
  /** Units that were done already. */
  reused: string[];
  seconds: number;
}

/** The tensors of one replica of a run's final checkpoint (the run must have finished). */
async function modelOfRun(store: RunStore, spec: Required<TrainSpec>, data: RunData, replica: number, name: string): Promise<RegimeModel> {
  const h = await store.open({ spec, data }, { wait: true });
  try {
    const cp = await h.loadCheckpoint();
    if (!cp) throw new BsxError('BSX_RUN_CORRUPT', `${h.dir}: finished but has no checkpoint to start the gradient study ${name} from`);
    const tensors = cp.tensors
      .filter((t) => t.slot === 'param')
      .sort((a, z) => a.index - z.index)
      .map((t) => {
        const per = t.data.length / t.shape[0]!;
        return Float32Array.from(t.data.subarray(replica * per, (replica + 1) * per));
      });
    return { name, code: 3, widths: [...spec.widths], tensors };
  } finally {
    h.release();
  }
}

/** Runs what the store lacks of the study (or of one shard of it). */
export async function runSweep(study: Study, opts: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const backend = opts.backend ?? 'cpu';
  const chunk = opts.chunk ?? defaultSuiteChunk(backend);
  if (!Number.isSafeInteger(chunk) || chunk < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `sweep: chunk must be a positive integer, got ${chunk}`);
  const data = opts.data ?? (await loadStudyData(study, opts.out));
  // the engine's speed is measured only when there is work to estimate
  const states = await planSweep(study, { ...opts, data, measure: false });
  const left = (opts.shard ? states.items.filter((i) => i.shard === opts.shard!.index) : states.items).some((i) => i.status !== 'done');
  const plan = left ? await planSweep(study, { ...opts, data }) : states;
  const mine = opts.shard ? plan.items.filter((i) => i.shard === opts.shard!.index) : plan.items;
  // training first: gradient units start from the runs' weights
  const ordered = [...mine.filter((i) => i.unit.kind === 'train'), ...mine.filter((i) => i.unit.kind === 'grad')];
  const total = ordered.reduce((a, i) => a + i.estimate, 0);
  opts.onEvent?.({ type: 'plan', items: ordered, estimate: total, speed: plan.speed, ...(opts.shard ? { shard: opts.shard } : {}) });

  await mkdir(opts.out, { recursive: true });
  const sweepFile: SweepFile = { format: 1, bsx: opts.version ?? '', name: study.name, hash: study.hash, ...(study.file ? { file: study.file } : {}), study: study.content };
  await writeJsonAtomic(join(opts.out, SWEEP_FILE), sweepFile);
  const journal = new Journal(opts.out, opts.shard ? `${opts.shard.index}/${opts.shard.count}` : null);
  const store = new RunStore(opts.out);
  const ran: string[] = [];
  const reused: string[] = [];
  let doneEstimate = 0;
  for (const item of ordered) {
    const unit = item.unit;
    // done meanwhile (by another shard, or a run another unit needed)?
    const [now] = await unitStates(study, [unit], data, opts.out, undefined);
    if (now!.status === 'done') {
      reused.push(unit.id);
      await journal.write({ event: 'reused', unit: unit.id });
      opts.onEvent?.({ type: 'done', item, seconds: 0, reused: true });
      doneEstimate += item.estimate;
      continue;
    }
    opts.onEvent?.({ type: 'start', item });
    await journal.write({ event: 'start', unit: unit.id });
    const ts = performance.now();
    const progress = (f: number, detail: string): void =>
      opts.onEvent?.({ type: 'progress', item, fraction: f, overall: total > 0 ? (doneEstimate + f * item.estimate) / total : 1, detail });
    try {
      if (unit.kind === 'train') await runTrainUnit(unit, data, store, journal, backend, opts.signal, progress);
      else await runGradUnit(study, unit, data, store, journal, backend, chunk, opts.out, opts.signal, progress);
    } catch (e) {
      await journal.write({ event: 'failed', unit: unit.id, error: (e as Error).message ?? String(e) }).catch(() => undefined);
      throw e;
    }
    const seconds = (performance.now() - ts) / 1000;
    await journal.write({ event: 'done', unit: unit.id, seconds });
    ran.push(unit.id);
    doneEstimate += item.estimate;
    opts.onEvent?.({ type: 'done', item, seconds, reused: false });
  }
  return { items: ordered, ran, reused, seconds: (performance.now() - t0) / 1000 };
}

/** A training event as a fraction of the whole run and a line for the progress display. */
function trainProgress(phases: TrainSpec['phases'], progress: (f: number, detail: string) => void): (e: TrainEvent) => void {
  let perEpoch: number[] = [];
  let total = 0;
  const phaseOf: number[] = [];
  phases.forEach((p, i) => {
    for (let k = 0; k < p.epochs; k++) phaseOf.push(i);
  });
  return (e) => {
    if (e.type === 'start') {
      perEpoch = e.stepsPerEpoch;
      total = phaseOf.reduce((a, p) => a + perEpoch[p]!, 0);
    } else if (e.type === 'progress') {
      const before = phaseOf.slice(0, e.epoch - 1).reduce((a, p) => a + perEpoch[p]!, 0);
      progress(total > 0 ? Math.min(1, (before + e.step) / total) : 0, `epoch ${e.epoch}/${e.totalEpochs}, loss ${e.loss.toFixed(3)}, ${Math.round(e.samplesPerSec)} samples/s`);
    }
  };
}

async function runTrainUnit(
  unit: TrainUnit,
  data: SweepData,
  store: RunStore,
  journal: Journal,
  backend: 'cpu' | 'cuda',
  signal: AbortSignal | undefined,
  progress: (f: number, detail: string) => void,
): Promise<void> {
  await runTrainingPack(
    unit.runs.map((r) => r.spec),
    data,
    {
      store,
      data: data.identity,
      backend,
      wait: true,
      ...(signal ? { signal } : {}),
      onEvent: trainProgress(unit.runs[0]!.spec.phases, progress),
      onFinished: async (_i, res) => {
        await journal.write({ event: 'run-finished', unit: unit.id, detail: res.hash });
      },
    },
  );
}

async function runGradUnit(
  study: Study,
  unit: GradUnit,
  data: SweepData,
  store: RunStore,
  journal: Journal,
  backend: 'cpu' | 'cuda',
  chunk: number,
  out: string,
  signal: AbortSignal | undefined,
  progress: (f: number, detail: string) => void,
): Promise<void> {
  const g = unit.grad;
  let model: RegimeModel;
  if (unit.model.kind === 'run') {
    // the run the trials start from: read back, waited for (another process trains it), or trained here
    const source = await runTraining(unit.model.spec, data, {
      store,
      data: data.identity,
      backend,
      wait: true,
      ...(signal ? { signal } : {}),
      onEvent: trainProgress(unit.model.spec.phases, (f, d) => progress(0, `training the model: ${Math.round(100 * f)}%, ${d}`)),
      onStatus: (s) => {
        if (s.type !== 'reused') void journal.write({ event: 'start', unit: unit.id, detail: `training ${s.dir}` });
      },
    });
    if (!source.reused) await journal.write({ event: 'run-finished', unit: unit.id, detail: source.hash });
    model = await modelOfRun(store, unit.model.spec, data.identity, unit.model.replica, g.name);
  } else {
    model = { name: g.name, code: 3, widths: [...study.widths], tensors: await readWeights(unit.model.dir, study.widths, `grad ${g.name}: from.weights`) };
  }
  const dir = gradUnitDir(out, unit, data.identity, await weightsId(unit));
  await mkdir(dir, { recursive: true });
  const lock = await acquireLock(dir, { wait: true, ...(signal ? { signal } : {}) });
  try {
    const file = join(dir, POINT_FILE);
    if (existsSync(file)) {
      await readGradPoint(file, { b: unit.b, trials: g.trials });
      return;
    }
    const ac = new AbortController();
    const abort = (): void => ac.abort();
    signal?.addEventListener('abort', abort, { once: true });
    lock.onLost(abort);
    try {
      await gradientStudy(
        { regime: model, layer: unit.layer - 1, batchSizes: [unit.b], trials: g.trials, seed: g.seed, samplesPerTrial: g.samplesPerTrial, lr: g.lr },
        data.train,
        {
          chunk,
          backend,
          signal: ac.signal,
          savePoint: async (pt: GradStudyPoint) => {
            if (lock.lost) throw new BsxError('BSX_RUN_LOCKED', `${dir}: another process broke this process's lease; the point is not written`);
            const { scaled: _s, ...rest } = pt;
            await writeJsonAtomic(file, rest);
            await journal.write({ event: 'point-finished', unit: unit.id, detail: dir });
          },
          onEvent: (e) => {
            if (e.type === 'progress') progress(e.overallDone / e.overallTotal, `${e.trialsDone}/${e.trials} trials${Number.isFinite(e.trialsPerSec) ? `, ${e.trialsPerSec.toFixed(1)} trials/s` : ''}`);
          },
        },
      );
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  } finally {
    lock.release();
  }
}

/** Reads the stored points of the study's gradient units (those that are done). */
export async function readGradPoints(study: Study, out: string, data: SweepData): Promise<Map<string, GradStudyPoint>> {
  const units = sweepUnits(study, { trainCount: data.train.count, testCount: data.test.count }).filter((u): u is GradUnit => u.kind === 'grad');
  const points = new Map<string, GradStudyPoint>();
  for (const u of units) {
    const file = join(gradUnitDir(out, u, data.identity, await weightsId(u)), POINT_FILE);
    if (existsSync(file)) points.set(u.id, await readGradPoint(file, { b: u.b, trials: u.grad.trials }));
  }
  return points;
}

