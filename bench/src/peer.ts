// What every peer of `pnpm bench` shares: the workloads, the JSON a peer
// reports, the interface of an in-process peer module (bsx), and the
// deterministic pieces that make the peers compute the same thing (weight
// init, batch order, trial indices, MNIST loading, the timing rule).
//
// bench/peers/torch_peer.py mirrors the deterministic pieces in numpy; keep
// the two in step (constants SEEDS, mulberry32 at a counter, the two
// Fisher-Yates variants, the normalization and the timing rule).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------
// Workloads and reports

/** Peers the runner knows, in the order it runs them. */
export const PEER_IDS = ['bsx', 'bsx-cuda', 'pytorch', 'tfjs-wasm', 'tfjs-wasm-best', 'tfjs-cpu', 'tfjs-node'] as const;
export type PeerId = (typeof PEER_IDS)[number];

export const WORKLOAD_NAMES = ['train', 'eval', 'gradTrial', 'gemm', 'adam'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];
/** The workloads run when none are named: `adam` (two whole epochs per line) is opt-in. */
export const DEFAULT_WORKLOADS: readonly WorkloadName[] = ['train', 'eval', 'gradTrial', 'gemm'];

/** The optimizers of the `adam` workload: Adam, and plain SGD as its baseline. */
export type OptimizerName = 'adam' | 'sgd';

/** A GEMM shape: C[M,N] = A[M,K] * B[K,N]. */
export type GemmShape = readonly [m: number, n: number, k: number];

/** One measurement to take. */
export type Workload =
  /** SGD steps of batch b over a seeded shuffle of the 60k training set. */
  | { workload: 'train'; b: number }
  /** Forward + loss + accuracy over the 10k test set, in chunks of b. */
  | { workload: 'eval'; b: number }
  /** One trial: reset, ceil(1024/b) SGD steps through 1024 drawn samples, |S| of the last layer's gradients. */
  | { workload: 'gradTrial'; b: number }
  /** A plain fp32 matmul of the given shape. */
  | { workload: 'gemm'; shape: GemmShape }
  /** Two epochs of epochSteps steps of batch b from the init with the optimizer, each epoch timed on its own. */
  | { workload: 'adam'; b: number; optimizer: OptimizerName; epochSteps: number };

/**
 * Deterministic values a peer computed along the way, compared across peers
 * by the runner (same init, same batches, so they agree to fp32 rounding):
 * - train: loss0 = loss of the first batch at init, loss1 = loss of the
 *   second batch after one SGD step (absent when a single step overran the budget);
 * - eval: loss (mean NLL) and accuracy over the 10k test set at init (absent
 *   when the peer did not finish one pass in the budget);
 * - gradTrial (trial 0): normS = |S|, sumNorms = sum of |g_step|;
 * - adam: loss0 and loss1 as for train, the step taken by the line's optimizer.
 */
export type Check = Record<string, number>;

/** One epoch of the `adam` workload. */
export interface EpochResult {
  steps: number;
  seconds: number;
  samplesPerSec: number;
  /** Mean training loss of the epoch's batches (each taken before its step). */
  meanLoss: number;
  /**
   * Adam: share of the first-moment values that are subnormal (non-zero, |m| < 2^-126) at
   * the end of the epoch; with flushed denormals they become zero instead.
   */
  subnormalM?: number;
}

/** One measured workload in a peer's report. */
export interface PeerResult {
  workload: WorkloadName;
  /** Batch size (train, gradTrial, adam) or chunk size (eval). */
  b?: number;
  /** adam: the optimizer of this line. */
  optimizer?: OptimizerName;
  /**
   * A setting of the peer measured in the same run and reported as a column of its own,
   * e.g. PyTorch's 'FTZ' (torch.set_flush_denormal(True)).
   */
  variant?: string;
  /** adam: each epoch on its own (samplesPerSec above is over both). */
  epochs?: EpochResult[];
  /** [M, N, K] (gemm). */
  shape?: [number, number, number];
  /** train, eval: samples processed per second. */
  samplesPerSec?: number;
  /** gradTrial: trials per second. */
  trialsPerSec?: number;
  /** gemm: 2*M*N*K / seconds / 1e9. */
  gflops?: number;
  /** Length of the timed region, in seconds. */
  seconds: number;
  /** Iterations in the timed region: steps (train, adam), chunks (eval), trials, matmuls. */
  iterations: number;
  check?: Check;
  /** E.g. 'single iteration, over 3x the budget: no warm-up'. */
  note?: string;
}

