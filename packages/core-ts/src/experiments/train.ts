// Training runs: an Ensemble of one replica per seed, driven through a list of phases
// (epochs, batch size, lr, optimiser), evaluated on the full train and test sets after every
// epoch. The data order of seed s in epoch e is epochPermutation(s, e, n): the same whether
// the seed runs alone or among others.

import { Dataset } from '../engine/dataset.js';
import { DEFAULT_WIDTHS, Ensemble } from '../engine/ensemble.js';
import {
  normalizeOptimizer,
  optimizerDescriptor,
  optimizerStateSlots,
  type HyperparameterValue,
  type OptimizerSpec,
} from '../engine/optimizers.js';
import { BsxError } from '../errors.js';
import { epochPermutation } from '../rng/philox.js';
import { checkMemory, estimateTrainingMemory } from './memory.js';
import { weightMetrics, type WeightMetrics } from './metrics.js';

export interface Phase {
  epochs: number;
  batchSize: number;
  lr: number;
  /**
   * `'sgd'`, `'adam'`, `'adamw'` or { name, ...hyperparameters } (see optimizers()). The
   * optimiser's state carries from one phase to the next while its name stays the same.
   */
  optimizer: OptimizerSpec;
}

export interface TrainSpec {
  /** Layer widths, input first; default 784-1024-1024-10. */
  widths?: number[];
  /** One replica per seed. */
  seeds: number[];
  phases: Phase[];
}

export interface EpochMetrics extends WeightMetrics {
  epoch: number;
  /** Index of the phase this epoch belongs to. */
  phase: number;
  trainLoss: number;
  trainAcc: number;
  testLoss: number;
  testAcc: number;
  /** Training throughput of this epoch (all replicas together), evaluation excluded. */
  samplesPerSec: number;
  /** The replica's loss has been NaN or infinite at or before this epoch. */
  diverged: boolean;
}

export interface InitialMetrics extends WeightMetrics {
  trainLoss?: number;
  trainAcc?: number;
  testLoss?: number;
  testAcc?: number;
}

export interface SeedResult {
  seed: number;
  initial: InitialMetrics;
  epochs: EpochMetrics[];
  /** First epoch whose loss was NaN or infinite; the other seeds go on. */
  divergedAtEpoch?: number;
}

export interface TrainResult {
  spec: TrainSpec;
  backend: string;
  trainCount: number;
  testCount: number;
  seeds: SeedResult[];
  seconds: number;
}

export type TrainEvent =
  | { type: 'start'; totalEpochs: number; stepsPerEpoch: number[]; replicas: number }
  | {
      type: 'progress';
      epoch: number;
      totalEpochs: number;
      step: number;
      stepsInEpoch: number;
      /** Mean training loss over replicas, over the last chunk of steps. */
      loss: number;
      samplesPerSec: number;
    }
  | { type: 'evaluating'; epoch: number }
  | { type: 'epoch'; epoch: number; totalEpochs: number; metrics: EpochMetrics[] };

export interface TrainOptions {
  backend?: 'cpu' | 'cuda';
  onEvent?: (e: TrainEvent) => void;
  signal?: AbortSignal;
  /** Evaluate the initial weights as well (adds one evaluation pass). */
  evaluateInitial?: boolean;
  /** Roughly how many samples per replica each native call trains (progress granularity). */
  chunkSamples?: number;
  /** Continue from a saved state instead of a fresh initialisation. */
  resume?: ResumeState;
  /** Awaited after every epoch (e.g. to write metrics and a checkpoint). */
  onEpochEnd?: (ctx: EpochEndContext) => Promise<void> | void;
}

/** What a run needs to continue after `epoch` completed epochs. */
export interface ResumeState {
  checkpoint: TrainCheckpoint;
  /** Per seed (spec order): the initial metrics and the epochs done so far. */
  seeds: SeedResult[];
}

export interface EpochEndContext {
  epoch: number;
  phase: number;
  totalEpochs: number;
  metrics: EpochMetrics[];
  seeds: readonly SeedResult[];
  /** The engine state after this epoch, for checkpoints. */
  checkpoint: () => TrainCheckpoint;
  ensemble: Ensemble;
}

/** 'param', 'snapshot', or a state slot of the optimiser (its descriptor's `state`). */
export type TensorSlot = string;

/** Slot names of checkpoints written before the optimisers had named state. */
const LEGACY_SLOTS: Readonly<Record<string, string>> = { adamM: 'expAvg', adamV: 'expAvgSq' };

