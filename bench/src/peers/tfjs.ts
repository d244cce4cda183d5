// The TensorFlow.js peer of `pnpm bench`, run by the runner as a child process:
//
//   node bench/dist/peers/tfjs.js --backend wasm|cpu|node [--best] --data DIR
//        [--workloads train,eval,gradTrial,gemm] [--seconds 1.5] [--quick]
//        [--train-sizes 2,64,256,1024] [--grad-sizes 1,8,64,1024]
//        [--gemm-shapes 1024x1024x784,...] [--eval-chunk 1000]
//   node bench/dist/peers/tfjs.js --backend wasm --detect
//
// prints ONE JSON object on stdout (a PeerReport; with --detect an
// Availability) and progress on stderr. Backends: 'wasm' =
// @tensorflow/tfjs-backend-wasm (XNNPACK in WebAssembly, SIMD; tfjs keeps the
// wasm backend single-threaded in Node, tfjs issue #3830), 'cpu' =
// @tensorflow/tfjs-backend-cpu (plain JavaScript kernels), 'node' =
// @tensorflow/tfjs-node (libtensorflow; its install script downloads the
// library, so it is not a dependency here and is usually unavailable).
//
// The model is written the way a tfjs user writes a custom training loop:
// tf.variable weights, tf.train.sgd, optimizer.minimize (train) or
// tf.variableGrads + optimizer.applyGradients (gradTrial, which needs the
// gradients), everything inside tf.tidy.
//
// --best (wasm only; peer 'tfjs-wasm-best'): the same loop, with each dense layer a
// tf.customGrad whose three GEMMs are all plain matMuls. tfjs-backend-wasm hands a matMul
// to XNNPACK only when neither operand is transposed; every transposed one (both backward
// GEMMs of tfjs's own matMul gradient) runs a scalar loop. So the layer (W [in, out])
// computes y = relu(x W + b) with tf.fused.matMul, and its gradient as
// dW = transpose(x) dz and dx = transpose(W transpose(dz)), the transposes materialised
// (x and dz are small; W^T would be a 1M-element copy every step), dz = dy * step(y).
// The first layer's dx is not needed (zeros), as tfjs and PyTorch skip it too.

// tfjs prints a banner ("looks like you are running TensorFlow.js in Node.js")
// with console.log/warn: keep stdout for the JSON.
console.log = console.error;
console.info = console.error;
console.warn = console.error;

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
// The tfjs packages are optionalDependencies: when they are not installed the
// bench still compiles (the types below then fall back to `any`) and this
// peer reports itself unavailable at run time.
// @ts-ignore -- optional dependency, may be absent
import type * as TF from '@tensorflow/tfjs';
// @ts-ignore -- optional dependency, may be absent
import type * as TFWASM from '@tensorflow/tfjs-backend-wasm';
// @ts-ignore -- optional dependency, may be absent
import type * as TFCPU from '@tensorflow/tfjs-backend-cpu';
import {
  DEFAULT_SECONDS,
  EVAL_CHUNK,
  LAYERS,
  LR,
  QUICK_SECONDS,
  TIMING,
  BatchOrder,
  glorotWeights,
  gatherRows,
  gradTrialIndices,
  loadSplit,
  makePlan,
  measure,
  parseShapes,
  parseSizes,
  parseWorkloadNames,
  transpose,
  trialCapSeconds,
  trialSteps,
  workloadKey,
  type Availability,
  type Check,
  type PeerReport,
  type PeerResult,
  type Split,
  type Workload,
} from '../peer.js';

type Tf = typeof TF;
type Backend = 'wasm' | 'cpu' | 'node';
const PEER_OF: Record<Backend, PeerReport['peer']> = { wasm: 'tfjs-wasm', cpu: 'tfjs-cpu', node: 'tfjs-node' };

interface Loaded {
  tf: Tf;
  version: string;
  blas: string;
  threads: number;
  threading: string;
}

function message(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}

/**
 * import() of an optional package: the specifier is a variable so that tsc
 * does not resolve it (tfjs-node is never installed here; the others may be
 * missing), typed by the caller.
 */
async function importOptional<T>(specifier: string): Promise<T> {
  return (await import(specifier)) as T;
}

