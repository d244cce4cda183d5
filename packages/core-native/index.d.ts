// The native surface of @bsx/core-native, typed once: @bsx/core's loader and the addon's own
// tests read these types. The optimisers, their state slots and the names of the statistics
// are data from the engine (describe()), not types: adding one to the engine changes nothing
// here.

declare namespace bsxNative {
  /** An error thrown by the addon: TypeError/RangeError for arguments, Error otherwise. */
  interface NativeError extends Error {
    code:
      | 'BSX_INVALID_ARGUMENT'
      | 'BSX_OUT_OF_MEMORY'
      | 'BSX_INVALID_ENV'
      | 'BSX_INVALID_STATE'
      | 'BSX_BUSY'
      | 'BSX_DISPOSED'
      | 'BSX_TOO_LARGE'
      | 'BSX_DEVICE_UNAVAILABLE'
      | 'BSX_NATIVE';
  }

  interface NativeInfo {
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
      /** Subnormal floats flushed to zero in the engine's arithmetic (BSX_FTZ=0 turns it off). */
      flushDenormals: boolean;
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

  /** One hyperparameter of an optimiser, as the engine's table describes it. */
  type NativeHyperparameter =
    | { name: string; type: 'boolean'; default: boolean; doc: string }
    | {
        name: string;
        type: 'number';
        default: number;
        min: number;
        max: number;
        minExclusive: boolean;
        maxExclusive: boolean;
        doc: string;
      };

  interface NativeOptimizerDescriptor {
    name: string;
    /** The PyTorch optimiser whose update rule and defaults it follows. */
    reference: string;
    hyperparameters: NativeHyperparameter[];
    /** Its state slots (one tensor per parameter tensor each). */
    state: string[];
  }

  interface NativeDescription {
    optimizers: NativeOptimizerDescriptor[];
    /** Names of the per-layer statistics of stats(), in the order of their values. */
    layerStats: string[];
    /** Names of the per-trial statistics of gradTrials(), in the order of their values. */
    trialStats: string[];
  }

  interface NativeDataset {
    readonly count: number;
    readonly dim: number;
    readonly classes: number;
    readonly disposed: boolean;
    /** Frees the engine's copy (at the end of a call that uses it); idempotent. */
    dispose(): void;
  }

  interface NativeDatasetCtor {
    new (
      features: Float32Array,
      labels: Uint8Array | Int32Array,
      count: number,
      dim: number,
      classes: number,
    ): NativeDataset;
  }

  interface NativeEvalResult {
    lossSum: Float64Array;
    correct: Float64Array;
    count: number;
  }

  /** 'param', 'snapshot', or a state slot of the current optimiser. */
  type NativeSlot = string;

  /** { name, <hyperparameter>: one value for all replicas, or one per replica }. */
  interface NativeOptimizerOptions {
    name: string;
    [hyperparameter: string]: string | number | boolean | readonly (number | boolean)[] | Float64Array | undefined;
  }

  interface NativeGradTrialsResult {
    /** [R, trialStats.length] */
    stats: Float64Array;
    histMean: Float64Array;
    histSum: Float64Array;
    s?: Float32Array;
  }

  interface NativeEnsemble {
    readonly replicas: number;
    readonly widths: number[];
    readonly backend: string;
    readonly parameterCount: number;
    readonly busy: boolean;
    readonly disposed: boolean;
    init(seeds: Float64Array): void;
    snapshot(): void;
    setOptimizer(options: NativeOptimizerOptions): void;
    getOptimizer(): { name: string; [hyperparameter: string]: string | Float64Array };
    resetOptimizerState(): void;
    getOptimizerSteps(): Float64Array;
    setOptimizerSteps(steps: Float64Array): void;
    stepPath(batchSize: number): { path: 'small-batch' | 'gemm'; reason: string };
    train(dataset: NativeDataset, indices: Int32Array, n: number, batchSize: number, lr: Float32Array): Promise<Float64Array>;
    evaluate(dataset: NativeDataset, start?: number, count?: number): Promise<NativeEvalResult>;
    forward(dataset: NativeDataset, indices: Int32Array, batchSize: number): Float32Array;
    gradients(dataset: NativeDataset, indices: Int32Array, batchSize: number): { loss: Float64Array; grads: Float32Array[] };
    getTensor(slot: NativeSlot, tensor: number): Float32Array;
    setTensor(slot: NativeSlot, tensor: number, data: Float32Array): void;
    setTensorBroadcast(slot: NativeSlot, tensor: number, data: Float32Array): void;
    /** [R, layers, layerStats.length] */
    stats(): Float64Array;
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
      /** The layer whose weight gradient is measured, from 0 (default: the last). */
      layer?: number,
    ): Promise<NativeGradTrialsResult>;
    /** Frees the engine's memory (at the end of a running call); idempotent. */
    dispose(): void;
  }

  interface NativeEnsembleCtor {
    new (options: { replicas: number; widths: number[]; backend?: 'cpu' | 'cuda' }): NativeEnsemble;
  }

  /** One GEMM (or a batch of them): C = alpha op(A) op(B) + beta C, then the epilogue. */
  interface NativeGemmOptions {
    transA?: boolean; // default false
    transB?: boolean; // default false
    M: number;
    N: number;
    K: number;
    alpha?: number; // default 1
    beta?: number; // default 0
    a: Float32Array;
    lda?: number; // default: op(A) packed (its row length)
    b: Float32Array;
    ldb?: number;
    c: Float32Array;
    ldc?: number; // default N
    bias?: Float32Array;
    mask?: Float32Array;
    ldm?: number;
    relu?: boolean;
    batch?: number; // default 1
    strideA?: number;
    strideB?: number;
    strideC?: number;
    strideBias?: number;
    strideMask?: number;
  }

  interface NativeGemm {
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

  interface NativeBinding {
    info(): NativeInfo;
    describe(): NativeDescription;
    /** The options with every hyperparameter filled in, or the error setOptimizer would throw. */
    validateOptimizer(options: NativeOptimizerOptions): { name: string; [hyperparameter: string]: string | number | boolean };
    philox(counter: Uint32Array, key: Uint32Array): Uint32Array;
    setThreads(n: number): void;
    gemm: NativeGemm;
    Dataset: NativeDatasetCtor;
    Ensemble: NativeEnsembleCtor;
  }
}

declare const bsxNative: bsxNative.NativeBinding;
export = bsxNative;