/** The complete state of a training run after `epoch` epochs. */
export interface TrainCheckpoint {
  epoch: number;
  phase: number;
  /** The optimiser as the ensemble held it (see ensembleOptimizer). */
  optimizer: OptimizerSpec | ReturnType<typeof ensembleOptimizer>;
  optimizerSteps: number[];
  tensors: { slot: TensorSlot; index: number; shape: number[]; data: Float32Array }[];
  /** The data order is a function of (seed, epoch): the next epoch is all the RNG state. */
  rng: { nextEpoch: number };
}

/**
 * The optimiser of an ensemble as a checkpoint keeps it: its name and every hyperparameter, one
 * value when all replicas share it, else one per replica.
 */
export function ensembleOptimizer(ens: Ensemble): { name: string; [hyperparameter: string]: string | HyperparameterValue | HyperparameterValue[] } {
  const { name, hyper } = ens.optimizer();
  const d = optimizerDescriptor(name);
  const out: { name: string; [hyperparameter: string]: string | HyperparameterValue | HyperparameterValue[] } = { name };
  for (const h of d.hyperparameters) {
    const vals = Array.from(hyper[h.name]!, (v) => (h.type === 'boolean' ? v !== 0 : v));
    out[h.name] = vals.every((v) => v === vals[0]) ? vals[0]! : vals;
  }
  return out;
}

/** Reads the state of an ensemble (parameters, snapshot, optimiser and its state) for a checkpoint. */
export function captureCheckpoint(ens: Ensemble, epoch: number, phase: number): TrainCheckpoint {
  const optimizer = ensembleOptimizer(ens);
  const slots: TensorSlot[] = ['param', 'snapshot', ...optimizerStateSlots(optimizer.name)];
  const tensors: TrainCheckpoint['tensors'] = [];
  for (const slot of slots) {
    for (let t = 0; t < 2 * ens.layers; t++) {
      const x = ens.getTensor(t, slot);
      tensors.push({ slot, index: t, shape: [...x.shape], data: x.data });
    }
  }
  return { epoch, phase, optimizer, optimizerSteps: Array.from(ens.optimizerSteps()), tensors, rng: { nextEpoch: epoch + 1 } };
}

/** Puts a checkpoint's state into an ensemble of the same shape. */
export function restoreCheckpoint(ens: Ensemble, cp: TrainCheckpoint): void {
  // the optimiser first, with its hyperparameters (they decide which state it uses), then the state
  try {
    ens.setOptimizer(cp.optimizer);
  } catch (err) {
    throw new BsxError('BSX_RUN_CORRUPT', `checkpoint: optimizer: ${(err as Error).message}`, { cause: err });
  }
  const need = ['param', 'snapshot', ...optimizerStateSlots(ens.optimizer().name)];
  const slotOf = (s: string): string => LEGACY_SLOTS[s] ?? s;
  for (const slot of need) {
    for (let t = 0; t < 2 * ens.layers; t++) {
      const x = cp.tensors.find((k) => slotOf(k.slot) === slot && k.index === t);
      if (!x) throw new BsxError('BSX_RUN_CORRUPT', `checkpoint: tensor ${slot} ${t} is missing`);
      const shape = [ens.replicas, ...ens.tensorShape(t)];
      if (x.shape.join(',') !== shape.join(',')) {
        throw new BsxError('BSX_RUN_CORRUPT', `checkpoint: tensor ${slot} ${t} has shape [${x.shape}], the model needs [${shape}]`);
      }
      ens.setTensor(t, x.data, slot);
    }
  }
  if (cp.optimizerSteps.length !== ens.replicas) {
    throw new BsxError('BSX_RUN_CORRUPT', `checkpoint: ${cp.optimizerSteps.length} optimiser step counts for ${ens.replicas} replicas`);
  }
  ens.setOptimizerSteps(Float64Array.from(cp.optimizerSteps));
}

/**
 * The optimiser steps a seed has taken after `epochs` epochs of the spec, as train() counts them:
 * train() sets each epoch's optimiser, and the engine starts the state (and its step count) over
 * when the optimiser changes name or a seed's momentum is turned on or off. The engine's own
 * rule decides, on a one-weight ensemble that replays the phases.
 */
