// Training runs kept in a run store: a finished spec is read back instead of trained again,
// an interrupted one continues from its last epoch checkpoint and gives the same numbers as
// an uninterrupted run. Metrics rows and checkpoints are written after every epoch.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/dataset.js';
import { normalizeOptimizer, type OptimizerSpec } from '../engine/optimizers.js';
import { BsxError } from '../errors.js';
import { canonicalJson } from '../store/hash.js';
import { CHECKPOINT_DIR, SUMMARY_FILE, describeRun, normalizeRunKey, runHash, summaryReviver, type Checkpoint, type MetricsRow, type RunData, type RunHandle, type RunStore } from '../store/run-store.js';
import { anyValue, arrayOf, boolean, checkJson, fileError, integer, nullable, number, object, parseJsonFile, string, type Check } from '../store/validate.js';
import { checkMemory, estimateTrainingMemory } from './memory.js';
import {
  expectedOptimizerSteps,
  normalizeSpec,
  packSignature,
  trainPack,
  type EpochMetrics,
  type InitialMetrics,
  type ResumeState,
  type SeedResult,
  type TrainCheckpoint,
  type TrainOptions,
  type TrainResult,
  type TrainSpec,
} from './train.js';

export interface StoredRunOptions extends Omit<TrainOptions, 'resume' | 'onEpochEnd'> {
  store: RunStore;
  /** What data the run uses (part of the run's identity). */
  data: RunData;
  /** Continue an interrupted run from its checkpoint (default); false starts it over. */
  resume?: boolean;
  /** Wait for another process that holds the run instead of failing. */
  wait?: boolean;
  /** Write the final weights as .npy files under exports/final. */
  exportWeights?: boolean;
  /** Told what happens to the run before training starts. */
  onStatus?: (s: RunStatus) => void;
  /**
   * Seconds between checkpoints (default 10): an epoch that ends sooner than that after the
   * last checkpoint is not checkpointed, except the last one. 0: after every epoch. Metrics
   * rows are written after every epoch either way (a resume drops those past the checkpoint).
   */
  checkpointEverySeconds?: number;
}

export type RunStatus =
  | { type: 'reused'; dir: string }
  | { type: 'resumed'; dir: string; epoch: number }
  | { type: 'fresh'; dir: string };

export interface StoredRunResult extends TrainResult {
  dir: string;
  hash: string;
  description: string;
  /** The run had finished before: nothing was trained. */
  reused: boolean;
  /** Epochs that were already done when this call started. */
  resumedFromEpoch?: number;
  /** Folder of the exported weights, when asked for. */
  exportDir?: string;
}

interface CheckpointExtra {
  initial: InitialMetrics[];
  divergedAtEpoch: (number | null)[];
}

function toRow(seed: number, m: EpochMetrics): MetricsRow {
  return {
    seed,
    epoch: m.epoch,
    phase: m.phase,
    trainLoss: m.trainLoss,
    trainAcc: m.trainAcc,
    testLoss: m.testLoss,
    testAcc: m.testAcc,
    weightDistance: m.weightDistance,
    biasDistance: m.biasDistance,
    weightNorm: m.weightNorm,
    biasNorm: m.biasNorm,
    cosine: [...m.cosine],
    samplesPerSec: m.samplesPerSec,
    diverged: m.diverged,
  };
}

function fromRow(r: MetricsRow): EpochMetrics {
  return {
    epoch: r.epoch,
    phase: r.phase,
    trainLoss: r.trainLoss,
    trainAcc: r.trainAcc,
    testLoss: r.testLoss,
    testAcc: r.testAcc,
    weightDistance: r.weightDistance,
    biasDistance: r.biasDistance,
    weightNorm: r.weightNorm,
    biasNorm: r.biasNorm,
    cosine: [...r.cosine],
    samplesPerSec: r.samplesPerSec,
    diverged: r.diverged,
  };
}

