// `pnpm bench roofline` (= node bench/dist/roofline.js): where the limits of bsx's CPU engine
// are at the study's batch sizes. For one SGD step of the MLP at b = 8, 64, 256, 1024 it lists
// per phase the FLOPs, the bytes that must move and the cache level they live in
// (roofline-model.ts), the time bound max(FLOPs / FMA ceiling, bytes / bandwidth), and the
// phase's time in bsx, measured through the engine's GEMM binding with the exact shapes,
// transposes and epilogues of packages/core-native/src/cpu/cpu_ensemble.cpp (forward_layers,
// backward, apply_update); then the whole step through Ensemble.train, and evaluation per
// sample through Ensemble.evaluate.
//
//   node bench/dist/roofline.js [--sizes 8,64,256,1024] [--seconds S] [--quick]
//        [--eval-chunk 1000] [--data DIR] [--json] [--out FILE]
//
// Ceilings: the FMA ceiling from bsx's probe (gemm.peakGflops), and the bandwidth of each
// level from a read stream of the level's size through the same binding (a GEMV, on every
// pool thread); a read, copy and triad loop in JavaScript (one thread) is printed beside it.

import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Dataset, Ensemble, engineInfo } from '@bsx/core';
// The GEMM and the FMA probe are the engine's own, below @bsx/core's public API.
import native from '@bsx/core-native';
import { fmt, table } from './format.js';
import { describeMachine, machine, mnistDir, type Machine } from './machine.js';
import { BatchOrder, LAYERS, LR, EVAL_CHUNK, glorotWeights, loadSplit, parseSizes, type Split } from './peer.js';
import {
  LEVELS,
  boundPhases,
  capacities,
  evalModel,
  gradientBufferBytes,
  levelFor,
  readCaches,
  stepModel,
  workingSet,
  type Bandwidths,
  type CacheInfo,
  type Capacities,
  type Level,
  type PhaseBound,
} from './roofline-model.js';

export const ROOFLINE_SIZES = [8, 64, 256, 1024];
export const ROOFLINE_SECONDS = 0.5;
export const ROOFLINE_QUICK_SECONDS = 0.15;
/** Samples per Ensemble.train call when timing whole steps. */
const SAMPLES_PER_CALL = 8192;
/** Bytes a bandwidth probe call moves at least (small levels repeat their buffer). */
const PROBE_BYTES_PER_CALL = 16 * 2 ** 20;
/** Floats per row of the read probe's matrix (one row = 1 KiB). */
const PROBE_ROW = 256;

// ---------------------------------------------------------------------------
// The report

export interface BandwidthRow {
  level: Level;
  /** Bytes of the buffer each probe streams (per thread for L1 and L2). */
  probeBytes: number;
  /** Bytes/s of bsx's read stream on every pool thread (a GEMV: the dot kernel of the small-batch forward). */
  bsxRead: number;
  /** Bytes/s of bsx's update stream on every pool thread (w += a g: read g and w, write w, as the SGD update). */
  bsxUpdate: number;
  /** Bytes/s of one JavaScript thread: sum loop, TypedArray.set, a = b + s*c. */
  jsRead: number;
  jsCopy: number;
  jsTriad: number;
  /** The bandwidth the bounds use: the best of the four (a ceiling is the best a probe reached). */
  used: number;
  usedProbe: 'bsxRead' | 'bsxUpdate' | 'jsRead' | 'jsCopy' | 'jsTriad';
}

export interface PhaseRow extends PhaseBound {
  /** Median time of the phase in the replay, seconds (absent: not timed on its own). */
  measuredSeconds?: number;
  /** measuredSeconds / boundSeconds. */
  ratio?: number;
}

export interface BatchRoofline {
  b: number;
  /** 'gemm': the step runs the phases below; 'small-batch': the engine's fused path runs it instead. */
  path: 'gemm' | 'small-batch';
  phases: PhaseRow[];
  /** The replay's first step against the engine: the same loss and weight gradients. */
  replayCheck: ReplayCheck;
  step: {
    /** Median seconds per step of Ensemble.train calls. */
    measuredSeconds: number;
    stepsPerCall: number;
    calls: number;
    /** Sum of the phases' bounds. */
    boundSeconds: number;
    ratio: number;
    /** The phase with the largest bound. */
    boundingPhase: string;
    /** Sum of the timed phases' medians. */
    timedSeconds: number;
    /** measured step - timed phases: gather, loss head, bias gradients and updates, call overheads. */
    residualSeconds: number;
    /** Bounds of the phases not timed on their own (gather, loss head). */
    residualBoundSeconds: number;
    /** Bytes of every buffer of the minimal step, and the level that holds them. */
    workingSetBytes: number;
    workingSetLevel: Level;
    /** The same with bsx's gradient buffers (one per parameter tensor). */
    bsxWorkingSetBytes: number;
    bsxWorkingSetLevel: Level;
  };
}

