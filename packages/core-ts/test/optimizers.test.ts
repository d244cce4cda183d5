// Every optimiser of the engine's table against PyTorch's update rules in float64
// (test/reference/optimizers.ts): several steps, R = 3 replicas with different hyperparameters
// and learning rates, on the GEMM path and at small batches (where anything but plain SGD falls
// back from the fused small-batch kernels to the GEMMs, and says so); the optimiser state
// against the reference; state carried through a checkpoint on disk and a resume, bit for bit;
// the table as @bsx/core reads it, the text syntax and the canonical form.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Ensemble,
  RunStore,
  captureCheckpoint,
  ensembleOptimizer,
  formatOptimizer,
  normalizeOptimizer,
  optimizers,
  parseOptimizer,
  parsePhases,
  restoreCheckpoint,
  runTraining,
  type OptimizerSpec,
} from '../src/index.js';
// the raw engine, below the public API
import { binding } from '../src/engine/binding.js';
import { expectClose, lcg, refParams, rowsOf, syntheticData } from './helpers/small-mlp.js';
import { newModelState, refOptimizerStep, type RefAdamHyper, type RefOptimizer, type RefSgdHyper } from './reference/optimizers.js';

const WIDTHS = [7, 5, 4, 3];
const R = 3;
const COUNT = 48;
const { data, features: FEATURES, labels: LABELS } = syntheticData(COUNT, WIDTHS[0]!, WIDTHS[3]!, 3);

/** An ensemble with distinct random weights and non-zero biases per replica. */
function makeEnsemble(seed = 5): Ensemble {
  const ens = new Ensemble({ replicas: R, widths: WIDTHS });
  ens.init([101, 202, 303]);
  const rnd = lcg(seed);
  for (let l = 0; l < WIDTHS.length - 1; l++) {
    const b = ens.getTensor(2 * l + 1);
    ens.setTensor(2 * l + 1, b.data.map(() => (rnd() - 0.5) * 0.4));
  }
  return ens;
}

interface Case {
  what: string;
  /** what setOptimizer gets: hyperparameters per replica */
  engine: { name: string; [h: string]: string | number[] | boolean[] };
  /** the same for replica r, for the reference */
  ref: (r: number) => RefOptimizer;
  lr: number[];
}

const sgd = (h: Partial<RefSgdHyper>): RefSgdHyper => ({ momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...h });
const adamH = (h: Partial<RefAdamHyper>): RefAdamHyper => ({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...h });

const SGD_H = [sgd({ momentum: 0.9, nesterov: true }), sgd({ momentum: 0.5, dampening: 0.3, weightDecay: 0.01 }), sgd({ weightDecay: 0.05 })];
const ADAM_H = [adamH({}), adamH({ beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.01 }), adamH({ weightDecay: 0.1 })];
const ADAMW_H = [adamH({ weightDecay: 0.01 }), adamH({ weightDecay: 0.5 }), adamH({ beta1: 0.5, weightDecay: 0 })];

const CASES: Case[] = [
  {
    what: 'SGD with momentum (Nesterov, dampened, none) and weight decay',
    engine: {
      name: 'sgd',
      momentum: SGD_H.map((h) => h.momentum),
      dampening: SGD_H.map((h) => h.dampening),
      nesterov: SGD_H.map((h) => h.nesterov),
      weightDecay: SGD_H.map((h) => h.weightDecay),
    },
    ref: (r) => ({ name: 'sgd', hyper: SGD_H[r]! }),
    lr: [0.05, 0.1, 0.2],
  },
  {
    what: 'Adam with coupled weight decay',
    engine: {
      name: 'adam',
      beta1: ADAM_H.map((h) => h.beta1),
      beta2: ADAM_H.map((h) => h.beta2),
      eps: ADAM_H.map((h) => h.eps),
      weightDecay: ADAM_H.map((h) => h.weightDecay),
    },
    ref: (r) => ({ name: 'adam', hyper: ADAM_H[r]! }),
    lr: [0.01, 0.003, 0.02],
  },
  {
    what: 'AdamW with decoupled weight decay',
    engine: {
      name: 'adamw',
      beta1: ADAMW_H.map((h) => h.beta1),
      weightDecay: ADAMW_H.map((h) => h.weightDecay),
    },
    ref: (r) => ({ name: 'adamw', hyper: ADAMW_H[r]! }),
    lr: [0.01, 0.02, 0.005],
  },
];

