// Training runs: an Ensemble of one replica per seed, driven through a list of phases
// (epochs, batch size, lr, optimiser), evaluated on the full train and test sets after every
// epoch. The data order of seed s in epoch e is epochPermutation(s, e, n): the same whether
// the seed runs alone or among others.

import { Dataset } from '../engine/dataset.js';
import { DEFAULT_WIDTHS, Ensemble, type OptimizerKind } from '../engine/ensemble.js';
import { BsxError } from '../errors.js';
import { epochPermutation } from '../rng/philox.js';
import { weightMetrics, type WeightMetrics } from './metrics.js';

export interface Phase {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerKind;
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
  spec.phases.forEach((p, i) => {
    const f = `phases[${i}]`;
    if (!Number.isInteger(p.epochs) || p.epochs < 1) bad(`${f}.epochs`, `must be a positive integer, got ${p.epochs}`);
    if (!Number.isInteger(p.batchSize) || p.batchSize < 1 || p.batchSize > trainCount) {
      bad(`${f}.batchSize`, `must be an integer in [1, ${trainCount}] (the training set size), got ${p.batchSize}`);
    }
    if (typeof p.lr !== 'number' || !Number.isFinite(p.lr) || p.lr <= 0) bad(`${f}.lr`, `must be a finite number > 0, got ${p.lr}`);
    if (p.optimizer !== 'sgd' && p.optimizer !== 'adam') bad(`${f}.optimizer`, `must be sgd or adam, got ${String(p.optimizer)}`);
  });
  return { widths, seeds: [...spec.seeds], phases: spec.phases.map((p) => ({ ...p })) };
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
  const ens = new Ensemble({ replicas: R, widths: spec.widths, backend: opts.backend ?? 'cpu' });
  ens.init(spec.seeds);
  ens.snapshot();

  const seeds: SeedResult[] = spec.seeds.map((seed) => ({ seed, initial: undefined as unknown as InitialMetrics, epochs: [] }));
  const initW = ens.stats().map(weightMetrics);
  let initEval: { tr?: Awaited<ReturnType<Ensemble['evaluate']>>; te?: Awaited<ReturnType<Ensemble['evaluate']>> } = {};
  if (opts.evaluateInitial) {
    initEval = { tr: await ens.evaluate(data.train), te: await ens.evaluate(data.test) };
  }
  for (let r = 0; r < R; r++) {
    seeds[r]!.initial = {
      ...initW[r]!,
      ...(initEval.tr && initEval.te
        ? {
            trainLoss: initEval.tr.loss[r]!,
            trainAcc: initEval.tr.accuracy[r]!,
            testLoss: initEval.te.loss[r]!,
            testAcc: initEval.te.accuracy[r]!,
          }
        : {}),
    };
  }

  const totalEpochs = spec.phases.reduce((a, p) => a + p.epochs, 0);
  const stepsPerEpoch = spec.phases.map((p) => Math.ceil(N / p.batchSize));
  opts.onEvent?.({ type: 'start', totalEpochs, stepsPerEpoch, replicas: R });

  const order = new Int32Array(N);
  const indices = new Int32Array(R * N);
  let epoch = 0;
  for (let ph = 0; ph < spec.phases.length; ph++) {
    const phase = spec.phases[ph]!;
    ens.setOptimizer(phase.optimizer);
    const b = phase.batchSize;
    const steps = Math.ceil(N / b);
    const chunkSteps = Math.max(1, Math.floor((opts.chunkSamples ?? 8192) / b));
    for (let e = 0; e < phase.epochs; e++) {
      epoch += 1;
      for (let r = 0; r < R; r++) {
        epochPermutation(spec.seeds[r]!, epoch, N, order);
        indices.set(order, r * N);
      }
      const tStart = performance.now();
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
        for (const v of loss) mean += v / R;
        opts.onEvent?.({
          type: 'progress',
          epoch,
          totalEpochs,
          step: Math.min(steps, s + chunkSteps),
          stepsInEpoch: steps,
          loss: mean,
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
        const m: EpochMetrics = {
          epoch,
          phase: ph,
          trainLoss: tr.loss[r]!,
          trainAcc: tr.accuracy[r]!,
          testLoss: te.loss[r]!,
          testAcc: te.accuracy[r]!,
          ...wm[r]!,
          samplesPerSec: (N * R) / trainSeconds,
        };
        metrics.push(m);
        seeds[r]!.epochs.push(m);
      }
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