/** What a peer prints (child peers: as one JSON object on stdout) or returns (bsx). */
export interface PeerReport {
  peer: PeerId;
  /** Version of the framework, e.g. '1.13.0a0' (torch), '4.22.0' (tfjs). */
  version: string;
  /** The GEMM library doing the work, e.g. 'OpenBLAS 0.3.21 pthread (core Cooperlake, 2 threads)'. */
  blas: string;
  /** Threads the framework itself runs ops on (torch: intra-op threads; tfjs: 1 or wasm threads). */
  threads: number;
  /** Free text on threading, e.g. 'torch intra-op 1, OpenBLAS pthreads 2'. */
  threading?: string;
  /** The machine's fp32 ceiling in GFLOP/s as this peer measured/derived it (bsx reports it). */
  peakGflops?: number;
  /** How peakGflops was obtained. */
  peakNote?: string;
  results: PeerResult[];
  notes?: string[];
}

/** Options the runner gives a peer (child peers get the same as CLI flags). */
export interface PeerRunOptions {
  /** Folder holding the four MNIST IDX files. */
  dataDir: string;
  /** The measurements to take, in order. */
  workloads: Workload[];
  /** Time budget of each measurement's timed region, in seconds. */
  seconds: number;
  quick: boolean;
  /** Progress lines (the runner sends them to stderr). */
  log: (message: string) => void;
}

export type Availability = { available: true; version?: string } | { available: false; reason: string };

/**
 * The module bench/src/peers/bsx.ts must be: the runner does
 * `await import('./peers/bsx.js')` and uses the module itself or its default
 * export. It runs in the runner's process, alone (no other peer runs meanwhile).
 *
 *   export async function detect(): Promise<Availability>   // optional
 *   export async function run(options: PeerRunOptions): Promise<PeerReport>
 *
 * run() takes options.workloads in order, one PeerResult each (skip none; a
 * workload it cannot do is reported with `note` and zero figures), follows
 * the timing rule of measure() (use it), sets peer: 'bsx', and should report
 * peakGflops. For the runner's cross-peer checks to apply, it initializes with
 * glorotWeights(), orders batches with trainOrder(), draws trials with
 * gradTrialIndices() and reports `check` as described at Check.
 */
export interface PeerModule {
  detect?: () => Promise<Availability>;
  run: (options: PeerRunOptions) => Promise<PeerReport>;
  /** The same on the CUDA backend (peer 'bsx-cuda'; no GEMM workloads). */
  detectCuda?: () => Promise<Availability>;
  runCuda?: (options: PeerRunOptions) => Promise<PeerReport>;
}

// ---------------------------------------------------------------------------
// The plan

export const TRAIN_SIZES = [2, 64, 256, 1024];
export const GRAD_SIZES = [1, 8, 64, 1024];
export const EVAL_CHUNK = 1000;
export const GEMM_SHAPES: GemmShape[] = [
  [1024, 1024, 784],
  [1024, 1024, 1024],
  [1024, 784, 1024],
  [64, 1024, 784],
  [8, 1024, 1024],
  [1, 1024, 1024],
];
export const QUICK_TRAIN_SIZES = [2, 64];
export const QUICK_GRAD_SIZES = [64];
export const QUICK_GEMM_SHAPES: GemmShape[] = [
  [1024, 1024, 784],
  [1, 1024, 1024],
];
export const DEFAULT_SECONDS = 1.5;
export const QUICK_SECONDS = 0.3;

