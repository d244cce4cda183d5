// Training runs: an Ensemble of one replica per seed, driven through a list of phases
// (epochs, batch size, lr, optimiser), evaluated on the full train and test sets after every
// epoch. The data order of seed s in epoch e is epochPermutation(s, e, n): the same whether
// the seed runs alone or among others.

import { Dataset } from '../engine/dataset.js';
import { DEFAULT_WIDTHS, Ensemble } from '../engine/ensemble.js';
import {
  normalizeOptimizer,
  optimizerDescriptor,
  optimizerName,
  optimizerStateSlots,
  resolveOptimizer,
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
  const spec = normalizeSpec(specIn, data.train.count);
  const { resume, onEpochEnd, ...rest } = opts;
  const [result] = await trainPack([{ spec, ...(resume ? { resume } : {}) }], data, {
    ...rest,
    ...(onEpochEnd ? { onEpochEnd: (_m: number, ctx: EpochEndContext) => onEpochEnd(ctx) } : {}),
  });
  return result!;
}

/**
 * @internal One run of a pack: its spec (normalised) and, to continue it, its saved state.
 */
export interface PackMember {
  spec: Required<TrainSpec>;
  resume?: ResumeState;
}

/** @internal Options of trainPack: train()'s, with onEpochEnd told which member the epoch is of. */
export interface PackOptions extends Omit<TrainOptions, 'resume' | 'onEpochEnd'> {
  onEpochEnd?: (member: number, ctx: EpochEndContext) => Promise<void> | void;
}

/**
 * Whether a phase's optimiser is plain SGD (no momentum, no weight decay): the engine's fused
 * small-batch path takes an ensemble only when every replica is plain (Ensemble::plain_sgd),
 * so plain and other replicas are never packed together (their steps would take other kernels).
 */
export function isPlainSgd(spec: OptimizerSpec): boolean {
  const r = resolveOptimizer(spec);
  return r.name === 'sgd' && r.hyper.momentum === 0 && r.hyper.weightDecay === 0;
}

/**
 * What runs must share to be trained together as one ensemble (trainPack): the model, each
 * phase's batch size, epochs and optimiser name, and whether it is plain SGD. Learning rates,
 * seeds and the optimiser's hyperparameters may differ from run to run.
 */
export function packSignature(spec: Required<TrainSpec>): string {
  return JSON.stringify({
    widths: spec.widths,
    phases: spec.phases.map((p) => [p.batchSize, p.epochs, optimizerName(p.optimizer), isPlainSgd(p.optimizer)]),
  });
}

/** The optimiser of replicas [r0, r1) of an ensemble, as a checkpoint keeps it (see ensembleOptimizer). */
function optimizerOfReplicas(ens: Ensemble, r0: number, r1: number): ReturnType<typeof ensembleOptimizer> {
  const { name, hyper } = ens.optimizer();
  const d = optimizerDescriptor(name);
  const out: ReturnType<typeof ensembleOptimizer> = { name };
  for (const h of d.hyperparameters) {
    const vals = Array.from(hyper[h.name]!.subarray(r0, r1), (v) => (h.type === 'boolean' ? v !== 0 : v));
    out[h.name] = vals.every((v) => v === vals[0]) ? vals[0]! : vals;
  }
  return out;
}

/** The state of replicas [r0, r1) of an ensemble, as the checkpoint of a run of those replicas alone. */
function captureReplicas(ens: Ensemble, r0: number, r1: number, epoch: number, phase: number): TrainCheckpoint {
  if (r0 === 0 && r1 === ens.replicas) return captureCheckpoint(ens, epoch, phase);
  const optimizer = optimizerOfReplicas(ens, r0, r1);
  const slots: TensorSlot[] = ['param', 'snapshot', ...optimizerStateSlots(optimizer.name)];
  const tensors: TrainCheckpoint['tensors'] = [];
  for (const slot of slots) {
    for (let t = 0; t < 2 * ens.layers; t++) {
      const x = ens.getTensor(t, slot);
      const per = x.data.length / ens.replicas;
      tensors.push({ slot, index: t, shape: [r1 - r0, ...x.shape.slice(1)], data: x.data.slice(r0 * per, r1 * per) });
    }
  }
  const steps = Array.from(ens.optimizerSteps()).slice(r0, r1);
  return { epoch, phase, optimizer, optimizerSteps: steps, tensors, rng: { nextEpoch: epoch + 1 } };
}

/** One value per replica of a hyperparameter, from a member's optimiser (one value, or one per its replicas). */
function perReplica(v: unknown, replicas: number, what: string): (number | boolean)[] {
  if (Array.isArray(v)) {
    if (v.length !== replicas) throw new BsxError('BSX_RUN_CORRUPT', `${what}: ${v.length} values for ${replicas} replicas`);
    return v as (number | boolean)[];
  }
  return Array.from({ length: replicas }, () => v as number | boolean);
}