export interface EvalRoofline {
  chunk: number;
  phases: PhaseBound[];
  perSample: { flops: number; bytes: Record<Level, number>; boundSeconds: number; boundBy: string; measuredSeconds: number; ratio: number; calls: number };
}

export interface RooflineReport {
  schema: 'bsx-roofline/1';
  date: string;
  machine: Machine;
  engine: { version: string; simdPath: string; gemmKernel: string; threads: number; smallBatchMax: number };
  caches: CacheInfo[];
  capacities: Record<Level, number | null>;
  ceilings: { gflops: number; peakNote: string; bandwidth: BandwidthRow[] };
  /** Median seconds of a 1x1x1 sgemm call: in every measured phase. */
  callOverheadSeconds: number;
  options: { sizes: number[]; seconds: number; quick: boolean; evalChunk: number; dataDir: string };
  batches: BatchRoofline[];
  eval: EvalRoofline;
  notes: string[];
}

// ---------------------------------------------------------------------------
// Timing helpers

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Calls fn (which returns the bytes it moved) until `seconds` passed and 3 calls ran; the best rate, bytes/s. */
function bestRate(fn: () => number, seconds: number): number {
  fn(); // first touch, JIT
  let best = 0;
  const start = performance.now();
  for (let n = 0; ; n++) {
    const t0 = performance.now();
    const bytes = fn();
    const dt = (performance.now() - t0) / 1000;
    if (dt > 0) best = Math.max(best, bytes / dt);
    if ((performance.now() - start) / 1000 >= seconds && n >= 2) break;
  }
  return best;
}

type Gemm = typeof native.gemm;

// ---------------------------------------------------------------------------
// Ceilings

// Each probe allocates its own arrays (one at a time: the DRAM probes' buffers are large).

/**
 * bsx: C (1 x N) = a (1 x K) * B^T with B [N, K] of `bytes`: the dot kernel reads every row of
 * B once. Private levels: every thread runs whole problems on the same B (strideB 0), which
 * stays in its own cache; shared levels: one problem, its rows split between the threads.
 */
function probeBsxRead(g: Gemm, bytes: number, privateLevel: boolean, threads: number, seconds: number): number {
  const K = PROBE_ROW;
  const N = bytes / (K * 4);
  const B = new Float32Array(N * K).fill(0.5);
  const a = new Float32Array(K).fill(0.25);
  const problems = privateLevel ? threads * Math.max(1, Math.ceil(PROBE_BYTES_PER_CALL / (threads * bytes))) : 1;
  const c = new Float32Array(problems * N);
  return bestRate(() => {
    g.sgemm({ transA: false, transB: true, M: 1, N, K, alpha: 1, beta: 0, a, lda: K, b: B, ldb: K, c, ldc: N, batch: problems, strideA: 0, strideB: 0, strideC: N });
    return problems * bytes;
  }, seconds);
}

/**
 * bsx: C (1 x n) += (-0.01) * B (1 x n), the rank-1 GEMM of the direct kernel, over two
 * arrays of bytes / 2 (read B, read C, write C: the SGD update's traffic). Private levels:
 * one problem per thread on its own arrays; shared levels: one problem split between the
 * threads. Private levels pay one binding call per pass: an under-estimate there.
 */
function probeBsxUpdate(g: Gemm, bytes: number, privateLevel: boolean, threads: number, seconds: number): number {
  const n = Math.max(16, Math.floor(bytes / 8));
  const problems = privateLevel ? threads : 1;
  const B = new Float32Array(problems * n).fill(0.5);
  const C = new Float32Array(problems * n).fill(1);
  const a = new Float32Array([-0.01]);
  return bestRate(() => {
    g.sgemm({ transA: false, transB: false, M: 1, N: n, K: 1, alpha: 1, beta: 1, a, lda: 1, b: B, ldb: n, c: C, ldc: n, batch: problems, strideA: 0, strideB: n, strideC: n });
    return problems * 3 * n * 4;
  }, seconds);
}

