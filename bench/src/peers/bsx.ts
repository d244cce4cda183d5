// The bsx peer of `pnpm bench`: the same workloads through @bsx/core, in this process. bsx is
// measured as it is used: a training call runs many steps (the adam workload: one call per
// epoch), and gradient trials run as replicas of one ensemble (TRIAL_REPLICAS at a time); the
// checks are computed step by step first.

import { Dataset, Ensemble, engineInfo } from '@bsx/core';
// The GEMM and the FMA probe are the engine's own, below @bsx/core's public API.
import native from '@bsx/core-native';
import {
  ADAM,
  ADAM_EPOCHS,
  BatchOrder,
  LR,
  TIMING,
  glorotWeights,
  gradTrialIndices,
  loadSplit,
  measure,
  subnormalShare,
  trialSteps,
  workloadKey,
  type Availability,
  type Check,
  type EpochResult,
  type OptimizerName,
  type PeerReport,
  type PeerResult,
  type PeerRunOptions,
  type Split,
  type Workload,
} from '../peer.js';

/** Trials run together as replicas in one call (the GPU needs many to fill it). */
const TRIAL_REPLICAS = { cpu: 16, cuda: 1000 } as const;
/** Samples per training call (whole batches). */
const SAMPLES_PER_CALL = 8192;

