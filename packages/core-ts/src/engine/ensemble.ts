// Ensemble: R independent MLP replicas trained together on one engine backend. Every
// argument is checked here with a message that names it (the engine checks again); native
// failures are rethrown with the caller's stack and their `code`. The optimisers and the
// names of the statistics come from the engine's tables (engine/optimizers.ts, describe()).

import { binding, type NativeEnsemble, type NativeSlot } from './binding.js';
import type { Dataset } from './dataset.js';
import type { OptimizerOptions, OptimizerSpec } from './optimizers.js';
import { Tensor } from './tensor.js';

/**
 * An optimiser for setOptimizer: a name, or { name, <hyperparameter>: value }, where a value
 * may also be an array with one value per replica.
 */
export type EnsembleOptimizer =
  | OptimizerSpec
  | { name: string; [hyperparameter: string]: string | number | boolean | readonly (number | boolean)[] };

export interface EnsembleOptions {
  replicas: number;
  /** Layer widths, input first: default [784, 1024, 1024, 10]. */
  widths?: number[];
  backend?: 'cpu' | 'cuda';
}

export interface EvalResult {
  /** Mean loss per replica. */
  loss: Float64Array;
  /** Accuracy (fraction in [0,1]) per replica. */
  accuracy: Float64Array;
  count: number;
}

/**
 * Per replica and layer: the statistics of weights (W) and biases (b) against the snapshot, by
 * the engine's names (describe().layerStats): weightNorm2 |W|^2, weightDist2 |W - W0|^2,
 * weightDot <W, W0>, weightSnapNorm2 |W0|^2, and the same for the biases (bias...).
 */
export type LayerStats = { readonly [name: string]: number };

/**
 * Per-trial statistics of a layer's weight gradient g_i (the last layer's by default) over the
 * steps of a trial, one value per replica, by the engine's names (describe().trialStats): sumNormMean |sum_i g_i|
 * (g_i: gradient of the batch-mean loss), sumNormSum |sum_i b_i g_i| (the batch-sum loss),
 * stepNormMean mean_i |g_i|, stepNormSum mean_i b_i |g_i|, firstStepNorm2 |g_1|^2 (at the
 * starting weights), steps.
 */
export type TrialStats = { readonly [name: string]: Float64Array };

/** Reads a statistic by name; an Error names it when the engine has none of that name. */
export function stat<T>(stats: { readonly [name: string]: T }, name: string): T {
  const v = stats[name];
  if (v === undefined) throw new Error(`the engine reports no statistic named '${name}' (it has: ${Object.keys(stats).join(', ')})`);
  return v;
}

/** Value counts: [underflow, bins..., overflow, nan]. */
export interface TrialHistograms {
  mean: Float64Array;
  sum: Float64Array;
}

export const DEFAULT_WIDTHS: readonly number[] = Object.freeze([784, 1024, 1024, 10]);

function checkInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`Expected ${name} to be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`Expected ${name} to be in [${min}, ${max}], got ${value}`);
  return value;
}

/** The native error's message, name and code on an error made at the caller's stack. */
function rethrowHere(here: Error, err: unknown, what: string): never {
  const e = err as Error & { code?: string };
  const out = e instanceof TypeError ? new TypeError() : e instanceof RangeError ? new RangeError() : here;
  if (out !== here) out.stack = here.stack?.replace(/^Error/, out.name);
  out.message = e?.message ?? `${what} failed`;
  if (e?.code !== undefined) (out as Error & { code?: string }).code = e.code;
  (out as Error & { cause?: unknown }).cause = err;
  throw out;
}

/** Runs an async native call; on failure rethrows at the caller's stack. */
async function withStack<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const here = new Error();
  try {
    return await fn();
  } catch (err) {
    rethrowHere(here, err, what);
  }
}

function layerStatNames(): readonly string[] {
  return (namesCache ??= binding().describe()).layerStats;
}
function trialStatNames(): readonly string[] {
  return (namesCache ??= binding().describe()).trialStats;
}
let namesCache: { layerStats: string[]; trialStats: string[] } | undefined;

export class Ensemble {
  readonly replicas: number;
  readonly widths: readonly number[];
  readonly backend: 'cpu' | 'cuda';
  /** @internal the engine's handle; not part of the public API */
  readonly native: NativeEnsemble;

  constructor(opts: EnsembleOptions) {
    const replicas = checkInt(opts.replicas, 'replicas', 1, 1 << 20);
    const widths = opts.widths ?? [...DEFAULT_WIDTHS];
    if (!Array.isArray(widths) || widths.length < 2) throw new TypeError('Expected widths to be an array of >= 2 integers');
    widths.forEach((w, i) => checkInt(w, `widths[${i}]`, 1, 1 << 16));
    const backend = opts.backend ?? 'cpu';
    this.native = new (binding().Ensemble)({ replicas, widths: [...widths], backend });
    this.replicas = replicas;
    this.widths = Object.freeze([...widths]);
    this.backend = backend;
  }

  get layers(): number {
    return this.widths.length - 1;
  }

  /**
   * Frees the engine's memory now (at the end of a call in flight, if one runs) instead of when
   * the object is garbage-collected. Every later call throws an error with code BSX_DISPOSED.
   */
  dispose(): void {
    this.native.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get disposed(): boolean {
    return this.native.disposed;
  }

  /** Parameters per replica. */
  get parameterCount(): number {
    return this.native.parameterCount;
  }

  /** Shape of tensor t (W0, b0, W1, b1, ...) for one replica. */
  tensorShape(t: number): number[] {
    checkInt(t, 'tensor', 0, 2 * this.layers - 1);
    const l = Math.floor(t / 2);
    return t % 2 === 0 ? [this.widths[l + 1]!, this.widths[l]!] : [this.widths[l + 1]!];
  }

  /** Xavier-uniform weights and zero biases; replica r from seeds[r]. Resets the optimiser. */
  init(seeds: readonly number[]): void {
    if (seeds.length !== this.replicas) {
      throw new RangeError(`Expected ${this.replicas} seeds (one per replica), got ${seeds.length}`);
    }
    seeds.forEach((s, i) => checkInt(s, `seeds[${i}]`, 0));
    this.native.init(Float64Array.from(seeds));
  }

  /** Keeps a copy of the parameters (distances and cosines are measured against it). */
  snapshot(): void {
    this.native.snapshot();
  }

  /**
   * Sets the optimiser (see optimizers() for the names, hyperparameters and defaults; a value
   * may be one per replica). Changing the optimiser's name resets its state (moments, momentum
   * buffers, step counts); the same name keeps it, as between the phases of a schedule.
   */
  setOptimizer(optimizer: EnsembleOptimizer): void {
    const opts = typeof optimizer === 'string' ? { name: optimizer } : optimizer;
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
      throw new TypeError(`Expected optimizer to be a name or { name, ...hyperparameters }, got ${String(optimizer)}`);
    }
    const here = new Error();
    try {
      this.native.setOptimizer({ ...(opts as OptimizerOptions) });
    } catch (err) {
      rethrowHere(here, err, 'setOptimizer');
    }
  }

  /** The current optimiser: its name and each hyperparameter per replica. */
  optimizer(): { name: string; hyper: Record<string, Float64Array> } {
    const { name, ...hyper } = this.native.getOptimizer();
    return { name: name as string, hyper: hyper as Record<string, Float64Array> };
  }

  /** Which kernels a training step of `batchSize` takes with the current optimiser, and why. */
  stepPath(batchSize: number): { path: 'small-batch' | 'gemm'; reason: string } {
    return this.native.stepPath(checkInt(batchSize, 'batchSize', 1));
  }

  resetOptimizerState(): void {
    this.native.resetOptimizerState();
  }

  /**
   * Trains replica r on indices[r*n .. r*n+n) in steps of batchSize (the last step short when
   * batchSize does not divide n), at learning rate lr (one number or one per replica).
   * Resolves to the mean training loss per replica over those samples.
   */
  async train(
    dataset: Dataset,
    indices: Int32Array,
    opts: { batchSize: number; lr: number | readonly number[] | Float32Array },
  ): Promise<Float64Array> {
    if (!(indices instanceof Int32Array)) throw new TypeError('Expected indices to be an Int32Array');
    if (indices.length === 0 || indices.length % this.replicas !== 0) {
      throw new RangeError(`Expected indices to hold replicas x n = ${this.replicas} x n values, got ${indices.length}`);
    }
    const n = indices.length / this.replicas;
    const batchSize = checkInt(opts.batchSize, 'batchSize', 1, dataset.count);
    const lr = this.lrArray(opts.lr);
    return withStack('train', () => this.native.train(dataset.native, indices, n, batchSize, lr));
  }

  /** Mean loss and accuracy of every replica on rows [start, start+count) of the dataset. */
  async evaluate(dataset: Dataset, start = 0, count = dataset.count - start): Promise<EvalResult> {
    checkInt(start, 'start', 0, dataset.count - 1);
    checkInt(count, 'count', 1, dataset.count - start);
    const r = await withStack('evaluate', () => this.native.evaluate(dataset.native, start, count));
    const loss = new Float64Array(this.replicas);
    const accuracy = new Float64Array(this.replicas);
    for (let i = 0; i < this.replicas; i++) {
      loss[i] = r.lossSum[i]! / r.count;
      accuracy[i] = r.correct[i]! / r.count;
    }
    return { loss, accuracy, count: r.count };
  }

  /** Log-probabilities [R, b, classes] for batch indices [R, b]. */
  forward(dataset: Dataset, indices: Int32Array): Tensor {
    const b = this.batchOf(indices);
    const out = this.native.forward(dataset.native, indices, b);
    return new Tensor([this.replicas, b, this.widths[this.widths.length - 1]!], out);
  }

  /** Gradients of the batch-mean loss for indices [R, b]; no state changes. */
  gradients(dataset: Dataset, indices: Int32Array): { loss: Float64Array; grads: Tensor[] } {
    const b = this.batchOf(indices);
    const r = this.native.gradients(dataset.native, indices, b);
    return { loss: r.loss, grads: r.grads.map((g, t) => new Tensor([this.replicas, ...this.tensorShape(t)], g)) };
  }

  /** Tensor t of a slot as [R, ...shape]. */
  getTensor(t: number, slot: NativeSlot = 'param'): Tensor {
    const shape = this.tensorShape(t);
    return new Tensor([this.replicas, ...shape], this.native.getTensor(slot, t));
  }

  setTensor(t: number, data: Float32Array, slot: NativeSlot = 'param'): void {
    const shape = this.tensorShape(t);
    const need = this.replicas * shape.reduce((a, b) => a * b, 1);
    if (!(data instanceof Float32Array)) throw new TypeError('Expected data to be a Float32Array');
    if (data.length !== need) throw new RangeError(`Expected tensor ${t} data to have ${need} values, got ${data.length}`);
    this.native.setTensor(slot, t, data);
  }

  /** All parameters, W0, b0, W1, b1, ..., each [R, ...]. */
  parameters(): Tensor[] {
    return Array.from({ length: 2 * this.layers }, (_, t) => this.getTensor(t));
  }

  optimizerSteps(): Float64Array {
    return this.native.getOptimizerSteps();
  }

  setOptimizerSteps(steps: Float64Array): void {
    this.native.setOptimizerSteps(steps);
  }

  /** Per replica, per layer statistics against the snapshot, by name: stats[r][l].weightNorm2. */
  stats(): LayerStats[][] {
    const raw = this.native.stats();
    const names = layerStatNames();
    const K = names.length;
    const out: LayerStats[][] = [];
    for (let r = 0; r < this.replicas; r++) {
      const layers: LayerStats[] = [];
      for (let l = 0; l < this.layers; l++) {
        const o = (r * this.layers + l) * K;
        layers.push(Object.fromEntries(names.map((n, k) => [n, raw[o + k]!])));
      }
      out.push(layers);
    }
    return out;
  }

  /** Sets tensor t of every replica to `data` (one replica's values). */
  setTensorBroadcast(t: number, data: Float32Array, slot: NativeSlot = 'param'): void {
    const need = this.tensorShape(t).reduce((a, b) => a * b, 1);
    if (!(data instanceof Float32Array)) throw new TypeError('Expected data to be a Float32Array');
    if (data.length !== need) throw new RangeError(`Expected tensor ${t} data to have ${need} values, got ${data.length}`);
    this.native.setTensorBroadcast(slot, t, data);
  }

  /** Parameters of every replica := its snapshot. */
  resetToSnapshot(): void {
    this.native.resetToSnapshot();
  }

  /**
   * Gradient-competition trials, one per replica: plain SGD at `lr` through indices [R, n] in
   * batches of `batchSize` (the last one short), with statistics of the weight gradient of
   * `layer` (from 0; default the last) and histograms of the summed gradient's values into
   * fixed edges. `lr` 0 freezes the weights: the same samples and steps without an update (on
   * the CPU a forward and backward-data pass per block of steps, then each step's gradient).
   */
  async gradTrials(
    dataset: Dataset,
    indices: Int32Array,
    opts: { batchSize: number; lr: number; edgesMean: readonly number[]; edgesSum: readonly number[]; exportS?: boolean; layer?: number },
  ): Promise<{ stats: TrialStats; hist: TrialHistograms; s?: Tensor }> {
    if (!(indices instanceof Int32Array)) throw new TypeError('Expected indices to be an Int32Array');
    if (indices.length === 0 || indices.length % this.replicas !== 0) {
      throw new RangeError(`Expected indices to hold replicas x n = ${this.replicas} x n values, got ${indices.length}`);
    }
    const n = indices.length / this.replicas;
    const b = checkInt(opts.batchSize, 'batchSize', 1, n);
    if (!Number.isFinite(opts.lr) || opts.lr < 0) throw new RangeError(`Expected lr to be a finite number >= 0 (0: frozen weights), got ${opts.lr}`);
    const layer = opts.layer === undefined ? this.layers - 1 : checkInt(opts.layer, 'layer', 0, this.layers - 1);
    const r = await withStack('gradTrials', () =>
      this.native.gradTrials(
        dataset.native,
        indices,
        n,
        b,
        opts.lr,
        Float32Array.from(opts.edgesMean),
        Float32Array.from(opts.edgesSum),
        opts.exportS ?? false,
        layer,
      ),
    );
    const R = this.replicas;
    const names = trialStatNames();
    const K = names.length;
    const stats: TrialStats = Object.fromEntries(
      names.map((n, k) => [n, Float64Array.from({ length: R }, (_, i) => r.stats[i * K + k]!)]),
    );
    return {
      stats,
      hist: { mean: r.histMean, sum: r.histSum },
      ...(r.s ? { s: new Tensor([R, ...this.tensorShape(2 * layer)], r.s) } : {}),
    };
  }

  private batchOf(indices: Int32Array): number {
    if (!(indices instanceof Int32Array)) throw new TypeError('Expected indices to be an Int32Array');
    if (indices.length === 0 || indices.length % this.replicas !== 0) {
      throw new RangeError(`Expected indices to hold replicas x b = ${this.replicas} x b values, got ${indices.length}`);
    }
    return indices.length / this.replicas;
  }

  private lrArray(lr: number | readonly number[] | Float32Array): Float32Array {
    const arr = typeof lr === 'number' ? new Float32Array(this.replicas).fill(lr) : Float32Array.from(lr);
    if (arr.length !== this.replicas) throw new RangeError(`Expected ${this.replicas} learning rates, got ${arr.length}`);
    arr.forEach((v, i) => {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`Expected lr[${i}] to be a finite number > 0, got ${v}`);
    });
    return arr;
  }
}