async function loadBackend(backend: Backend): Promise<Loaded> {
  if (backend === 'node') {
    const tf = await importOptional<Tf>('@tensorflow/tfjs-node');
    if (!(await tf.setBackend('tensorflow'))) throw new Error("tf.setBackend('tensorflow') failed");
    await tf.ready();
    const threads = availableParallelism();
    return { tf, version: tf.version.tfjs, blas: 'libtensorflow (Eigen)', threads, threading: `libtensorflow's default thread pool (${threads} cores)` };
  }
  const tf = await importOptional<Tf>('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const wasm = await importOptional<typeof TFWASM>('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed");
    await tf.ready();
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const mt = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    const threads = Number(wasm.getThreadsCount());
    return {
      tf,
      version: `${tf.version.tfjs} (tfjs-backend-wasm ${String(wasm.version_wasm)})`,
      blas: `XNNPACK in WebAssembly (${simd ? 'SIMD' : 'no SIMD'})`,
      threads,
      threading: `${threads} thread${threads === 1 ? '' : 's'}; ${mt ? 'multithreaded wasm available' : 'tfjs disables multithreaded wasm in Node (tfjs#3830)'}`,
    };
  }
  const cpu = await importOptional<typeof TFCPU>('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error("tf.setBackend('cpu') failed");
  await tf.ready();
  return {
    tf,
    version: `${tf.version.tfjs} (tfjs-backend-cpu ${String(cpu.version_cpu)})`,
    blas: 'plain JavaScript kernels (tfjs-backend-cpu)',
    threads: 1,
    threading: '1 thread (JavaScript main thread)',
  };
}

// ---------------------------------------------------------------------------
// The model

type Variable = TF.Variable;
type Tensor = TF.Tensor;
type Scalar = TF.Scalar;
type Tensor2D = TF.Tensor2D;

/** y = act(x W + b) with a gradient of plain (untransposed) matMuls only. */
type Dense = (x: Tensor2D, w: Variable, b: Variable) => Tensor2D;

class Mlp {
  /** W1 [784,1024], b1, W2 [1024,1024], b2, W3 [1024,10], b3 (x @ W layout). */
  readonly vars: Variable[];
  private readonly snapshot: Tensor[];
  readonly optimizer: TF.Optimizer;
  /** --best: the three layers as custom-gradient dense layers. */
  private readonly dense?: [Dense, Dense, Dense];

  constructor(
    private readonly tf: Tf,
    best = false,
  ) {
    const init = glorotWeights();
    this.snapshot = [];
    for (let l = 1; l < LAYERS.length; l++) {
      const fanIn = LAYERS[l - 1]!;
      const fanOut = LAYERS[l]!;
      // glorotWeights() is [fanOut, fanIn]; tfjs computes x @ W with W [fanIn, fanOut].
      this.snapshot.push(tf.tensor2d(transpose(init[l - 1]!, fanOut, fanIn), [fanIn, fanOut]));
      this.snapshot.push(tf.zeros([fanOut]));
    }
    const names = ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'];
    this.vars = this.snapshot.map((t, i) => tf.variable(t, true, `bench_${names[i]}`));
    this.optimizer = tf.train.sgd(LR);
    if (best) this.dense = [this.customDense(true, false), this.customDense(true, true), this.customDense(false, true)];
  }

  /**
   * A dense layer whose forward and backward GEMMs are plain matMuls (XNNPACK's fast path
   * on the wasm backend): y = act(x W + b); dz = dy * step(y) (ReLU) or dy;
   * dW = transpose(x) dz; db = sum of dz over the batch; dx = transpose(W transpose(dz)),
   * or zeros when the input needs no gradient (the first layer's input is the data).
   */
  private customDense(relu: boolean, needDx: boolean): Dense {
    const tf = this.tf;
    const f = tf.customGrad((...args: unknown[]) => {
      const [x, w, b, save] = args as [Tensor2D, Tensor2D, Tensor, TF.GradSaveFunc];
      const y = tf.fused.matMul({ a: x, b: w, bias: b, activation: relu ? 'relu' : 'linear' }) as Tensor2D;
      save([x, w, y]);
      return {
        value: y,
        gradFunc: (dy: Tensor2D, saved: Tensor[]) => {
          const [xs, ws, ys] = saved as [Tensor2D, Tensor2D, Tensor2D];
          const dz = relu ? tf.mul(dy, tf.step(ys)) : dy;
          const dW = tf.matMul(tf.transpose(xs), dz);
          const db = tf.sum(dz, 0);
          const dx = needDx ? tf.transpose(tf.matMul(ws, tf.transpose(dz))) : tf.zerosLike(xs);
          return [dx, dW, db];
        },
      };
    });
    return (x, w, b) => f(x, w, b) as Tensor2D;
  }

  /** Back to the initial weights (gradTrial's fixed snapshot). */
  reset(): void {
    this.vars.forEach((v, i) => v.assign(this.snapshot[i]!));
  }

  get lastWeight(): Variable {
    return this.vars[4]!;
  }

  logits(x: Tensor2D): Tensor2D {
    const tf = this.tf;
    const [w1, b1, w2, b2, w3, b3] = this.vars as [Variable, Variable, Variable, Variable, Variable, Variable];
    if (this.dense) {
      const [d1, d2, d3] = this.dense;
      return d3(d2(d1(x, w1, b1), w2, b2), w3, b3);
    }
    const h1 = tf.relu(tf.add(tf.matMul(x, w1 as Tensor2D), b1));
    const h2 = tf.relu(tf.add(tf.matMul(h1 as Tensor2D, w2 as Tensor2D), b2));
    return tf.add(tf.matMul(h2 as Tensor2D, w3 as Tensor2D), b3) as Tensor2D;
  }

  /** Mean NLL of log-softmax(logits) at the labels (oneHot: [n, 10] float). */
  loss(logits: Tensor2D, oneHot: Tensor): Scalar {
    const tf = this.tf;
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as Scalar;
  }

  batch(x: Float32Array, labels: Int32Array): { x: Tensor2D; y: Tensor } {
    const tf = this.tf;
    const n = labels.length;
    return { x: tf.tensor2d(x, [n, 784]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() };
  }
}

// ---------------------------------------------------------------------------
// Workloads

interface Ctx {
  tf: Tf;
  mlp: Mlp;
  train: Split;
  test: Split;
  seconds: number;
  quick: boolean;
  log: (m: string) => void;
}

async function runTrain(ctx: Ctx, b: number): Promise<PeerResult> {
  const { tf, mlp } = ctx;
  mlp.reset();
  const order = new BatchOrder(ctx.train.count, b);
  const check: Check = {};
  const m = await measure(
    (i) => {
      const { x, labels } = gatherRows(ctx.train, order.next());
      let cost: Scalar | null = null;
      tf.tidy(() => {
        const batch = mlp.batch(x, labels);
        const c = mlp.optimizer.minimize(() => mlp.loss(mlp.logits(batch.x), batch.y), i < 2, mlp.vars);
        if (c) cost = tf.keep(c);
      });
      if (cost) {
        check[`loss${i}`] = (cost as Scalar).dataSync()[0]!;
        (cost as Scalar).dispose();
      }
    },
    { seconds: ctx.seconds, ...TIMING.train },
    () => void mlp.vars[5]!.dataSync(),
  );
  return { workload: 'train', b, samplesPerSec: (m.iterations * b) / m.seconds, seconds: m.seconds, iterations: m.iterations, check, ...(m.note ? { note: m.note } : {}) };
}

async function runEval(ctx: Ctx, chunk: number): Promise<PeerResult> {
  const { tf, mlp, test } = ctx;
  mlp.reset();
  const nChunks = Math.ceil(test.count / chunk);
  const xs: Tensor2D[] = [];
  const ys: Tensor[] = [];
  const ls: Tensor[] = [];
  for (let c = 0; c < nChunks; c++) {
    const lo = c * chunk;
    const hi = Math.min(test.count, lo + chunk);
    xs.push(tf.tensor2d(test.x.slice(lo * 784, hi * 784), [hi - lo, 784]));
    const lab = tf.tensor1d(Int32Array.from(test.labels.subarray(lo, hi)), 'int32');
    ls.push(lab);
    ys.push(tf.tidy(() => tf.oneHot(lab, 10).toFloat()));
  }
  let lossSum = 0;
  let correct = 0;
  let samples = 0;
  const m = await measure(
    (i) => {
      const c = i % nChunks;
      const [l, k] = tf.tidy(() => {
        const logits = mlp.logits(xs[c]!);
        const n = xs[c]!.shape[0];
        const lossSumT = tf.mul(mlp.loss(logits, ys[c]!), n);
        const correctT = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), ls[c]!), 'float32'));
        return [lossSumT.dataSync()[0]!, correctT.dataSync()[0]!];
      });
      if (i < nChunks) {
        lossSum += l;
        correct += k;
        samples += xs[c]!.shape[0];
      }
    },
    { seconds: ctx.seconds, ...TIMING.eval },
  );
  const perChunk = test.count / nChunks;
  for (const t of [...xs, ...ys, ...ls]) t.dispose();
  const check: Check = samples === test.count ? { loss: lossSum / samples, accuracy: correct / samples } : {};
  return { workload: 'eval', b: chunk, samplesPerSec: (m.iterations * perChunk) / m.seconds, seconds: m.seconds, iterations: m.iterations, check, ...(m.note ? { note: m.note } : {}) };
}