export async function detect(): Promise<Availability> {
  try {
    const info = engineInfo();
    return { available: true, version: info.version };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

/** The 'bsx-cuda' peer: the same workloads on the CUDA backend, when a GPU is usable. */
export async function detectCuda(): Promise<Availability> {
  try {
    const info = engineInfo();
    if (!info.cuda.available) return { available: false, reason: `cuda: ${info.cuda.reason ?? 'unavailable'}` };
    return { available: true, version: info.version };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

interface Ctx {
  train: Split;
  test: Split;
  trainDs: Dataset;
  testDs: Dataset;
  weights: Float32Array[];
  seconds: number;
  backend: 'cpu' | 'cuda';
  /** The trials' ensemble, made once: every trial starts from its snapshot (the Glorot weights). */
  trialEnsemble?: Ensemble;
}

function setGlorot(ens: Ensemble, weights: Float32Array[]): void {
  for (let l = 0; l < 3; l++) {
    ens.setTensorBroadcast(2 * l, weights[l]!);
    ens.setTensorBroadcast(2 * l + 1, new Float32Array(ens.tensorShape(2 * l + 1)[0]!));
  }
}

/** The one place the bench sets bsx's optimizer: plain SGD, or Adam with PyTorch's defaults. */
function useOptimizer(ens: Ensemble, optimizer: OptimizerName): void {
  if (optimizer === 'adam') ens.setOptimizer({ name: 'adam', beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps });
  else ens.setOptimizer('sgd');
}

function fresh(ctx: Ctx, replicas = 1, optimizer: OptimizerName = 'sgd'): Ensemble {
  const ens = new Ensemble({ replicas, backend: ctx.backend });
  ens.init(Array.from({ length: replicas }, (_, i) => i));
  setGlorot(ens, ctx.weights);
  useOptimizer(ens, optimizer);
  return ens;
}

async function runTrain(ctx: Ctx, b: number): Promise<PeerResult> {
  // checks: loss of batch 0 at init, loss of batch 1 after one step on batch 0
  const check: Check = {};
  {
    const ens = fresh(ctx);
    const order = new BatchOrder(ctx.train.count, b);
    const b0 = Int32Array.from(order.next());
    const b1 = Int32Array.from(order.next());
    check.loss0 = ens.gradients(ctx.trainDs, b0).loss[0]!;
    await ens.train(ctx.trainDs, b0, { batchSize: b, lr: LR });
    check.loss1 = ens.gradients(ctx.trainDs, b1).loss[0]!;
  }
  const ens = fresh(ctx);
  const order = new BatchOrder(ctx.train.count, b);
  const steps = Math.max(1, Math.floor(SAMPLES_PER_CALL / b));
  const m = await measure(
    async () => {
      const idx = new Int32Array(steps * b);
      for (let s = 0; s < steps; s++) idx.set(order.next(), s * b);
      await ens.train(ctx.trainDs, idx, { batchSize: b, lr: LR });
    },
    { seconds: ctx.seconds, ...TIMING.train },
  );
  return {
    workload: 'train',
    b,
    samplesPerSec: (m.iterations * steps * b) / m.seconds,
    seconds: m.seconds,
    iterations: m.iterations,
    check,
    note: `${steps} steps per call${m.note ? `; ${m.note}` : ''}`,
  };
}

async function runEval(ctx: Ctx, chunk: number): Promise<PeerResult> {
  const ens = fresh(ctx);
  const full = await ens.evaluate(ctx.testDs);
  const check: Check = { loss: full.loss[0]!, accuracy: full.accuracy[0]! };
  const n = ctx.test.count;
  const m = await measure(
    async (i) => {
      const start = (i * chunk) % n;
      await ens.evaluate(ctx.testDs, start, Math.min(chunk, n - start));
    },
    { seconds: ctx.seconds, ...TIMING.eval },
  );
  return { workload: 'eval', b: chunk, samplesPerSec: (m.iterations * Math.min(chunk, n)) / m.seconds, seconds: m.seconds, iterations: m.iterations, check };
}

async function runGradTrial(ctx: Ctx, b: number): Promise<PeerResult> {
  const R = TRIAL_REPLICAS[ctx.backend];
  if (!ctx.trialEnsemble) {
    ctx.trialEnsemble = fresh(ctx, R);
    ctx.trialEnsemble.snapshot();
  }
  const ens = ctx.trialEnsemble;
  const steps = trialSteps(b).length;
  const edges = [-1e3, 1e3];
  const check: Check = {};
  const m = await measure(
    async (it) => {
      ens.resetToSnapshot();
      const idx = new Int32Array(R * 1024);
      for (let r = 0; r < R; r++) idx.set(gradTrialIndices(ctx.train.count, it * R + r), r * 1024);
      const res = await ens.gradTrials(ctx.trainDs, idx, { batchSize: b, lr: LR, edgesMean: edges, edgesSum: edges });
      if (it === 0) {
        check.normS = res.stats.sumNormMean[0]!;
        check.sumNorms = res.stats.stepNormMean[0]! * steps;
      }
    },
    { seconds: ctx.seconds, ...TIMING.gradTrial },
  );
  return {
    workload: 'gradTrial',
    b,
    trialsPerSec: (m.iterations * R) / m.seconds,
    seconds: m.seconds,
    iterations: m.iterations,
    check,
    note: `${R} trials per call as replicas${m.note ? `; ${m.note}` : ''}`,
  };
}

/**
 * The adam workload: two epochs of `epochSteps` steps of batch b from the Glorot weights
 * with the optimizer, one train() call per epoch, each timed on its own; after each epoch
 * under Adam, the share of subnormal first-moment values. Checks: loss0 and loss1 as for
 * train, with a step of this optimizer.
 */
async function runAdam(ctx: Ctx, w: Extract<Workload, { workload: 'adam' }>): Promise<PeerResult> {
  const { b, optimizer, epochSteps } = w;
  const check: Check = {};
  {
    const ens = fresh(ctx, 1, optimizer);
    const order = new BatchOrder(ctx.train.count, b);
    const b0 = Int32Array.from(order.next());
    const b1 = Int32Array.from(order.next());
    check.loss0 = ens.gradients(ctx.trainDs, b0).loss[0]!;
    await ens.train(ctx.trainDs, b0, { batchSize: b, lr: LR });
    check.loss1 = ens.gradients(ctx.trainDs, b1).loss[0]!;
  }
  const ens = fresh(ctx, 1, optimizer);
  const order = new BatchOrder(ctx.train.count, b);
  const epochs: EpochResult[] = [];
  for (let e = 0; e < ADAM_EPOCHS; e++) {
    const idx = new Int32Array(epochSteps * b);
    for (let s = 0; s < epochSteps; s++) idx.set(order.next(), s * b);
    const t0 = performance.now();
    const loss = await ens.train(ctx.trainDs, idx, { batchSize: b, lr: LR });
    const seconds = (performance.now() - t0) / 1000;
    const epoch: EpochResult = { steps: epochSteps, seconds, samplesPerSec: (epochSteps * b) / seconds, meanLoss: loss[0]! };
    if (optimizer === 'adam') epoch.subnormalM = subnormalShare(Array.from({ length: 6 }, (_, t) => ens.getTensor(t, 'expAvg').data));
    epochs.push(epoch);
  }
  const seconds = epochs.reduce((a, e) => a + e.seconds, 0);
  const steps = epochs.reduce((a, e) => a + e.steps, 0);
  return { workload: 'adam', b, optimizer, samplesPerSec: (steps * b) / seconds, seconds, iterations: steps, epochs, check, note: `one train() call of ${epochSteps} steps per epoch` };
}

async function runGemm(ctx: Ctx, shape: readonly [number, number, number]): Promise<PeerResult> {
  const [M, N, K] = shape;
  const g = native.gemm;
  const a = new Float32Array(M * K).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const bm = new Float32Array(K * N).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(M * N);
  const m = await measure(
    () => g.sgemm({ transA: false, transB: false, M, N, K, alpha: 1, beta: 0, a, lda: K, b: bm, ldb: N, c, ldc: N }),
    { seconds: ctx.seconds, ...TIMING.gemm },
  );
  return { workload: 'gemm', shape: [M, N, K], gflops: (2 * M * N * K * m.iterations) / m.seconds / 1e9, seconds: m.seconds, iterations: m.iterations };
}

export async function run(options: PeerRunOptions): Promise<PeerReport> {
  return runOn('cpu', options);
}

export async function runCuda(options: PeerRunOptions): Promise<PeerReport> {
  return runOn('cuda', options);
}

async function runOn(backend: 'cpu' | 'cuda', options: PeerRunOptions): Promise<PeerReport> {
  const info = engineInfo();
  options.log(`bsx ${info.version}: ${info.cpu.simdPath} kernels, ${info.cpu.threads} threads`);
  const train = loadSplit(options.dataDir, 'train');
  const test = loadSplit(options.dataDir, 'test');
  const ctx: Ctx = {
    train,
    test,
    trainDs: Dataset.fromArrays(train.x, train.labels, { dim: 784, classes: 10, name: 'mnist/train' }),
    testDs: Dataset.fromArrays(test.x, test.labels, { dim: 784, classes: 10, name: 'mnist/test' }),
    weights: glorotWeights(),
    seconds: options.seconds,
    backend,
  };
  const cuda = backend === 'cuda';
  if (!cuda) options.log('bsx: measuring the fp32 ceiling');
  const peakGflops = cuda ? undefined : native.gemm.peakGflops(options.quick ? 0.3 : 1.0);
  const results: PeerResult[] = [];
  for (const w of options.workloads as Workload[]) {
    options.log(`bsx: ${workloadKey(w)}`);
    if (w.workload === 'train') results.push(await runTrain(ctx, w.b));
    else if (w.workload === 'eval') results.push(await runEval(ctx, w.b));
    else if (w.workload === 'gradTrial') results.push(await runGradTrial(ctx, w.b));
    else if (w.workload === 'adam') results.push(await runAdam(ctx, w));
    else results.push(await runGemm(ctx, w.shape));
  }
  if (cuda) {
    return {
      peer: 'bsx-cuda',
      version: info.version,
      blas: `bsx's own CUDA kernels (${info.cuda.name ?? 'GPU'})`,
      threads: 1,
      threading: `one GPU; gradient trials ${TRIAL_REPLICAS.cuda} at a time as replicas`,
      results,
    };
  }
  return {
    peer: 'bsx',
    version: info.version,
    blas: `bsx's own GEMM (${info.cpu.gemmKernel})`,
    threads: info.cpu.threads,
    threading: `bsx thread pool, ${info.cpu.threads} threads`,
    peakGflops: peakGflops!,
    peakNote: 'independent register-resident FMA chains on every pool thread',
    results,
  };
}