/** JavaScript, one thread: a sum over `bytes`, four partial sums. */
function probeJsRead(bytes: number, reps: number, seconds: number): number {
  const r = new Float32Array(bytes / 4).fill(0.5);
  return bestRate(() => {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = 0; k < reps; k++) {
      const n = r.length;
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        s0 += r[i]!;
        s1 += r[i + 1]!;
        s2 += r[i + 2]!;
        s3 += r[i + 3]!;
      }
      for (; i < n; i++) s0 += r[i]!;
    }
    if (s0 + s1 + s2 + s3 === -1) throw new Error('unreachable'); // keeps the sums alive
    return reps * bytes;
  }, seconds);
}

/** JavaScript, one thread: TypedArray.set (a native copy) between two halves of `bytes`. */
function probeJsCopy(bytes: number, reps: number, seconds: number): number {
  const half = Math.max(1, Math.floor(bytes / 8));
  const src = new Float32Array(half).fill(0.5);
  const dst = new Float32Array(half);
  return bestRate(() => {
    for (let k = 0; k < reps; k++) dst.set(src);
    return reps * 2 * half * 4;
  }, seconds);
}

/** JavaScript, one thread: a = b + s c over three thirds of `bytes`. */
function probeJsTriad(bytes: number, reps: number, seconds: number): number {
  const third = Math.max(1, Math.floor(bytes / 12));
  const ta = new Float32Array(third);
  const tb = new Float32Array(third).fill(0.5);
  const tc = new Float32Array(third).fill(0.25);
  return bestRate(() => {
    const s = 1.5;
    for (let k = 0; k < reps; k++) for (let i = 0; i < third; i++) ta[i] = tb[i]! + s * tc[i]!;
    return reps * 3 * third * 4;
  }, seconds);
}

function probeBandwidth(g: Gemm, level: Level, probeBytes: number, privateLevel: boolean, threads: number, seconds: number): BandwidthRow {
  // whole rows of PROBE_ROW floats
  const bytes = Math.max(1, Math.round(probeBytes / (PROBE_ROW * 4))) * PROBE_ROW * 4;
  const reps = Math.max(1, Math.ceil(PROBE_BYTES_PER_CALL / bytes));
  const rates = {
    bsxRead: probeBsxRead(g, bytes, privateLevel, threads, seconds),
    bsxUpdate: probeBsxUpdate(g, bytes, privateLevel, threads, seconds),
    jsRead: probeJsRead(bytes, reps, seconds),
    jsCopy: probeJsCopy(bytes, reps, seconds),
    jsTriad: probeJsTriad(bytes, reps, seconds),
  };
  const usedProbe = (Object.keys(rates) as (keyof typeof rates)[]).reduce((a, k) => (rates[k] > rates[a] ? k : a), 'bsxRead');
  return { level, probeBytes: bytes, ...rates, used: rates[usedProbe], usedProbe };
}

/** Probe sizes: half of one core's L1 and L2, half of the L3, 8x the L3 (at least 64 MiB). */
function probeSizes(caches: CacheInfo[]): Record<Level, number> {
  const size = (lvl: number, dflt: number) => caches.find((c) => c.level === lvl)?.size ?? dflt;
  const l3 = size(3, size(2, 1 << 20) * 4);
  return { L1: size(1, 32 << 10) / 2, L2: size(2, 1 << 20) / 2, L3: l3 / 2, DRAM: Math.max(8 * l3, 64 << 20) };
}

function callOverhead(g: Gemm): number {
  const one = new Float32Array(1);
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    g.sgemm({ transA: false, transB: false, M: 1, N: 1, K: 1, alpha: 1, beta: 0, a: one, lda: 1, b: one, ldb: 1, c: one, ldc: 1 });
    times.push(performance.now() - t0);
  }
  return median(times.slice(200)) / 1000;
}

// ---------------------------------------------------------------------------
// One step's phases, replayed through the GEMM binding

interface Replay {
  /** Median seconds per model phase id (fwd*, dgrad*, wgrad* = weight-gradient GEMM + update). */
  medians: Map<string, number>;
  iterations: number;
  check: ReplayCheck;
}