/** The members' checkpoints put together as the checkpoint of the whole pack (members in order). */
function joinCheckpoints(members: readonly PackMember[], widthsLayers: number): TrainCheckpoint {
  const cps = members.map((m) => m.resume!.checkpoint);
  const first = cps[0]!;
  const name = optimizerName(first.optimizer as OptimizerSpec);
  const d = optimizerDescriptor(name);
  const optimizer: { name: string; [h: string]: string | HyperparameterValue | HyperparameterValue[] } = { name };
  for (const h of d.hyperparameters) {
    const vals: (number | boolean)[] = [];
    cps.forEach((cp, i) => {
      const o = cp.optimizer as Record<string, unknown>;
      const R = members[i]!.spec.seeds.length;
      const v = typeof cp.optimizer === 'string' || o[h.name] === undefined ? h.default : o[h.name];
      vals.push(...perReplica(v, R, `checkpoint of run ${i}: optimizer.${h.name}`));
    });
    optimizer[h.name] = vals;
  }
  const tensors: TrainCheckpoint['tensors'] = [];
  for (const slot of ['param', 'snapshot', ...optimizerStateSlots(name)]) {
    for (let t = 0; t < 2 * widthsLayers; t++) {
      const parts = cps.map((cp) => cp.tensors.find((x) => (LEGACY_SLOTS[x.slot] ?? x.slot) === slot && x.index === t));
      if (parts.some((x) => x === undefined)) throw new BsxError('BSX_RUN_CORRUPT', `checkpoint: tensor ${slot} ${t} is missing`);
      const total = parts.reduce((a, x) => a + x!.data.length, 0);
      const data = new Float32Array(total);
      let off = 0;
      for (const x of parts) {
        data.set(x!.data, off);
        off += x!.data.length;
      }
      const rows = parts.reduce((a, x) => a + x!.shape[0]!, 0);
      tensors.push({ slot, index: t, shape: [rows, ...parts[0]!.shape.slice(1)], data });
    }
  }
  return {
    epoch: first.epoch,
    phase: first.phase,
    optimizer,
    optimizerSteps: cps.flatMap((cp) => cp.optimizerSteps),
    tensors,
    rng: { nextEpoch: first.rng.nextEpoch },
  };
}

/**
 * The optimiser of a phase for the whole pack: the members' own spec when they all use the same
 * (exactly what a run alone sets), else one value per replica of every hyperparameter.
 */
function packOptimizer(members: readonly PackMember[], ph: number): OptimizerSpec | ReturnType<typeof ensembleOptimizer> {
  const specs = members.map((m) => m.spec.phases[ph]!.optimizer);
  if (specs.every((o) => canonical(o) === canonical(specs[0]!))) return specs[0]!;
  const name = optimizerName(specs[0]!);
  const out: ReturnType<typeof ensembleOptimizer> = { name };
  const resolved = specs.map((o) => resolveOptimizer(o));
  for (const h of optimizerDescriptor(name).hyperparameters) {
    out[h.name] = members.flatMap((m, i) => Array.from({ length: m.spec.seeds.length }, () => resolved[i]!.hyper[h.name]!));
  }
  return out;
}