async function runGradTrial(ctx: Ctx, b: number): Promise<PeerResult> {
  const { tf, mlp } = ctx;
  const steps = trialSteps(b);
  const w3 = mlp.lastWeight;
  const check: Check = {};
  const capMs = trialCapSeconds(ctx.seconds) * 1000;
  let stepsDone = steps.length;
  const m = await measure(
    (t) => {
      const t0 = performance.now();
      const idx = gradTrialIndices(ctx.train.count, t);
      const rows = gatherRows(ctx.train, idx);
      mlp.reset();
      let S: Tensor = tf.zeros(w3.shape);
      let normSum: Tensor = tf.scalar(0);
      let off = 0;
      let done = 0;
      for (const n of steps) {
        // Trial 0 of a very slow peer stops early (see trialCapSeconds).
        if (t === 0 && done > 0 && performance.now() - t0 > capMs) break;
        const x = rows.x.slice(off * 784, (off + n) * 784);
        const labels = rows.labels.slice(off, off + n);
        off += n;
        const next = tf.tidy(() => {
          const batch = mlp.batch(x, labels);
          const { grads } = tf.variableGrads(() => mlp.loss(mlp.logits(batch.x), batch.y), mlp.vars);
          mlp.optimizer.applyGradients(grads);
          const g = grads[w3.name]!;
          return { S: tf.add(S, g), normSum: tf.add(normSum, tf.norm(g)) };
        });
        S.dispose();
        normSum.dispose();
        S = next.S;
        normSum = next.normSum;
        done++;
      }
      const normS = tf.tidy(() => tf.norm(S).dataSync()[0]!);
      const sumNorms = normSum.dataSync()[0]!;
      S.dispose();
      normSum.dispose();
      if (t === 0) {
        stepsDone = done;
        if (done === steps.length) Object.assign(check, { normS, sumNorms });
      }
    },
    { seconds: ctx.seconds, ...TIMING.gradTrial },
  );
  const fraction = m.iterations === 1 && stepsDone < steps.length ? stepsDone / steps.length : 1;
  const note = fraction < 1 ? `partial trial: ${stepsDone} of ${steps.length} steps in ${m.seconds.toFixed(1)} s, extrapolated` : m.note;
  return { workload: 'gradTrial', b, trialsPerSec: (m.iterations * fraction) / m.seconds, seconds: m.seconds, iterations: m.iterations, check, ...(note ? { note } : {}) };
}