/** The `adam` workload: batch, epochs, optimizers (in order) and Adam's settings (PyTorch's defaults). */
export const ADAM_BATCH = 64;
export const ADAM_EPOCHS = 2;
export const ADAM_OPTIMIZERS: readonly OptimizerName[] = ['adam', 'sgd'];
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
/** Steps of one epoch: whole batches of the 60k training set (937 at b = 64). */
export const ADAM_EPOCH_STEPS = Math.floor(60000 / ADAM_BATCH);
/** Smallest positive normal fp32 value, 2^-126: below it (and non-zero) a value is subnormal. */
export const FLT_MIN = 2 ** -126;

/** Share of the values of `arrays` that are subnormal (non-zero and below FLT_MIN in magnitude). */
export function subnormalShare(arrays: readonly Float32Array[]): number {
  let n = 0;
  let sub = 0;
  for (const a of arrays) {
    n += a.length;
    for (let i = 0; i < a.length; i++) {
      const v = Math.abs(a[i]!);
      if (v !== 0 && v < FLT_MIN) sub++;
    }
  }
  return n === 0 ? 0 : sub / n;
}

export interface PlanOptions {
  names?: readonly WorkloadName[];
  quick?: boolean;
  trainSizes?: readonly number[];
  gradSizes?: readonly number[];
  gemmShapes?: readonly GemmShape[];
  evalChunk?: number;
  /** Steps per epoch of the adam workload (default ADAM_EPOCH_STEPS, also with --quick). */
  adamEpochSteps?: number;
}

/** The workloads to run, in order: train sizes, eval, gradTrial sizes, gemm shapes, adam. */
export function makePlan(options: PlanOptions = {}): Workload[] {
  const q = options.quick ?? false;
  const names = new Set(options.names ?? DEFAULT_WORKLOADS);
  const plan: Workload[] = [];
  if (names.has('train')) for (const b of options.trainSizes ?? (q ? QUICK_TRAIN_SIZES : TRAIN_SIZES)) plan.push({ workload: 'train', b });
  if (names.has('eval')) plan.push({ workload: 'eval', b: options.evalChunk ?? EVAL_CHUNK });
  if (names.has('gradTrial')) for (const b of options.gradSizes ?? (q ? QUICK_GRAD_SIZES : GRAD_SIZES)) plan.push({ workload: 'gradTrial', b });
  if (names.has('gemm')) for (const s of options.gemmShapes ?? (q ? QUICK_GEMM_SHAPES : GEMM_SHAPES)) plan.push({ workload: 'gemm', shape: s });
  if (names.has('adam')) {
    const epochSteps = options.adamEpochSteps ?? ADAM_EPOCH_STEPS;
    for (const optimizer of ADAM_OPTIMIZERS) plan.push({ workload: 'adam', b: ADAM_BATCH, optimizer, epochSteps });
  }
  return plan;
}

/**
 * The part of the plan a peer runs. bsx-cuda: no gemm (the GEMM entry point is the CPU
 * engine's) and no adam; the tfjs peers: no adam (two epochs would take them tens of
 * minutes); tfjs-wasm-best: no gemm either (the same tf.matMul as tfjs-wasm).
 */
export function planFor(peer: PeerId, plan: readonly Workload[]): Workload[] {
  const skip = new Set<WorkloadName>();
  if (peer === 'bsx-cuda' || peer === 'tfjs-wasm-best') skip.add('gemm');
  if (peer === 'bsx-cuda' || peer.startsWith('tfjs')) skip.add('adam');
  return plan.filter((w) => !skip.has(w.workload));
}