/** The replay's first step against Ensemble.gradients on the same batch and weights. */
export interface ReplayCheck {
  loss: number;
  engineLoss: number;
  /** max over the layers of max |dW - dW_engine| / max |dW_engine|. */
  gradRelDiff: number;
}

function newEnsemble(): Ensemble {
  const ens = new Ensemble({ replicas: 1, backend: 'cpu' });
  ens.init([0]);
  const weights = glorotWeights();
  for (let l = 0; l < 3; l++) {
    ens.setTensorBroadcast(2 * l, weights[l]!);
    ens.setTensorBroadcast(2 * l + 1, new Float32Array(ens.tensorShape(2 * l + 1)[0]!));
  }
  ens.setOptimizer('sgd');
  return ens;
}

/**
 * The GEMM calls of one CPU training step (cpu_ensemble.cpp, one replica), in the engine's
 * order: forward_layers (act[l+1] = act[l] W^T + b, ReLU but on the last layer), then
 * backward from the last layer (dW = delta^T act[l]; delta[l] = (delta W) masked by
 * act[l] > 0), then apply_update (W -= lr dW). The update is not exposed by the binding: it
 * runs as the rank-1 GEMM W (1 x n) += (-lr) * dW (1 x n), which moves the same bytes as
 * the engine's update loop (read dW, read W, write W). Gathering the batch and the loss head
 * run in JavaScript, untimed, so that the data of every phase is where the step leaves it.
 * The first step's loss and weight gradients are checked against Ensemble.gradients.
 */
function replay(g: Gemm, train: Split, trainDs: Dataset, b: number, seconds: number): Replay {
  const L = LAYERS.length - 1;
  const w = LAYERS as readonly number[];
  const W = glorotWeights();
  const bias = w.slice(1).map((n) => new Float32Array(n));
  const G = W.map((x) => new Float32Array(x.length));
  const act = w.map((n) => new Float32Array(b * n)); // act[0] = the batch, act[L] = logits
  const delta = w.map((n) => new Float32Array(b * n)); // delta[l] for l = 1..L
  const labels = new Int32Array(b);
  const negLr = new Float32Array([-LR]);
  const order = new BatchOrder(train.count, b);
  const times = new Map<string, number[]>();
  const add = (id: string, t: number) => {
    const a = times.get(id);
    if (a) a.push(t);
    else times.set(id, [t]);
  };
  const perIter = new Map<string, number>();
  const C = w[L]!;
  let iterations = 0;
  let check: ReplayCheck | undefined;
  const start = performance.now();
  for (let it = 0; ; it++) {
    // gather (untimed)
    const idx = order.next();
    for (let r = 0; r < b; r++) {
      const i = idx[r]!;
      act[0]!.set(train.x.subarray(i * 784, (i + 1) * 784), r * 784);
      labels[r] = train.labels[i]!;
    }
    perIter.clear();
    for (let l = 0; l < L; l++) {
      const inW = w[l]!;
      const outW = w[l + 1]!;
      const t0 = performance.now();
      g.sgemm({ transA: false, transB: true, M: b, N: outW, K: inW, alpha: 1, beta: 0, a: act[l]!, lda: inW, b: W[l]!, ldb: inW, c: act[l + 1]!, ldc: outW, bias: bias[l]!, relu: l < L - 1 });
      perIter.set(`fwd${l + 1}`, performance.now() - t0);
    }
    // loss head (untimed): delta = (softmax(z) - onehot) / b
    const z = act[L]!;
    const dz = delta[L]!;
    let loss = 0;
    for (let r = 0; r < b; r++) {
      let m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, z[r * C + k]!);
      let s = 0;
      for (let k = 0; k < C; k++) s += Math.exp(z[r * C + k]! - m);
      for (let k = 0; k < C; k++) dz[r * C + k] = (Math.exp(z[r * C + k]! - m) / s - (k === labels[r] ? 1 : 0)) / b;
      loss += (Math.log(s) + m - z[r * C + labels[r]!]!) / b;
    }
    for (let l = L - 1; l >= 0; l--) {
      const inW = w[l]!;
      const outW = w[l + 1]!;
      let t0 = performance.now();
      g.sgemm({ transA: true, transB: false, M: outW, N: inW, K: b, alpha: 1, beta: 0, a: delta[l + 1]!, lda: outW, b: act[l]!, ldb: inW, c: G[l]!, ldc: inW });
      perIter.set(`wgrad${l + 1}`, performance.now() - t0);
      if (l > 0) {
        t0 = performance.now();
        g.sgemm({ transA: false, transB: false, M: b, N: inW, K: outW, alpha: 1, beta: 0, a: delta[l + 1]!, lda: outW, b: W[l]!, ldb: inW, c: delta[l]!, ldc: inW, mask: act[l]!, ldm: inW });
        perIter.set(`dgrad${l + 1}`, performance.now() - t0);
      }
    }
    if (it === 0) {
      // G holds this step's weight gradients, W the weights they were taken at
      const ref = newEnsemble().gradients(trainDs, Int32Array.from(idx));
      let gradRelDiff = 0;
      for (let l = 0; l < L; l++) {
        const e = ref.grads[2 * l]!.data;
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < e.length; i++) {
          diff = Math.max(diff, Math.abs(G[l]![i]! - e[i]!));
          scale = Math.max(scale, Math.abs(e[i]!));
        }
        gradRelDiff = Math.max(gradRelDiff, diff / scale);
      }
      check = { loss, engineLoss: ref.loss[0]!, gradRelDiff };
    }
    for (let l = 0; l < L; l++) {
      const n = W[l]!.length;
      const t0 = performance.now();
      g.sgemm({ transA: false, transB: false, M: 1, N: n, K: 1, alpha: 1, beta: 1, a: negLr, lda: 1, b: G[l]!, ldb: n, c: W[l]!, ldc: n });
      perIter.set(`wgrad${l + 1}`, perIter.get(`wgrad${l + 1}`)! + performance.now() - t0);
    }
    if (it >= 1) {
      // iteration 0 pays first-call costs
      for (const [id, t] of perIter) add(id, t / 1000);
      iterations++;
    }
    if ((performance.now() - start) / 1000 >= seconds && iterations >= 3) break;
  }
  return { medians: new Map([...times].map(([id, ts]) => [id, median(ts)])), iterations, check: check! };
}

