// The native surface of @bsx/core-native, typed once. Nothing else in @bsx/core touches the
// raw binding: the wrappers in this folder validate arguments and keep the caller's stack.

import { createRequire } from 'node:module';
import { BsxError } from '../errors.js';

export type NativeSlot = 'param' | 'snapshot' | 'adamM' | 'adamV';

export interface NativeInfo {
  version: string;
  napiVersion: number;
  backendsCompiled: string[];
  cpu: {
    vendor: string;
    brand: string;
    features: string[];
    simdPath: string;
    gemmKernel: string;
    threads: number;
  };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason?: string;
    name?: string;
    computeCapability?: string;
    multiprocessors?: number;
    totalMemoryBytes?: number;
    driverVersion?: number;
    runtimeVersion: number;
  };
}

export interface NativeDataset {
  readonly count: number;
  readonly dim: number;
  readonly classes: number;
}

export interface NativeDatasetCtor {
  new (
    features: Float32Array,
    labels: Uint8Array | Int32Array,
    count: number,
    dim: number,
    classes: number,
  ): NativeDataset;
}

export interface NativeEvalResult {
  lossSum: Float64Array;
  correct: Float64Array;
  count: number;
}

export interface NativeEnsemble {
  readonly replicas: number;
  readonly widths: number[];
  readonly backend: string;
  readonly parameterCount: number;
  readonly busy: boolean;
  init(seeds: Float64Array): void;
  snapshot(): void;
  setOptimizer(kind: 'sgd' | 'adam', beta1?: number, beta2?: number, eps?: number): void;
  resetOptimizerState(): void;
  getOptimizerSteps(): Float64Array;
  setOptimizerSteps(steps: Float64Array): void;
  train(
    dataset: NativeDataset,
    indices: Int32Array,
    n: number,
    batchSize: number,
    lr: Float32Array,
  ): Promise<Float64Array>;
  evaluate(dataset: NativeDataset, start?: number, count?: number): Promise<NativeEvalResult>;
  forward(dataset: NativeDataset, indices: Int32Array, batchSize: number): Float32Array;
  gradients(
    dataset: NativeDataset,
    indices: Int32Array,
    batchSize: number,
  ): { loss: Float64Array; grads: Float32Array[] };
  getTensor(slot: NativeSlot, tensor: number): Float32Array;
  setTensor(slot: NativeSlot, tensor: number, data: Float32Array): void;
  stats(): Float64Array;
  setTensorBroadcast(slot: NativeSlot, tensor: number, data: Float32Array): void;
  resetToSnapshot(): void;
  gradTrials(
    dataset: NativeDataset,
    indices: Int32Array,
    n: number,
    batchSize: number,
    lr: number,
    edgesMean: Float32Array,
    edgesSum: Float32Array,
    exportS: boolean,
  ): Promise<{ stats: Float64Array; histMean: Float64Array; histSum: Float64Array; s?: Float32Array }>;
}

export interface NativeEnsembleCtor {
  new (options: { replicas: number; widths: number[]; backend?: 'cpu' | 'cuda' }): NativeEnsemble;
}

export interface NativeGemmOptions {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  a: Float32Array;
  lda: number;
  b: Float32Array;
  ldb: number;
  c: Float32Array;
  ldc: number;
  bias?: Float32Array;
  mask?: Float32Array;
  ldm?: number;
  relu?: boolean;
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  strideBias?: number;
  strideMask?: number;
}

export interface NativeGemm {
  sgemm(opts: NativeGemmOptions): void;
  sgemmReference(opts: NativeGemmOptions): void;
  simdPath(): string;
  setSimdPath(name: string): void;
  availableSimdPaths(): string[];
  threads(): number;
  setThreads(n: number): void;
  peakGflops(seconds: number): number;
  kernelName(): string;
  /** Largest batch of the fused small-batch SGD path (0: every batch through the GEMMs). */
  smallBatchMax(): number;
  /** Sets it (0..8; the default is 4); -1 restores the default. */
  setSmallBatchMax(n: number): void;
}

export interface NativeBinding {
  info(): NativeInfo;
  philox(counter: Uint32Array, key: Uint32Array): Uint32Array;
  setThreads(n: number): void;
  gemm: NativeGemm;
  Dataset: NativeDatasetCtor;
  Ensemble: NativeEnsembleCtor;
}

let cached: NativeBinding | undefined;

/** Loads the compiled engine once; a failure says what was tried and how to build it. */
export function binding(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let where = '@bsx/core-native';
  try {
    where = require.resolve('@bsx/core-native');
    cached = require('@bsx/core-native') as NativeBinding;
    return cached;
  } catch (err) {
    throw new BsxError(
      'BSX_NATIVE_LOAD',
      `could not load the bsx native engine (${where}): ${(err as Error).message}. ` +
        'Build it with `pnpm install` (or `pnpm --filter @bsx/core-native rebuild`); ' +
        'it needs cmake >= 3.18 and a C++17 compiler.',
      { cause: err },
    );
  }
}
