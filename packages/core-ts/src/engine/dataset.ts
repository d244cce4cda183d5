// A dataset resident in the engine: normalised fp32 features and labels, copied once.

import type { LabeledImages } from '../datasets/mnist.js';
import { normalize, MNIST_MEAN, MNIST_STD } from '../datasets/mnist.js';
import { binding, type NativeDataset } from './binding.js';

export interface NormalizationOptions {
  mean?: number;
  std?: number;
}

export class Dataset {
  /** @internal the engine's handle; not part of the public API */
  readonly native: NativeDataset;
  readonly name: string;
  readonly count: number;
  readonly dim: number;
  readonly classes: number;
  /** Labels as given (kept on the JS side too: findings and references need them). */
  readonly labels: Uint8Array | Int32Array;

  private constructor(native: NativeDataset, name: string, labels: Uint8Array | Int32Array) {
    this.native = native;
    this.name = name;
    this.count = native.count;
    this.dim = native.dim;
    this.classes = native.classes;
    this.labels = labels;
  }

  /**
   * Frees the engine's copy of the data now (at the end of a call in flight that uses it)
   * instead of at garbage collection; later use throws an error with code BSX_DISPOSED.
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

  /** From features [count, dim] (already normalised) and labels [count] in [0, classes). */
  static fromArrays(
    features: Float32Array,
    labels: Uint8Array | Int32Array,
    opts: { dim: number; classes: number; name?: string },
  ): Dataset {
    const { dim, classes } = opts;
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`Dataset: dim must be a positive integer, got ${dim}`);
    if (!Number.isInteger(classes) || classes < 1) {
      throw new RangeError(`Dataset: classes must be a positive integer, got ${classes}`);
    }
    if (!(features instanceof Float32Array)) throw new TypeError('Dataset: features must be a Float32Array');
    if (features.length === 0 || features.length % dim !== 0) {
      throw new RangeError(`Dataset: features has ${features.length} values, not a positive multiple of dim=${dim}`);
    }
    const count = features.length / dim;
    if (labels.length !== count) {
      throw new RangeError(`Dataset: ${count} samples of features but ${labels.length} labels`);
    }
    const native = new (binding().Dataset)(features, labels, count, dim, classes);
    return new Dataset(native, opts.name ?? 'dataset', labels);
  }

  /** From a split of an image dataset, pixels normalised as (p/255 - mean)/std. */
  static fromImages(split: LabeledImages, opts: NormalizationOptions & { classes?: number } = {}): Dataset {
    const features = normalize(split.images, { mean: opts.mean ?? MNIST_MEAN, std: opts.std ?? MNIST_STD });
    return Dataset.fromArrays(features, split.labels, {
      dim: split.features,
      classes: opts.classes ?? 10,
      name: `${split.name}/${split.split}`,
    });
  }
}