/** 'train b=64', 'eval b=1000', 'gemm 1024x1024x784', 'adam b=64 opt=sgd'. */
export function workloadKey(w: { workload: WorkloadName; b?: number; shape?: readonly number[]; optimizer?: OptimizerName }): string {
  if (w.shape) return `${w.workload} ${w.shape.join('x')}`;
  return w.optimizer ? `${w.workload} b=${w.b} opt=${w.optimizer}` : `${w.workload} b=${w.b}`;
}

export function parseList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function parseSizes(text: string, flag: string): number[] {
  return parseList(text).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: '${s}' is not a positive integer`);
    return n;
  });
}

/** '1024x1024x784,1x1024x1024' -> shapes. */
export function parseShapes(text: string): GemmShape[] {
  return parseList(text).map((s) => {
    const p = s.split('x').map(Number);
    if (p.length !== 3 || !p.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--gemm-shapes: '${s}' is not MxNxK`);
    return [p[0]!, p[1]!, p[2]!] as const;
  });
}

export function parseWorkloadNames(text: string): WorkloadName[] {
  return parseList(text).map((s) => {
    if (!(WORKLOAD_NAMES as readonly string[]).includes(s)) throw new Error(`--workloads: unknown '${s}' (known: ${WORKLOAD_NAMES.join(', ')})`);
    return s as WorkloadName;
  });
}

// ---------------------------------------------------------------------------
// The model and its deterministic init

/** Layer widths of the MLP: 784 -> 1024 -> ReLU -> 1024 -> ReLU -> 10. */
export const LAYERS = [784, 1024, 1024, 10] as const;
export const LR = 0.01;
/** Samples per gradTrial. */
export const TRIAL_SAMPLES = 1024;

export const SEEDS = {
  /** Weight of layer l (1-based) uses seed weight + l. */
  weight: 100,
  /** Epoch e of the training order uses seed train + e. */
  train: 7,
  /** Trial t's indices use seed trial + t. */
  trial: 1000,
} as const;

/**
 * The t-th (0-based) output of mulberry32(seed), computed from the counter
 * directly (mulberry32's state after t+1 steps is seed + (t+1)*0x6D2B79F5),
 * as a uint32. Counter-based, so numpy computes whole streams vectorized.
 */
export function mulberry32At(seed: number, t: number): number {
  let x = (seed + Math.imul(t + 1, 0x6d2b79f5)) | 0;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return (x ^ (x >>> 14)) >>> 0;
}

/** Uniform in [0, 1): mulberry32At / 2^32 (in float64). */
export function uniformAt(seed: number, t: number): number {
  return mulberry32At(seed, t) / 4294967296;
}

/**
 * Glorot-uniform weights of the three layers, each [fanOut, fanIn] row-major
 * (PyTorch's nn.Linear layout; transpose for x @ W): element i of layer l is
 * (2u - 1) * sqrt(6 / (fanIn + fanOut)) with u = uniformAt(SEEDS.weight + l, i),
 * computed in float64 and rounded to fp32. Biases are zero.
 */
export function glorotWeights(): Float32Array[] {
  const out: Float32Array[] = [];
  for (let l = 1; l < LAYERS.length; l++) {
    const fanIn = LAYERS[l - 1]!;
    const fanOut = LAYERS[l]!;
    const a = Math.sqrt(6 / (fanIn + fanOut));
    const w = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < w.length; i++) w[i] = (2 * uniformAt(SEEDS.weight + l, i) - 1) * a;
    out.push(w);
  }
  return out;
}

/** Transpose a row-major [rows, cols] matrix. */
export function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c]!;
  return t;
}

/**
 * The order of epoch `epoch` over n training samples: Fisher-Yates from the
 * end, for k = n-1 .. 1 swap perm[k] and perm[j], j = floor(u * (k+1)),
 * u = uniformAt(SEEDS.train + epoch, n-1-k). Training takes consecutive
 * batches of it and moves to the next epoch's order when fewer than b remain.
 */