export function expectedOptimizerSteps(spec: Required<TrainSpec>, trainCount: number, epochs: number): number {
  const probe = new Ensemble({ replicas: 1, widths: [1, 1] });
  try {
    let e = 0;
    for (const p of spec.phases) {
      for (let k = 0; k < p.epochs && e < epochs; k++, e++) {
        probe.setOptimizer(p.optimizer);
        const s = probe.optimizerSteps()[0]!;
        probe.setOptimizerSteps(Float64Array.of(s + Math.ceil(trainCount / p.batchSize)));
      }
    }
    return probe.optimizerSteps()[0]!;
  } finally {
    probe.dispose();
  }
}

/** Checks a spec and returns it with defaults filled in; errors name the field. */
export function normalizeSpec(spec: TrainSpec, trainCount: number): Required<TrainSpec> {
  const bad = (field: string, msg: string): never => {
    throw new BsxError('BSX_INVALID_ARGUMENT', `train spec: ${field} ${msg}`);
  };
  const widths = spec.widths ?? [...DEFAULT_WIDTHS];
  if (!Array.isArray(widths) || widths.length < 2) bad('widths', 'must list at least 2 layer widths');
  widths.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 1) bad(`widths[${i}]`, `must be a positive integer, got ${w}`);
  });
  if (!Array.isArray(spec.seeds) || spec.seeds.length === 0) bad('seeds', 'must list at least one seed');
  spec.seeds.forEach((s, i) => {
    if (!Number.isSafeInteger(s) || s < 0) bad(`seeds[${i}]`, `must be an integer in [0, 2^53), got ${s}`);
  });
  if (new Set(spec.seeds).size !== spec.seeds.length) bad('seeds', 'must not repeat a seed');
  if (!Array.isArray(spec.phases) || spec.phases.length === 0) bad('phases', 'must list at least one phase');
  const optimizers = spec.phases.map((p, i) => normalizeOptimizer(p?.optimizer, `train spec: phases[${i}].optimizer`));
  spec.phases.forEach((p, i) => {
    const f = `phases[${i}]`;
    if (!Number.isInteger(p.epochs) || p.epochs < 1) bad(`${f}.epochs`, `must be a positive integer, got ${p.epochs}`);
    if (!Number.isInteger(p.batchSize) || p.batchSize < 1 || p.batchSize > trainCount) {
      bad(`${f}.batchSize`, `must be an integer in [1, ${trainCount}] (the training set size), got ${p.batchSize}`);
    }
    if (typeof p.lr !== 'number' || !Number.isFinite(p.lr) || p.lr <= 0) bad(`${f}.lr`, `must be a finite number > 0, got ${p.lr}`);
  });
  return { widths, seeds: [...spec.seeds], phases: spec.phases.map((p, i) => ({ ...p, optimizer: optimizers[i]! })) };
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BsxError('BSX_CANCELLED', 'training cancelled');
}