function toStoreCheckpoint(cp: TrainCheckpoint, extra: CheckpointExtra): Checkpoint {
  return { ...cp, tensors: cp.tensors.map((t) => ({ ...t })), extra };
}

// ---------------------------------------------------------------------------
// What a run keeps on disk, checked when it is read back

const weightFields = { weightDistance: number, biasDistance: number, weightNorm: number, biasNorm: number, cosine: arrayOf(number) };
const initialCheck: Check<InitialMetrics> = object(weightFields, { trainLoss: number, trainAcc: number, testLoss: number, testAcc: number });
const epochCheck: Check<EpochMetrics> = object({
  epoch: integer(1),
  phase: integer(0),
  trainLoss: number,
  trainAcc: number,
  testLoss: number,
  testAcc: number,
  ...weightFields,
  samplesPerSec: number,
  diverged: boolean,
});
const summaryCheck = object({
  spec: object({
    widths: arrayOf(integer(1)),
    seeds: arrayOf(integer(0)),
    phases: arrayOf(object({ epochs: integer(1), batchSize: integer(1), lr: number, optimizer: anyValue })),
  }),
  backend: string,
  trainCount: integer(1),
  testCount: integer(1),
  seeds: arrayOf(object({ seed: integer(0), initial: initialCheck, epochs: arrayOf(epochCheck) }, { divergedAtEpoch: integer(1) })),
  seconds: number,
}) as unknown as Check<TrainResult>;

/** The summary of a finished run, checked against the run's spec; undefined if it has not finished. */
async function readSummary(handle: RunHandle, spec: Required<TrainSpec>): Promise<TrainResult | undefined> {
  const hint = `delete the run folder ${handle.dir}, or rerun with --no-resume to train it again`;
  const done = await handle.finished(summaryCheck, { hint });
  if (done === undefined) return undefined;
  return checkSummary(join(handle.dir, SUMMARY_FILE), done, spec, hint);
}

function checkSummary(file: string, done: TrainResult, spec: Required<TrainSpec>, hint: string): TrainResult {
  const bad = (problem: string): never => {
    throw fileError(file, problem, { hint });
  };
  const epochs = spec.phases.reduce((a, p) => a + p.epochs, 0);
  if (done.seeds.length !== spec.seeds.length) bad(`seeds holds ${done.seeds.length} entries, the run has ${spec.seeds.length} seeds`);
  done.seeds.forEach((s, r) => {
    if (s.seed !== spec.seeds[r]) bad(`seeds[${r}].seed is ${s.seed}, the run's seed ${r} is ${spec.seeds[r]}`);
    if (s.epochs.length !== epochs) bad(`seeds[${r}].epochs holds ${s.epochs.length} entries, the run has ${epochs} epochs`);
  });
  return done;
}

/**
 * @internal The result of a finished run of the store, read without taking its lock (for
 * reports while other processes work); undefined when the run has not finished.
 */
