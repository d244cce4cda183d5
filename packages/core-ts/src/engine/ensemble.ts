// Ensemble: R independent MLP replicas trained together on one engine backend. Every
// argument is checked here with a message that names it (the engine checks again); native
// failures are rethrown with the caller's stack.

import { binding, type NativeEnsemble, type NativeSlot } from './binding.js';
import type { Dataset } from './dataset.js';
import { Tensor } from './tensor.js';

export type OptimizerKind = 'sgd' | 'adam';

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

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

/** Per replica and layer: the statistics of weights (W) and biases (b) against the snapshot. */
export interface LayerStats {
  weightNorm2: number;
  weightDist2: number;
  weightDot: number;
  weightSnapNorm2: number;
  biasNorm2: number;
  biasDist2: number;
  biasDot: number;
  biasSnapNorm2: number;
}

/** Per-trial statistics of the last layer's weight gradient g_i over the steps of a trial. */
export interface TrialStats {
  /** |sum_i g_i|, g_i the gradient of the batch-mean loss */
  sumNormMean: Float64Array;
  /** |sum_i b_i g_i|, the same for the batch-sum loss */
  sumNormSum: Float64Array;
  /** mean_i |g_i| */
  stepNormMean: Float64Array;
  /** mean_i b_i |g_i| */
  stepNormSum: Float64Array;
  /** |g_1|^2: the first step, at the starting weights */
  firstStepNorm2: Float64Array;
  steps: number;
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

/** Runs a native call; on failure rethrows with the native message on an Error made here. */
async function withStack<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const here = new Error();
  try {
    return await fn();
  } catch (err) {
    const e = err as Error;
    here.message = e.message ?? `${what} failed`;
    here.name = e.name ?? 'Error';
    (here as Error & { cause?: unknown }).cause = err;
    throw here;
  }
}

export class Ensemble {
  readonly replicas: number;
  readonly widths: readonly number[];
  readonly backend: 'cpu' | 'cuda';
  /** @internal */
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

  /** Changing the kind resets the optimiser's state; the same kind keeps it. */
  setOptimizer(kind: OptimizerKind, adam: AdamOptions = {}): void {
    if (kind !== 'sgd' && kind !== 'adam') throw new RangeError(`Expected optimizer to be sgd or adam, got ${String(kind)}`);
    this.native.setOptimizer(kind, adam.beta1, adam.beta2, adam.eps);
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

  /** Per replica, per layer statistics against the snapshot: stats[r][l]. */
  stats(): LayerStats[][] {
    const raw = this.native.stats();
    const out: LayerStats[][] = [];
    for (let r = 0; r < this.replicas; r++) {
      const layers: LayerStats[] = [];
      for (let l = 0; l < this.layers; l++) {
        const o = (r * this.layers + l) * 8;
        layers.push({
          weightNorm2: raw[o]!,
          weightDist2: raw[o + 1]!,
          weightDot: raw[o + 2]!,
          weightSnapNorm2: raw[o + 3]!,
          biasNorm2: raw[o + 4]!,
          biasDist2: raw[o + 5]!,
          biasDot: raw[o + 6]!,
          biasSnapNorm2: raw[o + 7]!,
        });
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
   * batches of `batchSize` (the last one short), with statistics of the last layer's weight
   * gradient and histograms of the summed gradient's values into fixed edges.
   */
  async gradTrials(
    dataset: Dataset,
    indices: Int32Array,
    opts: { batchSize: number; lr: number; edgesMean: readonly number[]; edgesSum: readonly number[]; exportS?: boolean },
  ): Promise<{ stats: TrialStats; hist: TrialHistograms; s?: Tensor }> {
    if (!(indices instanceof Int32Array)) throw new TypeError('Expected indices to be an Int32Array');
    if (indices.length === 0 || indices.length % this.replicas !== 0) {
      throw new RangeError(`Expected indices to hold replicas x n = ${this.replicas} x n values, got ${indices.length}`);
    }
    const n = indices.length / this.replicas;
    const b = checkInt(opts.batchSize, 'batchSize', 1, n);
    if (!Number.isFinite(opts.lr) || opts.lr <= 0) throw new RangeError(`Expected lr to be a finite number > 0, got ${opts.lr}`);
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
      ),
    );
    const R = this.replicas;
    const col = (k: number): Float64Array => Float64Array.from({ length: R }, (_, i) => r.stats[i * 6 + k]!);
    const stats: TrialStats = {
      sumNormMean: col(0),
      sumNormSum: col(1),
      stepNormMean: col(2),
      stepNormSum: col(3),
      firstStepNorm2: col(4),
      steps: r.stats[5]!,
    };
    const last = 2 * (this.layers - 1);
    return {
      stats,
      hist: { mean: r.histMean, sum: r.histSum },
      ...(r.s ? { s: new Tensor([R, ...this.tensorShape(last)], r.s) } : {}),
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