/** Trains every seed of the spec together and returns per-seed, per-epoch metrics. */
export async function train(
  specIn: TrainSpec,
  data: { train: Dataset; test: Dataset },
  opts: TrainOptions = {},
): Promise<TrainResult> {
  const t0 = performance.now();
  const spec = normalizeSpec(specIn, data.train.count);
  const R = spec.seeds.length;
  const N = data.train.count;
  const backend = opts.backend ?? 'cpu';
  checkMemory(estimateTrainingMemory({ replicas: R, widths: spec.widths, phases: spec.phases, trainCount: N, testCount: data.test.count, backend }));
  const ens = new Ensemble({ replicas: R, widths: spec.widths, backend });
  ens.init(spec.seeds);
  ens.snapshot();

  let seeds: SeedResult[];
  let startEpoch = 0;
  if (opts.resume) {
    const rs = opts.resume;
    if (rs.seeds.length !== R || rs.seeds.some((s, i) => s.seed !== spec.seeds[i])) {
      throw new BsxError('BSX_RUN_CORRUPT', 'resume: the saved seeds do not match the spec');
    }
    restoreCheckpoint(ens, rs.checkpoint);
    startEpoch = rs.checkpoint.epoch;
    seeds = rs.seeds.map((s) => ({
      ...s,
      epochs: s.epochs.filter((e) => e.epoch <= startEpoch),
    }));
    seeds.forEach((s) => {
      if (s.divergedAtEpoch !== undefined && s.divergedAtEpoch > startEpoch) delete s.divergedAtEpoch;
    });
  } else {
    const initW = ens.stats().map(weightMetrics);
    let tr: Awaited<ReturnType<Ensemble['evaluate']>> | undefined;
    let te: Awaited<ReturnType<Ensemble['evaluate']>> | undefined;
    if (opts.evaluateInitial) {
      tr = await ens.evaluate(data.train);
      te = await ens.evaluate(data.test);
    }
    seeds = spec.seeds.map((seed, r) => ({
      seed,
      initial: {
        ...initW[r]!,
        ...(tr && te ? { trainLoss: tr.loss[r]!, trainAcc: tr.accuracy[r]!, testLoss: te.loss[r]!, testAcc: te.accuracy[r]! } : {}),
      },
      epochs: [],
    }));
  }

  const totalEpochs = spec.phases.reduce((a, p) => a + p.epochs, 0);
  const stepsPerEpoch = spec.phases.map((p) => Math.ceil(N / p.batchSize));
  opts.onEvent?.({ type: 'start', totalEpochs, stepsPerEpoch, replicas: R });

  const order = new Int32Array(N);
  const indices = new Int32Array(R * N);
  let epoch = 0;
  for (let ph = 0; ph < spec.phases.length; ph++) {
    const phase = spec.phases[ph]!;
    const b = phase.batchSize;
    const steps = Math.ceil(N / b);
    const chunkSteps = Math.max(1, Math.floor((opts.chunkSamples ?? 8192) / b));
    for (let e = 0; e < phase.epochs; e++) {
      epoch += 1;
      if (epoch <= startEpoch) continue;
      ens.setOptimizer(phase.optimizer);
      for (let r = 0; r < R; r++) {
        epochPermutation(spec.seeds[r]!, epoch, N, order);
        indices.set(order, r * N);
      }
      const tStart = performance.now();
      const trainLossSum = new Float64Array(R);
      for (let s = 0; s < steps; s += chunkSteps) {
        checkAborted(opts.signal);
        const lo = s * b;
        const hi = Math.min(N, (s + chunkSteps) * b);
        const n = hi - lo;
        const chunk = new Int32Array(R * n);
        for (let r = 0; r < R; r++) chunk.set(indices.subarray(r * N + lo, r * N + hi), r * n);
        const tc = performance.now();
        const loss = await ens.train(data.train, chunk, { batchSize: b, lr: phase.lr });
        const dt = (performance.now() - tc) / 1000;
        let mean = 0;
        let finite = 0;
        loss.forEach((v, r) => {
          trainLossSum[r] += v * n;
          if (Number.isFinite(v)) {
            mean += v;
            finite++;
          }
        });
        opts.onEvent?.({
          type: 'progress',
          epoch,
          totalEpochs,
          step: Math.min(steps, s + chunkSteps),
          stepsInEpoch: steps,
          loss: finite > 0 ? mean / finite : Number.NaN,
          samplesPerSec: (n * R) / dt,
        });
      }
      const trainSeconds = (performance.now() - tStart) / 1000;
      checkAborted(opts.signal);
      opts.onEvent?.({ type: 'evaluating', epoch });
      const tr = await ens.evaluate(data.train);
      const te = await ens.evaluate(data.test);
      const wm = ens.stats().map(weightMetrics);
      const metrics: EpochMetrics[] = [];
      for (let r = 0; r < R; r++) {
        const seed = seeds[r]!;
        const bad = !Number.isFinite(trainLossSum[r]!) || !Number.isFinite(tr.loss[r]!);
        if (bad && seed.divergedAtEpoch === undefined) seed.divergedAtEpoch = epoch;
        const m: EpochMetrics = {
          epoch,
          phase: ph,
          trainLoss: tr.loss[r]!,
          trainAcc: tr.accuracy[r]!,
          testLoss: te.loss[r]!,
          testAcc: te.accuracy[r]!,
          ...wm[r]!,
          samplesPerSec: (N * R) / trainSeconds,
          diverged: seed.divergedAtEpoch !== undefined,
        };
        metrics.push(m);
        seed.epochs.push(m);
      }
      await opts.onEpochEnd?.({
        epoch,
        phase: ph,
        totalEpochs,
        metrics,
        seeds,
        checkpoint: () => captureCheckpoint(ens, epoch, ph),
        ensemble: ens,
      });
      opts.onEvent?.({ type: 'epoch', epoch, totalEpochs, metrics });
    }
  }
  return {
    spec,
    backend: ens.backend,
    trainCount: N,
    testCount: data.test.count,
    seeds,
    seconds: (performance.now() - t0) / 1000,
  };
}