function canonical(o: OptimizerSpec): string {
  return typeof o === 'string' ? o : JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * @internal Trains several runs together as one ensemble: the replicas of member 0 (one per
 * seed), then member 1's, ... Every member must have the same packSignature; their learning
 * rates, seeds and optimiser hyperparameters may differ. Each replica is trained as it would
 * be in a run of its own member alone (the engine treats replicas independently, and the
 * optimiser's kernels depend only on what the signature fixes), so every member's result is
 * the one train() gives for its spec alone. Members that continue from saved state must all
 * have stopped after the same epoch.
 */
export async function trainPack(
  members: readonly PackMember[],
  data: { train: Dataset; test: Dataset },
  opts: PackOptions = {},
): Promise<TrainResult[]> {
  const t0 = performance.now();
  if (members.length === 0) throw new BsxError('BSX_INVALID_ARGUMENT', 'trainPack: no runs to train');
  const sig = packSignature(members[0]!.spec);
  members.forEach((m, i) => {
    if (packSignature(m.spec) !== sig) {
      throw new BsxError('BSX_INVALID_ARGUMENT', `trainPack: run ${i} has another model, batch-size schedule or optimiser than run 0 and cannot be packed with it`);
    }
  });
  const resumed = members.filter((m) => m.resume !== undefined);
  if (resumed.length !== 0 && resumed.length !== members.length) {
    throw new BsxError('BSX_INVALID_ARGUMENT', 'trainPack: either every run continues from saved state or none does');
  }
  const spec0 = members[0]!.spec;
  const offsets: number[] = [];
  let R = 0;
  for (const m of members) {
    offsets.push(R);
    R += m.spec.seeds.length;
  }
  const allSeeds = members.flatMap((m) => m.spec.seeds);
  const N = data.train.count;
  const backend = opts.backend ?? 'cpu';
  checkMemory(
    estimateTrainingMemory({
      replicas: R,
      widths: spec0.widths,
      phases: members.flatMap((m) => m.spec.phases),
      trainCount: N,
      testCount: data.test.count,
      backend,
    }),
  );
  const ens = new Ensemble({ replicas: R, widths: spec0.widths, backend });
  ens.init(allSeeds);
  ens.snapshot();

  let seeds: SeedResult[];
  let startEpoch = 0;
  if (resumed.length > 0) {
    const epochs = new Set(members.map((m) => m.resume!.checkpoint.epoch));
    if (epochs.size !== 1) throw new BsxError('BSX_INVALID_ARGUMENT', `trainPack: the runs stopped after different epochs (${[...epochs].join(', ')})`);
    members.forEach((m, i) => {
      const rs = m.resume!;
      if (rs.seeds.length !== m.spec.seeds.length || rs.seeds.some((s, j) => s.seed !== m.spec.seeds[j])) {
        throw new BsxError('BSX_RUN_CORRUPT', `resume: the saved seeds of run ${i} do not match its spec`);
      }
    });
    const cp = members.length === 1 ? members[0]!.resume!.checkpoint : joinCheckpoints(members, spec0.widths.length - 1);
    restoreCheckpoint(ens, cp);
    startEpoch = cp.epoch;
    seeds = members.flatMap((m) =>
      m.resume!.seeds.map((s) => {
        const c: SeedResult = { ...s, epochs: s.epochs.filter((e) => e.epoch <= startEpoch) };
        if (c.divergedAtEpoch !== undefined && c.divergedAtEpoch > startEpoch) delete c.divergedAtEpoch;
        return c;
      }),
    );
  } else {
    const initW = ens.stats().map(weightMetrics);
    let tr: Awaited<ReturnType<Ensemble['evaluate']>> | undefined;
    let te: Awaited<ReturnType<Ensemble['evaluate']>> | undefined;
    if (opts.evaluateInitial) {
      tr = await ens.evaluate(data.train);
      te = await ens.evaluate(data.test);
    }
    seeds = allSeeds.map((seed, r) => ({
      seed,
      initial: {
        ...initW[r]!,
        ...(tr && te ? { trainLoss: tr.loss[r]!, trainAcc: tr.accuracy[r]!, testLoss: te.loss[r]!, testAcc: te.accuracy[r]! } : {}),
      },
      epochs: [],
    }));
  }

  const phases = spec0.phases;
  const totalEpochs = phases.reduce((a, p) => a + p.epochs, 0);
  const stepsPerEpoch = phases.map((p) => Math.ceil(N / p.batchSize));
  opts.onEvent?.({ type: 'start', totalEpochs, stepsPerEpoch, replicas: R });

  const order = new Int32Array(N);
  const indices = new Int32Array(R * N);
  let epoch = 0;
  for (let ph = 0; ph < phases.length; ph++) {
    const phase = phases[ph]!;
    const b = phase.batchSize;
    const steps = Math.ceil(N / b);
    const chunkSteps = Math.max(1, Math.floor((opts.chunkSamples ?? 8192) / b));
    // one learning rate for all replicas when the members share it (as a run alone passes it)
    const lrs = members.map((m) => m.spec.phases[ph]!.lr);
    const lr: number | Float32Array = lrs.every((x) => x === lrs[0])
      ? lrs[0]!
      : Float32Array.from(members.flatMap((m) => m.spec.seeds.map(() => m.spec.phases[ph]!.lr)));
    const optimizer = packOptimizer(members, ph);
    for (let e = 0; e < phase.epochs; e++) {
      epoch += 1;
      if (epoch <= startEpoch) continue;
      ens.setOptimizer(optimizer);
      for (let r = 0; r < R; r++) {
        epochPermutation(allSeeds[r]!, epoch, N, order);
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
        const loss = await ens.train(data.train, chunk, { batchSize: b, lr });
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
      for (let i = 0; i < members.length; i++) {
        const r0 = offsets[i]!;
        const r1 = r0 + members[i]!.spec.seeds.length;
        await opts.onEpochEnd?.(i, {
          epoch,
          phase: ph,
          totalEpochs,
          metrics: metrics.slice(r0, r1),
          seeds: seeds.slice(r0, r1),
          checkpoint: () => captureReplicas(ens, r0, r1, epoch, ph),
          ensemble: ens,
        });
      }
      opts.onEvent?.({ type: 'epoch', epoch, totalEpochs, metrics });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return members.map((m, i) => ({
    spec: m.spec,
    backend: ens.backend,
    trainCount: N,
    testCount: data.test.count,
    seeds: seeds.slice(offsets[i]!, offsets[i]! + m.spec.seeds.length),
    seconds,
  }));
}