export async function readRunResult(store: RunStore, specIn: TrainSpec, data: RunData, trainCount: number): Promise<StoredRunResult | undefined> {
  const spec = normalizeSpec(specIn, trainCount);
  const key = { spec, data };
  const dir = store.runDir(key);
  const file = join(dir, SUMMARY_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const hint = `delete the run folder ${dir} to train it again`;
  const done = checkSummary(file, parseJsonFile(file, text, summaryCheck, { hint, reviver: summaryReviver }), spec, hint);
  return { ...done, dir, hash: runHash(key), description: describeRun(normalizeRunKey(key)), reused: true };
}

/**
 * Reads a run's checkpoint back and checks it against itself and the run's spec before anything
 * is resumed from it: the next epoch of the data order follows the epoch, the phase and the
 * optimiser are those of that epoch in the spec, each replica took the optimiser steps the spec
 * implies (ceil(N / batch size) per epoch since its optimiser state last started over), and the
 * extra fields hold one entry per seed.
 */
function fromStoreCheckpoint(
  cp: Checkpoint,
  dir: string,
  spec: Required<TrainSpec>,
  trainCount: number,
): { cp: TrainCheckpoint; extra: CheckpointExtra } {
  const file = join(dir, CHECKPOINT_DIR, 'state.json');
  const hint = 'rerun with --no-resume to start the run over';
  const bad = (problem: string): never => {
    throw fileError(file, problem, { hint });
  };
  const R = spec.seeds.length;
  const extra = checkJson(
    file,
    { extra: cp.extra },
    object({
      extra: object({
        initial: arrayOf(initialCheck, { length: R }),
        divergedAtEpoch: arrayOf(nullable(integer(1)), { length: R }),
      }),
    }),
    { hint },
  ).extra;
  const phaseOf: number[] = [];
  spec.phases.forEach((p, i) => {
    for (let e = 0; e < p.epochs; e++) phaseOf.push(i);
  });
  if (cp.epoch < 1 || cp.epoch > phaseOf.length) bad(`epoch is ${cp.epoch}, the run has epochs 1 to ${phaseOf.length}`);
  if (cp.rng.nextEpoch !== cp.epoch + 1) bad(`rng.nextEpoch is ${cp.rng.nextEpoch}, expected ${cp.epoch + 1} (the epoch after epoch ${cp.epoch})`);
  const ph = phaseOf[cp.epoch - 1]!;
  if (cp.phase !== ph) bad(`phase is ${cp.phase}, but epoch ${cp.epoch} belongs to phase ${ph} of the run`);
  const opt = spec.phases[ph]!.optimizer;
  let held: string;
  try {
    // the checkpoint holds every hyperparameter, the spec only those off their defaults
    held = canonicalJson(normalizeOptimizer(cp.optimizer as OptimizerSpec, 'optimizer'));
  } catch (err) {
    return bad((err as Error).message);
  }
  if (held !== canonicalJson(opt)) {
    bad(`optimizer is ${JSON.stringify(cp.optimizer)}, but phase ${ph} uses ${JSON.stringify(opt)}`);
  }
  // the steps each seed must have taken: the engine itself replays the phases' optimisers up
  // to that epoch (it starts the state over on a change of optimiser, and for a seed whose
  // momentum is turned on or off)
  const steps = expectedOptimizerSteps(spec, trainCount, cp.epoch);
  if (cp.optimizerSteps.length !== R) bad(`optimizerSteps holds ${cp.optimizerSteps.length} values, the run has ${R} seeds`);
  cp.optimizerSteps.forEach((s, r) => {
    if (s !== steps) {
      bad(`optimizerSteps[${r}] is ${s}, expected ${steps} (ceil(${trainCount} / batch size) steps per epoch since epoch ${cp.epoch} last started the optimiser's state over)`);
    }
  });
  return { cp: { ...cp, optimizer: cp.optimizer as TrainCheckpoint['optimizer'], tensors: cp.tensors as TrainCheckpoint['tensors'] }, extra };
}

/** The final weights from the run's last checkpoint, as exports/<name>/W1.npy, b1.npy, ... */
async function exportFinal(handle: RunHandle): Promise<string> {
  const cp = await handle.loadCheckpoint();
  if (!cp) throw new BsxError('BSX_RUN_CORRUPT', `${handle.dir}: no checkpoint to export weights from`);
  const params = cp.tensors.filter((t) => t.slot === 'param').sort((a, b) => a.index - b.index);
  return handle.exportTensors(
    'final',
    params.map((t) => ({ name: `${t.index % 2 === 0 ? 'W' : 'b'}${Math.floor(t.index / 2) + 1}`, data: t.data, shape: t.shape })),
  );
}

/** Trains `spec` through the run store (reuse, resume, checkpoints, metrics.csv, summary.json). */
export async function runTraining(
  specIn: TrainSpec,
  data: { train: Dataset; test: Dataset },
  opts: StoredRunOptions,
): Promise<StoredRunResult> {
  const { onStatus, ...rest } = opts;
  const [r] = await runTrainingPack([specIn], data, { ...rest, ...(onStatus ? { onStatus: (_i: number, s: RunStatus) => onStatus(s) } : {}) });
  return r!;
}

/** @internal Options of runTrainingPack: runTraining's, with onStatus told which run it is about. */
export interface PackRunOptions extends Omit<StoredRunOptions, 'onStatus'> {
  onStatus?: (member: number, s: RunStatus) => void;
  /** Called when a run of the pack has finished and its summary is written (not for reused runs). */
  onFinished?: (member: number, result: StoredRunResult) => Promise<void> | void;
}

interface OpenMember {
  index: number;
  spec: Required<TrainSpec>;
  handle: RunHandle;
  resume?: ResumeState;
}

/**
 * @internal Trains several runs of the store as one ensemble (trainPack: they must share the
 * model, the batch-size schedule and the optimiser; learning rates, seeds and hyperparameters
 * may differ), each in its own run folder exactly as runTraining writes it alone: a finished run
 * is read back, an interrupted one resumes from its checkpoint (runs interrupted after the same
 * epoch are packed again together), the others start afresh. Every run is locked while it trains.
 */
export async function runTrainingPack(
  specsIn: readonly TrainSpec[],
  data: { train: Dataset; test: Dataset },
  opts: PackRunOptions,
): Promise<StoredRunResult[]> {
  const specs = specsIn.map((s) => normalizeSpec(s, data.train.count));
  if (specs.length === 0) throw new BsxError('BSX_INVALID_ARGUMENT', 'runTrainingPack: no runs');
  const sig = packSignature(specs[0]!);
  specs.forEach((s, i) => {
    if (packSignature(s) !== sig) throw new BsxError('BSX_INVALID_ARGUMENT', `runTrainingPack: run ${i} cannot be packed with run 0 (another model, batch-size schedule or optimiser)`);
  });
  // before anything is written or allocated
  checkMemory(
    estimateTrainingMemory({
      replicas: specs.reduce((a, s) => a + s.seeds.length, 0),
      widths: specs[0]!.widths,
      phases: specs.flatMap((s) => s.phases),
      trainCount: data.train.count,
      testCount: data.test.count,
      backend: opts.backend ?? 'cpu',
      checkpoints: true,
    }),
  );
  const handles: RunHandle[] = [];
  try {
    for (const spec of specs) handles.push(await opts.store.open({ spec, data: opts.data }, { wait: opts.wait ?? false, ...(opts.signal ? { signal: opts.signal } : {}) }));
    const results: (StoredRunResult | undefined)[] = specs.map(() => undefined);
    const todo: OpenMember[] = [];
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]!;
      const handle = handles[i]!;
      let done: TrainResult | undefined;
      try {
        done = await readSummary(handle, spec);
      } catch (e) {
        // a damaged summary: trained again when asked to start over
        if (!(opts.resume === false && e instanceof BsxError && e.code === 'BSX_RUN_CORRUPT')) throw e;
        await handle.discardSummary();
      }
      if (done) {
        opts.onStatus?.(i, { type: 'reused', dir: handle.dir });
        const exportDir = opts.exportWeights ? await exportFinal(handle) : undefined;
        results[i] = { ...done, dir: handle.dir, hash: handle.hash, description: handle.description, reused: true, ...(exportDir ? { exportDir } : {}) };
        continue;
      }
      const saved = opts.resume === false ? undefined : await handle.loadCheckpoint();
      if (saved) {
        const { cp, extra } = fromStoreCheckpoint(saved, handle.dir, spec, data.train.count);
        await handle.truncateMetrics(cp.epoch);
        const rows = await handle.readMetrics();
        const seeds: SeedResult[] = spec.seeds.map((seed, r) => {
          const s: SeedResult = {
            seed,
            initial: extra.initial[r]!,
            epochs: rows.filter((row) => row.seed === seed).sort((a, b) => a.epoch - b.epoch).map(fromRow),
          };
          const d = extra.divergedAtEpoch[r];
          if (typeof d === 'number') s.divergedAtEpoch = d;
          if (s.epochs.length !== cp.epoch) {
            throw new BsxError('BSX_RUN_CORRUPT', `${handle.dir}/metrics.csv: seed ${seed} has ${s.epochs.length} epochs, the checkpoint ${cp.epoch}`);
          }
          return s;
        });
        todo.push({ index: i, spec, handle, resume: { checkpoint: cp, seeds } });
        opts.onStatus?.(i, { type: 'resumed', dir: handle.dir, epoch: cp.epoch });
      } else {
        await handle.clearMetrics();
        todo.push({ index: i, spec, handle });
        opts.onStatus?.(i, { type: 'fresh', dir: handle.dir });
      }
    }
    // runs that stopped after the same epoch train together (the fresh ones after epoch 0)
    const groups = new Map<number, OpenMember[]>();
    for (const m of todo) {
      const e = m.resume?.checkpoint.epoch ?? 0;
      groups.set(e, [...(groups.get(e) ?? []), m]);
    }
    const { store: _s, data: _d, resume: _r, wait: _w, exportWeights: _e, onStatus: _o, onFinished: _f, checkpointEverySeconds: _c, signal: outer, ...trainOpts } = opts;
    const every = (opts.checkpointEverySeconds ?? 10) * 1000;
    // a broken lease stops the training: nothing more may be written to that run
    const ac = new AbortController();
    const abort = (): void => ac.abort();
    outer?.addEventListener('abort', abort, { once: true });
    if (outer?.aborted) ac.abort();
    for (const h of handles) h.onLost(abort);
    try {
      for (const group of [...groups.keys()].sort((a, b) => a - b).map((k) => groups.get(k)!)) {
        let lastCheckpoint = performance.now();
        let checkpointNow = false;
        let trained: TrainResult[];
        try {
          trained = await trainPack(
            group.map((m) => ({ spec: m.spec, ...(m.resume ? { resume: m.resume } : {}) })),
            data,
            {
              ...trainOpts,
              signal: ac.signal,
              onEpochEnd: async (k, ctx) => {
                const m = group[k]!;
                await m.handle.appendMetrics(ctx.metrics.map((x, r) => toRow(m.spec.seeds[r]!, x)));
                if (k === 0) {
                  // the same epochs are checkpointed for every run of the pack
                  const now = performance.now();
                  checkpointNow = ctx.epoch >= ctx.totalEpochs || now - lastCheckpoint >= every;
                  if (checkpointNow) lastCheckpoint = now;
                }
                if (!checkpointNow) return;
                const extra: CheckpointExtra = {
                  initial: ctx.seeds.map((x) => x.initial),
                  divergedAtEpoch: ctx.seeds.map((x) => x.divergedAtEpoch ?? null),
                };
                await m.handle.saveCheckpoint(toStoreCheckpoint(ctx.checkpoint(), extra));
              },
            },
          );
        } catch (e) {
          const lost = handles.find((h) => h.lost);
          if (lost && !(outer?.aborted ?? false)) {
            throw new BsxError('BSX_RUN_LOCKED', `run ${lost.dir}: another process broke this process's lease on the run; stopped training it`, { cause: e });
          }
          throw e;
        }
        for (let k = 0; k < group.length; k++) {
          const m = group[k]!;
          const result = trained[k]!;
          await m.handle.writeSummary(result);
          const exportDir = opts.exportWeights ? await exportFinal(m.handle) : undefined;
          const out: StoredRunResult = {
            ...result,
            dir: m.handle.dir,
            hash: m.handle.hash,
            description: m.handle.description,
            reused: false,
            ...(m.resume ? { resumedFromEpoch: m.resume.checkpoint.epoch } : {}),
            ...(exportDir ? { exportDir } : {}),
          };
          results[m.index] = out;
          await opts.onFinished?.(m.index, out);
        }
      }
    } finally {
      outer?.removeEventListener('abort', abort);
    }
    return results as StoredRunResult[];
  } finally {
    for (const h of handles) h.release();
  }
}