export function trainOrder(n: number, epoch: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const seed = SEEDS.train + epoch;
  for (let k = n - 1; k >= 1; k--) {
    const j = Math.floor(uniformAt(seed, n - 1 - k) * (k + 1));
    const tmp = perm[k]!;
    perm[k] = perm[j]!;
    perm[j] = tmp;
  }
  return perm;
}

/** Consecutive batches of b indices over trainOrder(n, 0), trainOrder(n, 1), ... */
export class BatchOrder {
  private epoch = 0;
  private pos = 0;
  private perm: Int32Array;
  constructor(
    readonly n: number,
    readonly b: number,
  ) {
    if (b > n) throw new Error(`batch ${b} > ${n} samples`);
    this.perm = trainOrder(n, 0);
  }
  next(): Int32Array {
    if (this.pos + this.b > this.n) {
      this.epoch++;
      this.perm = trainOrder(this.n, this.epoch);
      this.pos = 0;
    }
    const out = this.perm.subarray(this.pos, this.pos + this.b);
    this.pos += this.b;
    return out;
  }
}

/**
 * The 1024 (TRIAL_SAMPLES) distinct training indices of gradTrial trial t:
 * Fisher-Yates from the front over 0..n-1, stopped after 1024 draws: for
 * k = 0 .. 1023 swap perm[k] and perm[j], j = k + floor(u * (n-k)),
 * u = uniformAt(SEEDS.trial + t, k); the indices are perm[0..1023].
 */
export function gradTrialIndices(n: number, t: number, count = TRIAL_SAMPLES): Int32Array {
  const moved = new Map<number, number>();
  const at = (i: number) => moved.get(i) ?? i;
  const out = new Int32Array(count);
  const seed = SEEDS.trial + t;
  for (let k = 0; k < count; k++) {
    const j = k + Math.floor(uniformAt(seed, k) * (n - k));
    const vj = at(j);
    moved.set(j, at(k));
    out[k] = vj;
  }
  return out;
}

/** Batch sizes of one trial: ceil(1024/b) steps, the last one short if b does not divide 1024. */
export function trialSteps(b: number, count = TRIAL_SAMPLES): number[] {
  const steps: number[] = [];
  for (let s = 0; s < count; s += b) steps.push(Math.min(b, count - s));
  return steps;
}

// ---------------------------------------------------------------------------
// MNIST

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

export interface Split {
  count: number;
  /** [count, 784] row-major, ((p / 255) - mean) / std in float64 rounded to fp32. */
  x: Float32Array;
  labels: Uint8Array;
}

function readIdxU8(path: string, headerBytes: number, dims: number): { shape: number[]; data: Uint8Array } {
  const buf = readFileSync(path);
  if (buf.readUInt8(2) !== 0x08 || buf.readUInt8(3) !== dims) throw new Error(`${path}: not an IDX ubyte file of ${dims} dims`);
  const shape: number[] = [];
  for (let i = 0; i < dims; i++) shape.push(buf.readUInt32BE(4 + 4 * i));
  const data = new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, shape.reduce((a, b) => a * b, 1));
  return { shape, data };
}

/** Reads and normalizes one MNIST split from the plain IDX files in dir. */
export function loadSplit(dir: string, split: 'train' | 'test'): Split {
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = readIdxU8(join(dir, `${prefix}-images-idx3-ubyte`), 16, 3);
  const lab = readIdxU8(join(dir, `${prefix}-labels-idx1-ubyte`), 8, 1);
  const count = img.shape[0]!;
  if (lab.shape[0] !== count || img.shape[1]! * img.shape[2]! !== 784) throw new Error(`${dir}: ${split} images/labels do not match`);
  const x = new Float32Array(count * 784);
  for (let i = 0; i < x.length; i++) x[i] = (img.data[i]! / 255 - MNIST_MEAN) / MNIST_STD;
  return { count, x, labels: lab.data };
}