async function stepTime(train: Split, trainDs: Dataset, b: number, seconds: number): Promise<{ seconds: number; stepsPerCall: number; calls: number }> {
  const ens = newEnsemble();
  const order = new BatchOrder(train.count, b);
  const call = async (steps: number) => {
    const idx = new Int32Array(steps * b);
    for (let s = 0; s < steps; s++) idx.set(order.next(), s * b);
    const t0 = performance.now();
    await ens.train(trainDs, idx, { batchSize: b, lr: LR });
    return (performance.now() - t0) / 1000 / steps;
  };
  // a first short call pays the first-call costs and sizes the calls: about a third of the
  // budget each, at most SAMPLES_PER_CALL samples, at least 16 steps (or SAMPLES_PER_CALL
  // samples, if fewer) so that a call's own overhead stays small next to its steps
  await call(4);
  const first = await call(4);
  const most = Math.max(1, Math.floor(SAMPLES_PER_CALL / b));
  const steps = Math.min(most, Math.max(16, Math.round(seconds / 3 / first)));
  const per: number[] = [];
  const start = performance.now();
  while (per.length < 3 || (performance.now() - start) / 1000 < seconds) per.push(await call(steps));
  return { seconds: median(per), stepsPerCall: steps, calls: per.length };
}

async function evalTime(testDs: Dataset, count: number, chunk: number, seconds: number): Promise<{ seconds: number; calls: number }> {
  const ens = newEnsemble();
  const per: number[] = [];
  const chunks = Math.max(1, Math.floor(count / chunk));
  await ens.evaluate(testDs, 0, chunk);
  const start = performance.now();
  for (let i = 0; per.length < 5 || (performance.now() - start) / 1000 < seconds; i++) {
    const t0 = performance.now();
    await ens.evaluate(testDs, (i % chunks) * chunk, chunk);
    per.push((performance.now() - t0) / 1000);
  }
  return { seconds: median(per), calls: per.length };
}

// ---------------------------------------------------------------------------
// Assembling the report