async function runGemm(ctx: Ctx, shape: readonly [number, number, number]): Promise<PeerResult> {
  const { tf } = ctx;
  const [M, N, K] = shape;
  const a = tf.randomNormal([M, K], 0, 1, 'float32', 1) as Tensor2D;
  const b = tf.randomNormal([K, N], 0, 1, 'float32', 2) as Tensor2D;
  let c: Tensor | null = null;
  const m = await measure(
    () => {
      c?.dispose();
      c = tf.matMul(a, b);
    },
    { seconds: ctx.seconds, ...TIMING.gemm },
    () => void (c as Tensor | null)?.dataSync(),
  );
  (c as Tensor | null)?.dispose();
  a.dispose();
  b.dispose();
  const gflops = (2 * M * N * K * m.iterations) / m.seconds / 1e9;
  return { workload: 'gemm', shape: [M, N, K], gflops, seconds: m.seconds, iterations: m.iterations, ...(m.note ? { note: m.note } : {}) };
}

function describe(r: PeerResult): string {
  const fig =
    r.samplesPerSec !== undefined
      ? `${r.samplesPerSec.toFixed(1)} samples/s`
      : r.trialsPerSec !== undefined
        ? `${r.trialsPerSec.toFixed(3)} trials/s`
        : r.gflops !== undefined
          ? `${r.gflops.toFixed(2)} GFLOP/s`
          : '-';
  return `${workloadKey(r)}: ${fig} (${r.iterations} it, ${r.seconds.toFixed(2)} s)${r.note ? ` [${r.note}]` : ''}`;
}