/** Indices [R, n]: replica r takes (5 i + 7 r + 2) mod COUNT. */
function indices(n: number, offset = 0): Int32Array {
  const idx = new Int32Array(R * n);
  for (let r = 0; r < R; r++) for (let i = 0; i < n; i++) idx[r * n + i] = (5 * (i + offset) + 7 * r + 2) % COUNT;
  return idx;
}

/** Trains `ens` (optimiser set) on idx in calls of `perCall` samples and the reference along with it. */
async function trainAndCompare(ens: Ensemble, c: Case, b: number, n: number, perCall: number): Promise<void> {
  const refs = Array.from({ length: R }, (_, r) => refParams(ens, r));
  const states = Array.from({ length: R }, () => newModelState(WIDTHS.length - 1));
  const idx = indices(n);
  for (let off = 0; off < n; off += perCall) {
    const m = Math.min(perCall, n - off);
    const chunk = new Int32Array(R * m);
    for (let r = 0; r < R; r++) chunk.set(idx.subarray(r * n + off, r * n + off + m), r * m);
    const loss = await ens.train(data, chunk, { batchSize: b, lr: c.lr });
    for (let r = 0; r < R; r++) {
      let sum = 0;
      for (let s = 0; s < m; s += b) {
        const ids = Array.from(chunk.subarray(r * m + s, r * m + Math.min(m, s + b)));
        sum += ids.length * refOptimizerStep(WIDTHS, refs[r]!, rowsOf(data, FEATURES, ids), ids.map((i) => LABELS[i]!), c.ref(r), c.lr[r]!, states[r]!);
      }
      expect(loss[r]).toBeCloseTo(sum / m, 5);
    }
  }
  const desc = optimizers().find((o) => o.name === c.engine.name)!;
  for (let r = 0; r < R; r++) {
    const got = refParams(ens, r);
    for (let l = 0; l < WIDTHS.length - 1; l++) {
      expectClose(got.W[l]!, refs[r]!.W[l]!, 3e-6, 2e-4, `${c.what}: W${l} of replica ${r}`);
      expectClose(got.b[l]!, refs[r]!.b[l]!, 3e-6, 2e-4, `${c.what}: b${l} of replica ${r}`);
    }
    // the optimiser's state, slot by slot, against PyTorch's buffers
    for (const slot of desc.state) {
      for (let t = 0; t < 2 * (WIDTHS.length - 1); t++) {
        const want = states[r]!.tensors[t]![slot as 'momentumBuffer' | 'expAvg' | 'expAvgSq'];
        const got2 = ens.getTensor(t, slot).slice0(r).data;
        // a replica that never uses a buffer (SGD without momentum) holds zeros
        expectClose(got2, want ?? new Float64Array(got2.length), 1e-7, 2e-4, `${c.what}: ${slot} of tensor ${t}, replica ${r}`);
      }
    }
  }
  expect(Array.from(ens.optimizerSteps())).toEqual(Array(R).fill(Math.ceil(perCall / b) * Math.floor(n / perCall) + Math.ceil((n % perCall) / b)));
}