/** The bound rows of one batch size with the replay's medians attached. */
export function batchRoofline(
  b: number,
  caps: Capacities,
  ceilings: { flops: number; bandwidth: Bandwidths },
  measured: Map<string, number>,
  step: { seconds: number; stepsPerCall: number; calls: number },
  smallBatchMax: number,
  replayCheck: ReplayCheck,
): BatchRoofline {
  const model = stepModel(b);
  const bounds = boundPhases(model, caps, ceilings);
  const phases: PhaseRow[] = bounds.map((p) => {
    const m = measured.get(p.id);
    return m === undefined ? p : { ...p, measuredSeconds: m, ratio: m / p.boundSeconds };
  });
  const boundSeconds = bounds.reduce((a, p) => a + p.boundSeconds, 0);
  const biggest = bounds.reduce((a, p) => (p.boundSeconds > a.boundSeconds ? p : a));
  const timedSeconds = phases.reduce((a, p) => a + (p.measuredSeconds ?? 0), 0);
  const residualBoundSeconds = phases.filter((p) => p.measuredSeconds === undefined).reduce((a, p) => a + p.boundSeconds, 0);
  const ws = workingSet(model);
  const bsxWs = ws + gradientBufferBytes();
  return {
    b,
    path: b <= smallBatchMax ? 'small-batch' : 'gemm',
    phases,
    replayCheck,
    step: {
      measuredSeconds: step.seconds,
      stepsPerCall: step.stepsPerCall,
      calls: step.calls,
      boundSeconds,
      ratio: step.seconds / boundSeconds,
      boundingPhase: biggest.id,
      timedSeconds,
      residualSeconds: step.seconds - timedSeconds,
      residualBoundSeconds,
      workingSetBytes: ws,
      workingSetLevel: levelFor(ws, caps),
      bsxWorkingSetBytes: bsxWs,
      bsxWorkingSetLevel: levelFor(bsxWs, caps),
    },
  };
}

export function evalRoofline(chunk: number, caps: Capacities, ceilings: { flops: number; bandwidth: Bandwidths }, measured: { seconds: number; calls: number }): EvalRoofline {
  const phases = boundPhases(evalModel(chunk), caps, ceilings);
  const bytes: Record<Level, number> = { L1: 0, L2: 0, L3: 0, DRAM: 0 };
  for (const p of phases) for (const l of LEVELS) bytes[l] += p.bytes[l] / chunk;
  const boundSeconds = phases.reduce((a, p) => a + p.boundSeconds, 0) / chunk;
  const biggest = phases.reduce((a, p) => (p.boundSeconds > a.boundSeconds ? p : a));
  return {
    chunk,
    phases,
    perSample: {
      flops: phases.reduce((a, p) => a + p.flops, 0) / chunk,
      bytes,
      boundSeconds,
      boundBy: `${biggest.label} (${biggest.boundBy})`,
      measuredSeconds: measured.seconds / chunk,
      ratio: measured.seconds / chunk / boundSeconds,
      calls: measured.calls,
    },
  };
}

// ---------------------------------------------------------------------------
// Text

const us = (s: number | undefined) => (s === undefined ? '-' : fmt(s * 1e6));
const mb = (bytes: number) => (bytes === 0 ? '' : fmt(bytes / 1e6));
function size(bytes: number): string {
  const [v, unit] = bytes >= 2 ** 20 ? [bytes / 2 ** 20, 'MiB'] : [bytes / 1024, 'KiB'];
  return `${Number.isInteger(v) ? String(v) : fmt(v)} ${unit}`;
}