// ---------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      data: { type: 'string' },
      workloads: { type: 'string', default: 'train,eval,gradTrial,gemm' },
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'train-sizes': { type: 'string' },
      'grad-sizes': { type: 'string' },
      'gemm-shapes': { type: 'string' },
      'eval-chunk': { type: 'string' },
      'adam-epoch-steps': { type: 'string' },
      detect: { type: 'boolean', default: false },
      best: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const backend = values.backend as Backend;
  if (!(backend in PEER_OF)) throw new Error(`--backend: '${backend}' is not wasm, cpu or node`);
  const best = values.best!;
  if (best && backend !== 'wasm') throw new Error(`--best: only with --backend wasm (got --backend ${backend})`);
  const peer: PeerReport['peer'] = best ? 'tfjs-wasm-best' : PEER_OF[backend];
  const log = (m: string) => process.stderr.write(`[${peer}] ${m}\n`);

  if (values.detect) {
    let out: Availability;
    try {
      const l = await loadBackend(backend);
      out = { available: true, version: l.version };
    } catch (err) {
      out = { available: false, reason: message(err) };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }

  if (!values.data) throw new Error('--data DIR is required');
  const quick = values.quick!;
  const seconds = values.seconds !== undefined ? Number(values.seconds) : quick ? QUICK_SECONDS : DEFAULT_SECONDS;
  if (!(seconds > 0)) throw new Error(`--seconds: '${values.seconds}' is not a positive number`);
  const plan: Workload[] = makePlan({
    names: parseWorkloadNames(values.workloads!),
    quick,
    ...(values['train-sizes'] ? { trainSizes: parseSizes(values['train-sizes'], '--train-sizes') } : {}),
    ...(values['grad-sizes'] ? { gradSizes: parseSizes(values['grad-sizes'], '--grad-sizes') } : {}),
    ...(values['gemm-shapes'] ? { gemmShapes: parseShapes(values['gemm-shapes']) } : {}),
    evalChunk: values['eval-chunk'] ? parseSizes(values['eval-chunk'], '--eval-chunk')[0]! : EVAL_CHUNK,
    ...(values['adam-epoch-steps'] ? { adamEpochSteps: parseSizes(values['adam-epoch-steps'], '--adam-epoch-steps')[0]! } : {}),
  });

  const loaded = await loadBackend(backend);
  const { tf } = loaded;
  log(`tfjs ${loaded.version}, backend ${tf.getBackend()}, ${loaded.blas}, ${loaded.threading}`);
  const ctx: Ctx = {
    tf,
    mlp: new Mlp(tf, best),
    train: loadSplit(values.data, 'train'),
    test: loadSplit(values.data, 'test'),
    seconds,
    quick,
    log,
  };
  const results: PeerResult[] = [];
  for (const w of plan) {
    let r: PeerResult;
    try {
      if (w.workload === 'train') r = await runTrain(ctx, w.b);
      else if (w.workload === 'eval') r = await runEval(ctx, w.b);
      else if (w.workload === 'gradTrial') r = await runGradTrial(ctx, w.b);
      else if (w.workload === 'adam') {
        // two epochs take this peer tens of minutes: not measured (the runner does not ask)
        r = { workload: 'adam', b: w.b, optimizer: w.optimizer, seconds: 0, iterations: 0, note: 'not measured: two epochs would take the tfjs peers tens of minutes' };
      } else r = await runGemm(ctx, w.shape);
    } catch (err) {
      r = { workload: w.workload, ...('shape' in w ? { shape: [...w.shape] as [number, number, number] } : { b: w.b }), seconds: 0, iterations: 0, note: `error: ${message(err)}` };
    }
    log(`${describe(r)} [tensors ${tf.memory().numTensors}]`);
    results.push(r);
  }
  const report: PeerReport = {
    peer,
    version: loaded.version,
    blas: best ? `${loaded.blas}; every GEMM on XNNPACK (custom-gradient dense layers of plain matMuls)` : loaded.blas,
    threads: loaded.threads,
    threading: loaded.threading,
    results,
    notes: [`tensors alive at the end: ${tf.memory().numTensors} (expected 13: the 6 variables, their 6 initial values, the optimizer's learning rate)`],
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`tfjs peer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