describe('the optimisers against PyTorch rules in float64', () => {
  for (const c of CASES) {
    it(`${c.what}: GEMM path, several steps (the last one short), state carried across calls`, async () => {
      const ens = makeEnsemble();
      ens.setOptimizer(c.engine);
      expect(ens.stepPath(5).path).toBe('gemm');
      await trainAndCompare(ens, c, 5, 28, 14);
    });

    it(`${c.what}: batch 2 falls back from the fused small-batch kernels and says why`, async () => {
      const ens = makeEnsemble(9);
      ens.setOptimizer(c.engine);
      const p = ens.stepPath(2);
      expect(p.path).toBe('gemm');
      expect(p.reason).toMatch(/small-batch kernels take plain SGD only/);
      await trainAndCompare(ens, c, 2, 9, 9);
    });
  }

  it('plain SGD at batch 2 takes the fused small-batch kernels and matches the same reference', async () => {
    const ens = makeEnsemble();
    ens.setOptimizer({ name: 'sgd' });
    expect(ens.stepPath(2).path).toBe('small-batch');
    const plain: Case = { what: 'plain SGD', engine: { name: 'sgd' }, ref: () => ({ name: 'sgd', hyper: sgd({}) }), lr: [0.1, 0.05, 0.2] };
    await trainAndCompare(ens, plain, 2, 9, 9);
  });

  it('momentum turned on for one replica resets only that replica (first step copies the gradient)', async () => {
    const ens = makeEnsemble();
    // phase 1: plain SGD for every replica; phase 2: momentum with dampening for replica 1 only
    const p1: Case = { what: 'plain', engine: { name: 'sgd' }, ref: () => ({ name: 'sgd', hyper: sgd({}) }), lr: [0.1, 0.1, 0.1] };
    ens.setOptimizer(p1.engine);
    await ens.train(data, indices(6), { batchSize: 3, lr: p1.lr });
    const h1 = sgd({ momentum: 0.7, dampening: 0.5 });
    const p2: Case = {
      what: 'momentum on replica 1',
      engine: { name: 'sgd', momentum: [0, h1.momentum, 0], dampening: [0, h1.dampening, 0] },
      ref: (r) => ({ name: 'sgd', hyper: r === 1 ? h1 : sgd({}) }),
      lr: [0.1, 0.1, 0.1],
    };
    ens.setOptimizer(p2.engine);
    expect(Array.from(ens.optimizerSteps())).toEqual([2, 0, 2]);
    const refs = Array.from({ length: R }, (_, r) => refParams(ens, r));
    const states = Array.from({ length: R }, () => newModelState(WIDTHS.length - 1));
    const idx = indices(6, 3);
    await ens.train(data, idx, { batchSize: 3, lr: p2.lr });
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < 6; s += 3) {
        const ids = Array.from(idx.subarray(r * 6 + s, r * 6 + s + 3));
        refOptimizerStep(WIDTHS, refs[r]!, rowsOf(data, FEATURES, ids), ids.map((i) => LABELS[i]!), p2.ref(r), 0.1, states[r]!);
      }
      const got = refParams(ens, r);
      for (let l = 0; l < WIDTHS.length - 1; l++) expectClose(got.W[l]!, refs[r]!.W[l]!, 3e-6, 2e-4, `W${l} of replica ${r}`);
    }
  });

  it('a checkpoint written to disk and restored into a new ensemble continues bit for bit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bsx-opt-cp-'));
    try {
      const store = new RunStore(dir);
      for (const c of CASES) {
        const whole = makeEnsemble();
        whole.setOptimizer(c.engine);
        await whole.train(data, indices(12), { batchSize: 4, lr: c.lr });
        await whole.train(data, indices(12, 12), { batchSize: 4, lr: c.lr });

        const first = makeEnsemble();
        first.snapshot();
        first.setOptimizer(c.engine);
        await first.train(data, indices(12), { batchSize: 4, lr: c.lr });
        // through the run store's checkpoint files (one .npy per tensor and state.json)
        const h = await store.open({ spec: { widths: WIDTHS, seeds: [1, 2, 3], phases: [{ epochs: 1, batchSize: 4, lr: 0.01, optimizer: c.engine.name }] }, data: { name: c.engine.name } });
        try {
          await h.saveCheckpoint({ ...captureCheckpoint(first, 1, 0), extra: {} });
          first.dispose();
          const cp = (await h.loadCheckpoint())!;
          const second = new Ensemble({ replicas: R, widths: WIDTHS });
          restoreCheckpoint(second, { ...cp, optimizer: cp.optimizer as OptimizerSpec });
          // the per-replica hyperparameters come back from the checkpoint with the state
          expect(ensembleOptimizer(second)).toEqual(ensembleOptimizer(whole));
          await second.train(data, indices(12, 12), { batchSize: 4, lr: c.lr });
          whole.parameters().forEach((t, i) => expect(Array.from(second.parameters()[i]!.data), `${c.what}: tensor ${i}`).toEqual(Array.from(t.data)));
          expect(Array.from(second.optimizerSteps())).toEqual(Array.from(whole.optimizerSteps()));
        } finally {
          h.release();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wide layers: the weight-gradient GEMM with the update fused in, on every SIMD path', () => {
  // 37-300-260-10: the weight gradients of the two wide layers go through the packed GEMM
  // (M = 300 and 260 > 64, K = b > 8): at b = 16 all of K is one block (the update reads a
  // scratch band), at b = 300 K spans two blocks of 256 (the update reads C); the 10-wide
  // output layer takes the direct kernel. Plain SGD folds the update into the GEMM (C = W).
  const W2 = [37, 300, 260, 10];
  const N2 = 320;
  const wide = syntheticData(N2, W2[0]!, W2[3]!, 11);
  const gemm = binding().gemm;
  const paths = gemm.availableSimdPaths();
  const before = gemm.simdPath();
  afterAll(() => gemm.setSimdPath(before));
  const cases: { what: string; engine: Case['engine']; ref: RefOptimizer; lr: number }[] = [
    { what: 'plain SGD', engine: { name: 'sgd' }, ref: { name: 'sgd', hyper: sgd({}) }, lr: 0.05 },
    { what: 'SGD with Nesterov momentum and weight decay', engine: { name: 'sgd', momentum: [0.9], nesterov: [true], weightDecay: [0.01] }, ref: { name: 'sgd', hyper: sgd({ momentum: 0.9, nesterov: true, weightDecay: 0.01 }) }, lr: 0.05 },
    { what: 'Adam', engine: { name: 'adam' }, ref: { name: 'adam', hyper: adamH({}) }, lr: 0.003 },
    { what: 'AdamW', engine: { name: 'adamw', weightDecay: [0.1] }, ref: { name: 'adamw', hyper: adamH({ weightDecay: 0.1 }) }, lr: 0.003 },
  ];
  for (const path of paths) {
    for (const b of [16, 300]) {
      it(`${path}, b = ${b}: every optimiser matches the float64 reference after 2 steps`, async () => {
        gemm.setSimdPath(path);
        for (const c of cases) {
          const ens = new Ensemble({ replicas: 1, widths: W2 });
          ens.init([7]);
          ens.setOptimizer(c.engine);
          const ref = refParams(ens, 0);
          const start = refParams(ens, 0);
          const state = newModelState(W2.length - 1);
          const idx = Int32Array.from({ length: 2 * b }, (_, i) => (13 * i + 5) % N2);
          await ens.train(wide.data, idx, { batchSize: b, lr: c.lr });
          for (let s = 0; s < 2 * b; s += b) {
            const ids = Array.from(idx.subarray(s, s + b));
            refOptimizerStep(W2, ref, rowsOf(wide.data, wide.features, ids), ids.map((i) => wide.labels[i]!), c.ref, c.lr, state);
          }
          const got = refParams(ens, 0);
          for (let l = 0; l < W2.length - 1; l++) {
            for (const [name, g, r, s0] of [['W', got.W[l]!, ref.W[l]!, start.W[l]!], ['b', got.b[l]!, ref.b[l]!, start.b[l]!]] as const) {
              const what = `${path} b${b} ${c.what}: ${name}${l}`;
              if (c.ref.name === 'sgd') {
                expectClose(g, r, 3e-6, 3e-4, what);
                continue;
              }
              // Adam moves each weight by about lr * sign(g): a gradient near eps in size, the
              // float32 rounding of a cancelling sum, moves by a visibly different fraction of
              // lr. Compare the changes as a whole (a wrong rule is off by O(lr) everywhere) and
              // bound every element by a tenth of a step.
              let d2 = 0;
              let c2 = 0;
              let worst = 0;
              for (let i = 0; i < r.length; i++) {
                const d = g[i]! - r[i]!;
                d2 += d * d;
                c2 += (r[i]! - s0[i]!) ** 2;
                worst = Math.max(worst, Math.abs(d));
              }
              expect(Math.sqrt(d2 / c2), `${what}: |engine change - reference change| / |reference change|`).toBeLessThan(2e-3);
              expect(worst, `${what}: largest difference`).toBeLessThan(0.1 * c.lr);
            }
          }
          ens.dispose();
        }
      });
    }
  }
});

describe('checkpoints of earlier versions', () => {
  it("an Adam checkpoint with the old slot names (adamM, adamV) restores into expAvg and expAvgSq", () => {
    const src = makeEnsemble();
    src.snapshot();
    src.setOptimizer('adam');
    const shapes = Array.from({ length: 6 }, (_, t) => [R, ...src.tensorShape(t)]);
    const fill = (t: number, k: number) => Float32Array.from({ length: shapes[t]!.reduce((a, b) => a * b, 1) }, (_, i) => (k + 1) * 1e-3 + i * 1e-6);
    const tensors = (['param', 'snapshot', 'adamM', 'adamV'] as const).flatMap((slot, k) =>
      shapes.map((shape, t) => ({ slot, index: t, shape, data: k < 2 ? src.getTensor(t, slot).data : fill(t, k) })),
    );
    const dst = new Ensemble({ replicas: R, widths: WIDTHS });
    restoreCheckpoint(dst, { epoch: 1, phase: 0, optimizer: 'adam', optimizerSteps: [5, 5, 5], tensors, rng: { nextEpoch: 2 } });
    for (let t = 0; t < 6; t++) {
      expect(Array.from(dst.getTensor(t, 'expAvg').data)).toEqual(Array.from(fill(t, 2)));
      expect(Array.from(dst.getTensor(t, 'expAvgSq').data)).toEqual(Array.from(fill(t, 3)));
      expect(Array.from(dst.getTensor(t).data)).toEqual(Array.from(src.getTensor(t).data));
    }
    expect(Array.from(dst.optimizerSteps())).toEqual([5, 5, 5]);
  });
});

describe('threads', () => {
  it('the fused updates give the same bits on 1 and 2 threads (every optimiser, packed and direct GEMMs)', async () => {
    const W2 = [37, 300, 260, 10];
    const wide = syntheticData(200, W2[0]!, W2[3]!, 12);
    const gemm = binding().gemm;
    const before = gemm.threads();
    try {
      for (const opt of ['sgd', { name: 'sgd', momentum: 0.9 }, 'adam', 'adamw'] as const) {
        const params: Float32Array[][] = [];
        for (const threads of [1, 2]) {
          gemm.setThreads(threads);
          const ens = new Ensemble({ replicas: 2, widths: W2 });
          ens.init([1, 2]);
          ens.setOptimizer(opt);
          const idx = Int32Array.from({ length: 2 * 48 }, (_, i) => (7 * i + 3) % 200);
          await ens.train(wide.data, idx, { batchSize: 16, lr: [0.01, 0.02] });
          params.push(ens.parameters().map((t) => t.data));
          ens.dispose();
        }
        params[0]!.forEach((t, i) => expect(Array.from(params[1]![i]!), `${JSON.stringify(opt)} tensor ${i}`).toEqual(Array.from(t)));
      }
    } finally {
      gemm.setThreads(before);
    }
  });
});

describe('subnormal optimiser state', () => {
  // Adam's first moment of a weight that gets no gradient decays by beta1 per step into the
  // subnormal range. A dataset whose first feature is 0 gives the first column of W1 an exact
  // zero gradient; its moments, set to subnormal values, are flushed to zero by default (FTZ/DAZ)
  // and decay as IEEE says with BSX_FTZ=0. Either way the step matches the float64 reference.
  const script = `
    import { Dataset, Ensemble } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
    const widths = [4, 6, 3];
    const x = new Float32Array(8 * 4).map((_, i) => (i % 4 === 0 ? 0 : ((i * 37) % 11) / 11 - 0.5));
    const y = new Uint8Array(8).map((_, i) => i % 3);
    const ds = Dataset.fromArrays(x, y, { dim: 4, classes: 3 });
    const ens = new Ensemble({ replicas: 1, widths });
    ens.init([3]);
    ens.setOptimizer('adam');
    ens.setTensor(0, new Float32Array(24).fill(1e-39), 'expAvg');
    ens.setTensor(0, new Float32Array(24).fill(1e-39), 'expAvgSq');
    await ens.train(ds, Int32Array.from([0, 1, 2, 3]), { batchSize: 4, lr: 0.01 });
    const m = ens.getTensor(0, 'expAvg').data;
    console.log(JSON.stringify({ m0: Array.from({ length: 6 }, (_, o) => m[o * 4]), m1: m[1] }));
  `;
  const run = (env: Record<string, string>): { m0: number[]; m1: number } => {
    // a child process: BSX_FTZ is read once per process (the built package, as bsx runs it)
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };

  it('are flushed to zero by default, kept with BSX_FTZ=0; the gradient-fed moments are the same', () => {
    const ftz = run({});
    const ieee = run({ BSX_FTZ: '0' });
    expect(ftz.m0).toEqual(Array(6).fill(0));
    // 1e-39 + (0 - 1e-39) * 0.1 in float32: a subnormal near 9e-40
    for (const v of ieee.m0) expect(v).toBeCloseTo(9e-40, 44); // subnormals carry few digits
    expect(ieee.m0.every((v) => v > 0 && v < 1.17549435e-38)).toBe(true);
    // a weight with a gradient: its moment is normal, and the same with or without FTZ
    expect(Math.abs(ftz.m1)).toBeGreaterThan(1e-6);
    expect(ftz.m1).toBe(ieee.m1);
  });
});

describe('runs with every optimiser resume to the same numbers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bsx-opt-run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const split = { train: data, test: syntheticData(20, WIDTHS[0]!, WIDTHS[3]!, 4).data };

  for (const phases of ['6x2@0.05:sgd(momentum=0.9,nesterov,weightDecay=0.001),6x1@0.02:sgd(momentum=0.9)', '6x3@0.01:adamw(weightDecay=0.1)', '6x1@0.01:adam,6x2@0.05:sgd(momentum=0.5)']) {
    it(`${phases}: interrupted after epoch 1, resumed, equals an uninterrupted run`, async () => {
      const spec = { widths: WIDTHS, seeds: [4, 5], phases: parsePhases(phases) };
      const whole = await runTraining(spec, split, { store: new RunStore(join(dir, 'a')), data: { name: 'synthetic' }, checkpointEverySeconds: 0 });
      const ac = new AbortController();
      const store = new RunStore(join(dir, 'b'));
      await expect(
        runTraining(spec, split, {
          store,
          data: { name: 'synthetic' },
          checkpointEverySeconds: 0,
          signal: ac.signal,
          onEvent: (e) => {
            if (e.type === 'epoch' && e.epoch === 1) ac.abort();
          },
        }),
      ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
      const resumed = await runTraining(spec, split, { store, data: { name: 'synthetic' }, checkpointEverySeconds: 0 });
      expect(resumed.resumedFromEpoch).toBe(1);
      const strip = (r: typeof whole) => r.seeds.map((s) => s.epochs.map(({ samplesPerSec: _, ...m }) => m));
      expect(strip(resumed)).toEqual(strip(whole));
    });
  }
});

describe("the optimiser table as @bsx/core reads it", () => {
  it('lists sgd, adam and adamw with PyTorch defaults and their state slots', () => {
    const t = optimizers();
    expect(t.map((o) => o.name)).toEqual(['sgd', 'adam', 'adamw']);
    const get = (o: string, h: string) => t.find((x) => x.name === o)!.hyperparameters.find((x) => x.name === h)!.default;
    expect([get('sgd', 'momentum'), get('sgd', 'dampening'), get('sgd', 'nesterov'), get('sgd', 'weightDecay')]).toEqual([0, 0, false, 0]);
    expect([get('adam', 'beta1'), get('adam', 'beta2'), get('adam', 'eps'), get('adam', 'weightDecay')]).toEqual([0.9, 0.999, 1e-8, 0]);
    expect(get('adamw', 'weightDecay')).toBe(0.01);
    expect(t.map((o) => o.state)).toEqual([['momentumBuffer'], ['expAvg', 'expAvgSq'], ['expAvg', 'expAvgSq']]);
  });

  it('parses the text form, keeps only non-default hyperparameters, and formats it back', () => {
    expect(parseOptimizer('sgd(momentum=0.9,nesterov)')).toEqual({ name: 'sgd', momentum: 0.9, nesterov: true });
    expect(parseOptimizer('sgd(momentum=0)')).toBe('sgd');
    expect(parseOptimizer('adamw(weightDecay=0.01)')).toBe('adamw');
    expect(parseOptimizer('adamw(weightDecay=1e-1,beta2=0.99)')).toEqual({ name: 'adamw', beta2: 0.99, weightDecay: 0.1 });
    expect(formatOptimizer({ name: 'sgd', nesterov: true, momentum: 0.9 })).toBe('sgd(momentum=0.9,nesterov)');
    expect(normalizeOptimizer({ name: 'adam', beta1: 0.9 })).toBe('adam');
    const phases = parsePhases('1024x1@0.01,64x2@0.01:sgd(momentum=0.9,nesterov),64x1@0.001:adamw');
    expect(phases.map((p) => p.optimizer)).toEqual(['sgd', { name: 'sgd', momentum: 0.9, nesterov: true }, 'adamw']);
  });

  it('refuses mistakes with the field and the reason', () => {
    expect(() => parseOptimizer('rmsprop')).toThrow(/unknown optimizer 'rmsprop' \(known: sgd, adam, adamw\)/);
    expect(() => parseOptimizer('sgd(nesterov)')).toThrow(/nesterov needs momentum > 0 and dampening = 0/);
    expect(() => parseOptimizer('sgd(momentum=0x10)')).toThrow(/momentum must be a number/);
    expect(() => parseOptimizer('adam(momentum=0.9)')).toThrow(/adam has no hyperparameter 'momentum'/);
    expect(() => parseOptimizer('adam(beta1=1)')).toThrow(/beta1 must be in \[0, 1\)/);
    expect(() => parsePhases('64x2@0.01:sgd(momentum=0.9,momentum=0.8)')).toThrow(/phases\[0\]\.optimizer: momentum is given twice/);
    expect(() => normalizeOptimizer({ name: 'sgd', momentum: '0.9' as unknown as number })).toThrow(/momentum must be a number/);
    // the engine itself refuses the same, with a code
    try {
      binding().validateOptimizer({ name: 'sgd', weightDecay: -1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RangeError);
      expect((err as { code?: string }).code).toBe('BSX_INVALID_ARGUMENT');
    }
  });
});