export function renderRoofline(r: RooflineReport): string {
  const out: string[] = [];
  out.push(`bsx roofline ${r.date}`);
  out.push(`machine: ${describeMachine(r.machine)}`);
  out.push(`engine: bsx ${r.engine.version}, ${r.engine.gemmKernel} GEMM, ${r.engine.threads} threads; the fused small-batch path runs b <= ${r.engine.smallBatchMax}`);
  const names = ['L1', 'L2', 'L3'] as const;
  out.push(
    `caches (sysfs): ${r.caches.map((c) => `L${c.level} ${size(c.size)} x${c.instances}`).join(', ')}; for ${r.engine.threads} threads: ${names.map((n) => `${n} ${size(r.capacities[n] ?? 0)}`).join(', ')}`,
  );
  out.push(`FMA ceiling: ${fmt(r.ceilings.gflops)} GFLOP/s (bsx's probe: ${r.ceilings.peakNote})`);
  out.push('', 'bandwidth, GB/s (best of repeated calls)');
  const probeName = { bsxRead: 'bsx read', bsxUpdate: 'bsx update', jsRead: 'JS read', jsCopy: 'JS copy', jsTriad: 'JS triad' };
  out.push(
    table(
      ['level', 'probe size', 'bsx read', 'bsx update', 'JS read', 'JS copy', 'JS triad', 'used'],
      r.ceilings.bandwidth.map((x) => [
        x.level,
        size(x.probeBytes),
        fmt(x.bsxRead / 1e9),
        fmt(x.bsxUpdate / 1e9),
        fmt(x.jsRead / 1e9),
        fmt(x.jsCopy / 1e9),
        fmt(x.jsTriad / 1e9),
        `${fmt(x.used / 1e9)} (${probeName[x.usedProbe]})`,
      ]),
    ),
  );
  out.push(
    `  bsx read: a GEMV through bsx's GEMM binding (its dot kernel, as the forward at b <= 8) on all ${r.engine.threads} pool threads, L1/L2 per thread;`,
    "  bsx update: w += a g through the binding's rank-1 GEMM (read g and w, write w, as the SGD update), all threads; JS: one thread (scalar JIT loops; copy = TypedArray.set).",
    '  A JavaScript loop may under-estimate the true bandwidth (scalar loads, one core); the bounds use the best probe of each level.',
    `binding call overhead: ${us(r.callOverheadSeconds)} us per sgemm call (inside every measured phase)`,
  );
  for (const bt of r.batches) {
    const s = bt.step;
    out.push('');
    out.push(
      `b = ${bt.b}: ${bt.path === 'gemm' ? 'GEMM path' : 'the engine runs this b on its fused small-batch path: the phases below are what its GEMM path would do'}; working set ${fmt(s.workingSetBytes / 1e6)} MB (${s.workingSetLevel}), bsx's with its gradient buffers ${fmt(s.bsxWorkingSetBytes / 1e6)} MB (${s.bsxWorkingSetLevel})`,
    );
    const rows = bt.phases.map((p) => [
      p.label,
      fmt(p.flops / 1e6),
      ...LEVELS.map((l) => mb(p.bytes[l])),
      us(p.computeSeconds),
      us(p.memorySeconds),
      us(p.boundSeconds),
      p.boundBy,
      us(p.measuredSeconds),
      p.ratio === undefined ? '-' : `${p.ratio.toFixed(2)}x`,
    ]);
    out.push(table(['phase', 'MFLOP', 'L1 MB', 'L2 MB', 'L3 MB', 'DRAM MB', 'FLOP us', 'bytes us', 'bound us', 'by', 'measured us', 'meas/bound'], rows));
    const big = bt.phases.find((p) => p.id === s.boundingPhase)!;
    out.push(
      `  step: measured ${us(s.measuredSeconds)} us (Ensemble.train, median of ${s.calls} calls of ${s.stepsPerCall} steps) vs the sum of bounds ${us(s.boundSeconds)} us: ${s.ratio.toFixed(2)}x`,
      `  largest bound: ${big.label}, ${us(big.boundSeconds)} us (${big.boundBy === 'compute' ? 'FMA ceiling' : `${big.boundBy} bandwidth`})`,
      `  replay vs the engine on its first batch: loss ${bt.replayCheck.loss.toFixed(6)} vs ${bt.replayCheck.engineLoss.toFixed(6)}, weight gradients within ${bt.replayCheck.gradRelDiff.toExponential(1)} (relative to their largest)`,
      `  timed phases ${us(s.timedSeconds)} us; the rest of the step (gather, loss head, bias gradients, the engine's own update loop vs its stand-in, overheads) ${us(s.residualSeconds)} us vs the bound of gather + loss head ${us(s.residualBoundSeconds)} us`,
    );
  }
  const e = r.eval.perSample;
  out.push('');
  out.push(`eval: per sample, chunks of ${r.eval.chunk} test samples through Ensemble.evaluate (median of ${e.calls} calls)`);
  out.push(
    `  ${fmt(e.flops / 1e6)} MFLOP, ${LEVELS.map((l) => `${l} ${fmt(e.bytes[l] / 1e3)} KB`).join(', ')}; bound ${us(e.boundSeconds)} us (largest: ${e.boundBy}); measured ${us(e.measuredSeconds)} us: ${e.ratio.toFixed(2)}x`,
  );
  if (r.notes.length) out.push('');
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Main

const USAGE = `usage: node bench/dist/roofline.js [--sizes 8,64,256,1024] [--seconds S] [--quick]
       [--eval-chunk 1000] [--data DIR] [--json] [--out FILE]`;

export async function rooflineMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'eval-chunk': { type: 'string' },
      data: { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = values.quick!;
  const sizes = values.sizes ? parseSizes(values.sizes, '--sizes') : ROOFLINE_SIZES;
  const seconds = values.seconds !== undefined ? Number(values.seconds) : quick ? ROOFLINE_QUICK_SECONDS : ROOFLINE_SECONDS;
  if (!(seconds > 0)) throw new Error(`--seconds: '${values.seconds}' is not a positive number`);
  const evalChunk = values['eval-chunk'] ? parseSizes(values['eval-chunk'], '--eval-chunk')[0]! : EVAL_CHUNK;
  const dataDir = mnistDir(values.data);
  const log = (m: string) => process.stderr.write(`[roofline] ${m}\n`);

  const info = engineInfo();
  const g = native.gemm;
  const threads = g.threads();
  const caches = readCaches();
  const caps = capacities(caches, threads);
  const train = loadSplit(dataDir, 'train');
  const test = loadSplit(dataDir, 'test');
  if (evalChunk > test.count) throw new Error(`--eval-chunk: ${evalChunk} is more than the ${test.count} test samples`);
  const trainDs = Dataset.fromArrays(train.x, train.labels, { dim: 784, classes: 10, name: 'mnist/train' });
  const testDs = Dataset.fromArrays(test.x, test.labels, { dim: 784, classes: 10, name: 'mnist/test' });

  log('FMA ceiling');
  const gflops = g.peakGflops(Math.min(10, Math.max(0.05, 2 * seconds)));
  log('bandwidth of each level');
  const sizesByLevel = probeSizes(caches);
  const bandwidth = LEVELS.map((l) => probeBandwidth(g, l, sizesByLevel[l], l === 'L1' || l === 'L2', threads, seconds / 2));
  const bw = Object.fromEntries(bandwidth.map((x) => [x.level, x.used])) as Bandwidths;
  const ceilings = { flops: gflops * 1e9, bandwidth: bw };
  const overhead = callOverhead(g);
  const smallBatchMax = g.smallBatchMax();

  const batches: BatchRoofline[] = [];
  for (const b of sizes) {
    log(`b = ${b}: whole steps`);
    const step = await stepTime(train, trainDs, b, seconds);
    log(`b = ${b}: phases`);
    const rep = replay(g, train, trainDs, b, seconds);
    batches.push(batchRoofline(b, caps, ceilings, rep.medians, step, smallBatchMax, rep.check));
  }
  log('eval');
  const ev = evalRoofline(evalChunk, caps, ceilings, await evalTime(testDs, test.count, evalChunk, seconds));

  const notes = [
    'bytes: each operand once (perfect blocking inside a GEMM), weight gradient fused with the update (no gradient buffer); a buffer lives in the smallest level that holds everything the step touches between two uses of it (LRU stack distance)',
    'bound = max(FLOPs / FMA ceiling, sum over levels of bytes / bandwidth): a lower bound on the phase time; GEMM FLOPs are 2*M*N*K',
    "measured: median over the replay's steps of each GEMM call with the engine's shapes, transposes and epilogues; the update (not exposed) as the rank-1 GEMM W += (-lr) dW, which moves the same bytes as the engine's loop",
  ];
  const report: RooflineReport = {
    schema: 'bsx-roofline/1',
    date: new Date().toISOString(),
    machine: machine(),
    engine: { version: info.version, simdPath: info.cpu.simdPath, gemmKernel: info.cpu.gemmKernel, threads, smallBatchMax },
    caches,
    capacities: Object.fromEntries(LEVELS.map((l) => [l, Number.isFinite(caps[l]) ? caps[l] : null])) as Record<Level, number | null>,
    ceilings: { gflops, peakNote: 'independent register-resident FMA chains on every pool thread', bandwidth },
    callOverheadSeconds: overhead,
    options: { sizes, seconds, quick, evalChunk, dataDir },
    batches,
    eval: ev,
    notes,
  };
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (values.out) writeFileSync(values.out, json);
  if (values.json) process.stdout.write(json);
  else process.stdout.write(`${renderRoofline(report)}\n${values.out ? `\nJSON report written to ${values.out}\n` : ''}`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  rooflineMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`roofline: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
      process.exitCode = 2;
    },
  );
}