/** Copies the rows `indices` of a split into a fresh [indices.length, 784] array. */
export function gatherRows(split: Split, indices: ArrayLike<number>): { x: Float32Array; labels: Int32Array } {
  const n = indices.length;
  const x = new Float32Array(n * 784);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const i = indices[r]!;
    x.set(split.x.subarray(i * 784, (i + 1) * 784), r * 784);
    labels[r] = split.labels[i]!;
  }
  return { x, labels };
}

// ---------------------------------------------------------------------------
// The timing rule

export interface MeasureOptions {
  /** Budget of the timed region, seconds. */
  seconds: number;
  /** Untimed iterations before the timed region (iteration 0 included). */
  warmup: number;
  /** Iterations the timed region should reach when they fit in 2x the budget. */
  minIterations: number;
}

export interface Measurement {
  seconds: number;
  iterations: number;
  note?: string;
}

/**
 * The timing rule every peer follows. Iterations are numbered from 0 and
 * passed to `iteration`; `finish` forces pending work to complete (tfjs:
 * dataSync) and is inside the timed region.
 * 1. Iteration 0 runs (it pays first-call costs: JIT, wasm compilation,
 *    allocations) and is timed on its own. If it alone took >= SLOW_FACTOR x
 *    the budget and >= SLOW_SECONDS, it is the measurement: 1 iteration, no
 *    warm-up (slow peers, e.g. tfjs-cpu at b=1024, would otherwise spend
 *    minutes; first-call costs are small next to it).
 * 2. If iteration 0 took less than the budget, iterations 1 .. warmup-1 run
 *    untimed (warm-up).
 * 3. The timed region runs iterations until it lasted >= the budget with
 *    >= minIterations done, or lasted >= 2x the budget with >= 1 done.
 */
export async function measure(
  iteration: (i: number) => void | Promise<void>,
  options: MeasureOptions,
  finish: () => void | Promise<void> = () => {},
): Promise<Measurement> {
  const { seconds, warmup, minIterations } = options;
  const t0 = performance.now();
  await iteration(0);
  await finish();
  const first = (performance.now() - t0) / 1000;
  if (first >= SLOW_FACTOR * seconds && first >= SLOW_SECONDS) {
    return { seconds: first, iterations: 1, note: 'single iteration, over 3x the budget: no warm-up' };
  }
  let i = 1;
  if (first < seconds) for (; i < warmup; i++) await iteration(i);
  await finish();
  const start = performance.now();
  let n = 0;
  for (;;) {
    await iteration(i++);
    n++;
    const el = (performance.now() - start) / 1000;
    if ((el >= seconds && n >= minIterations) || el >= 2 * seconds) break;
  }
  await finish();
  return { seconds: (performance.now() - start) / 1000, iterations: n };
}

/** See measure(): a first iteration this many times the budget, and at least SLOW_SECONDS long, is the measurement. */
export const SLOW_FACTOR = 3;
export const SLOW_SECONDS = 3;

/**
 * A gradTrial's first trial stops early once it has run this long,
 * max(TRIAL_CAP_FACTOR x budget, TRIAL_CAP_SECONDS): a whole trial at b=1 takes
 * tfjs-cpu minutes. The figure is then extrapolated from the steps done
 * (trialsPerSec = fraction of the trial done / seconds), noted, and without checks.
 */
export const TRIAL_CAP_FACTOR = 10;
export const TRIAL_CAP_SECONDS = 10;
export function trialCapSeconds(seconds: number): number {
  return Math.max(TRIAL_CAP_FACTOR * seconds, TRIAL_CAP_SECONDS);
}

/** Warm-up and minimum iterations of each workload (torch_peer.py uses the same). */
export const TIMING: Record<WorkloadName, { warmup: number; minIterations: number }> = {
  train: { warmup: 3, minIterations: 3 },
  eval: { warmup: 1, minIterations: 10 },
  gradTrial: { warmup: 1, minIterations: 1 },
  gemm: { warmup: 3, minIterations: 3 },
  // adam: each epoch is timed whole, once (no measure()): these are not used
  adam: { warmup: 0, minIterations: 1 },
};
