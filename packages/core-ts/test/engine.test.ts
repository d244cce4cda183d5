// The engine against the float64 reference (test/reference/mlp.ts) and finite differences:
// forward, loss, every gradient, SGD and Adam steps, replica independence, initialisation,
// statistics, evaluation, and argument checking of every native entry point.

import { describe, expect, it } from 'vitest';
import { Dataset, Ensemble, philox4x32 } from '../src/index.js';
// the raw engine, below the public API
import { binding } from '../src/engine/binding.js';
import {
  cloneParams,
  logSoftmax,
  refAdamState,
  refForward,
  refGradients,
  refLoss,
  refStep,
  type RefParams,
} from './reference/mlp.js';
import { expectClose, lcg, refParams, rowsOf } from './helpers/small-mlp.js';

const WIDTHS = [7, 5, 4, 3];
const R = 3;

function makeData(count: number, dim: number, classes: number, seed = 1): Dataset {
  const rnd = lcg(seed);
  const x = new Float32Array(count * dim).map(() => rnd() * 2 - 1);
  const y = new Uint8Array(count).map(() => Math.floor(rnd() * classes));
  return Dataset.fromArrays(x, y, { dim, classes, name: 'synthetic' });
}

/** An ensemble with distinct random weights and non-zero biases per replica. */
function makeEnsemble(seed = 7): Ensemble {
  const ens = new Ensemble({ replicas: R, widths: WIDTHS });
  ens.init([11, 22, 33]);
  const rnd = lcg(seed);
  for (let l = 0; l < WIDTHS.length - 1; l++) {
    const b = ens.getTensor(2 * l + 1);
    ens.setTensor(2 * l + 1, b.data.map(() => (rnd() - 0.5) * 0.4));
  }
  return ens;
}

// features of the synthetic dataset, kept for the reference
const COUNT = 40;
const rndFeat = lcg(1);
const FEATURES = new Float32Array(COUNT * WIDTHS[0]!).map(() => rndFeat() * 2 - 1);
const LABELS = new Uint8Array(COUNT).map(() => Math.floor(rndFeat() * WIDTHS[3]!));
const data = Dataset.fromArrays(FEATURES, LABELS, { dim: WIDTHS[0]!, classes: WIDTHS[3]!, name: 'synthetic' });

function batchIndices(b: number, offset: number): Int32Array {
  // replica r uses its own indices: (offset + 3*i + 5*r) mod COUNT
  const idx = new Int32Array(R * b);
  for (let r = 0; r < R; r++) for (let i = 0; i < b; i++) idx[r * b + i] = (offset + 3 * i + 5 * r) % COUNT;
  return idx;
}

describe('forward and loss', () => {
  it('log-probabilities match the float64 reference for every replica', () => {
    const ens = makeEnsemble();
    const b = 6;
    const idx = batchIndices(b, 2);
    const out = ens.forward(data, idx);
    expect(out.shape).toEqual([R, b, 3]);
    for (let r = 0; r < R; r++) {
      const x = rowsOf(data, FEATURES, idx.subarray(r * b, (r + 1) * b));
      const acts = refForward(WIDTHS, refParams(ens, r), x);
      const expected = acts[acts.length - 1]!.flatMap((z) => Array.from(logSoftmax(z)));
      expectClose(out.slice0(r).data, expected, 1e-5, 1e-5, `logprobs r${r}`);
    }
  });

  it('evaluate gives the reference mean loss and accuracy', async () => {
    const ens = makeEnsemble();
    const ev = await ens.evaluate(data);
    for (let r = 0; r < R; r++) {
      const all = Array.from({ length: COUNT }, (_, i) => i);
      const x = rowsOf(data, FEATURES, all);
      const p = refParams(ens, r);
      const loss = refLoss(WIDTHS, p, x, Array.from(LABELS));
      const logits = refForward(WIDTHS, p, x)[WIDTHS.length - 1]!;
      let hits = 0;
      logits.forEach((z, i) => {
        let arg = 0;
        for (let c = 1; c < z.length; c++) if (z[c]! > z[arg]!) arg = c;
        if (arg === LABELS[i]) hits++;
      });
      expect(ev.loss[r]).toBeCloseTo(loss, 5);
      expect(ev.accuracy[r]).toBe(hits / COUNT);
    }
    // a window of rows
    const part = await ens.evaluate(data, 10, 7);
    expect(part.count).toBe(7);
    const x = rowsOf(data, FEATURES, [10, 11, 12, 13, 14, 15, 16]);
    expect(part.loss[1]).toBeCloseTo(refLoss(WIDTHS, refParams(ens, 1), x, Array.from(LABELS.subarray(10, 17))), 5);
  });
});

describe('gradients', () => {
  it('every gradient matches float64 backpropagation', () => {
    const ens = makeEnsemble();
    const b = 5;
    const idx = batchIndices(b, 1);
    const g = ens.gradients(data, idx);
    for (let r = 0; r < R; r++) {
      const ids = Array.from(idx.subarray(r * b, (r + 1) * b));
      const ref = refGradients(WIDTHS, refParams(ens, r), rowsOf(data, FEATURES, ids), ids.map((i) => LABELS[i]!));
      expect(g.loss[r]).toBeCloseTo(ref.loss, 5);
      for (let l = 0; l < WIDTHS.length - 1; l++) {
        expectClose(g.grads[2 * l]!.slice0(r).data, ref.gW[l]!, 1e-6, 1e-4, `dW${l} r${r}`);
        expectClose(g.grads[2 * l + 1]!.slice0(r).data, ref.gb[l]!, 1e-6, 1e-4, `db${l} r${r}`);
      }
    }
  });

  it('the reference gradient matches central finite differences (float64)', () => {
    const ens = makeEnsemble();
    const b = 4;
    const idx = batchIndices(b, 3);
    const ids = Array.from(idx.subarray(0, b));
    const x = rowsOf(data, FEATURES, ids);
    const y = ids.map((i) => LABELS[i]!);
    const p = refParams(ens, 0);
    const ref = refGradients(WIDTHS, p, x, y);
    const h = 1e-6;
    for (let l = 0; l < WIDTHS.length - 1; l++) {
      for (const [tensor, grad] of [
        [p.W[l]!, ref.gW[l]!],
        [p.b[l]!, ref.gb[l]!],
      ] as const) {
        for (let i = 0; i < tensor.length; i++) {
          const q = cloneParams(p);
          const t = tensor === p.W[l] ? q.W[l]! : q.b[l]!;
          t[i] += h;
          const up = refLoss(WIDTHS, q, x, y);
          t[i] -= 2 * h;
          const down = refLoss(WIDTHS, q, x, y);
          expect(Math.abs((up - down) / (2 * h) - grad[i]!)).toBeLessThan(1e-7);
        }
      }
    }
  });

  it('the engine gradient matches central finite differences of the engine loss', () => {
    const ens = makeEnsemble();
    const b = 4;
    const idx = batchIndices(b, 5);
    const g = ens.gradients(data, idx);
    const h = 1e-3;
    // every 3rd parameter of every tensor, replica 2
    for (let t = 0; t < 2 * ens.layers; t++) {
      const base = ens.getTensor(t).data;
      const n = base.length / R;
      for (let i = 0; i < n; i += 3) {
        const k = 2 * n + i;
        const plus = Float32Array.from(base);
        plus[k] += h;
        ens.setTensor(t, plus);
        const up = ens.gradients(data, idx).loss[2]!;
        const minus = Float32Array.from(base);
        minus[k] -= h;
        ens.setTensor(t, minus);
        const down = ens.gradients(data, idx).loss[2]!;
        ens.setTensor(t, base);
        const fd = (up - down) / (2 * h);
        expect(Math.abs(fd - g.grads[t]!.data[k]!), `tensor ${t} element ${i}`).toBeLessThan(5e-4 + 1e-2 * Math.abs(fd));
      }
    }
  });

  it('gradients() changes no state', () => {
    const ens = makeEnsemble();
    const before = ens.parameters().map((t) => Float32Array.from(t.data));
    ens.gradients(data, batchIndices(4, 0));
    ens.parameters().forEach((t, i) => expect(Array.from(t.data)).toEqual(Array.from(before[i]!)));
    expect(Array.from(ens.optimizerSteps())).toEqual([0, 0, 0]);
  });
});

describe('optimisers', () => {
  async function compareSteps(optimizer: 'sgd' | 'adam', lr: number[], b: number, n: number): Promise<void> {
    const ens = makeEnsemble();
    ens.setOptimizer(optimizer);
    const refs = Array.from({ length: R }, (_, r) => refParams(ens, r));
    const adams = Array.from({ length: R }, () => (optimizer === 'adam' ? refAdamState(WIDTHS) : undefined));
    const idx = new Int32Array(R * n);
    for (let r = 0; r < R; r++) for (let i = 0; i < n; i++) idx[r * n + i] = (7 * i + 3 * r + 1) % COUNT;
    const loss = await ens.train(data, idx, { batchSize: b, lr });
    for (let r = 0; r < R; r++) {
      let sum = 0;
      for (let off = 0; off < n; off += b) {
        const ids = Array.from(idx.subarray(r * n + off, r * n + Math.min(n, off + b)));
        const l = refStep(WIDTHS, refs[r]!, rowsOf(data, FEATURES, ids), ids.map((i) => LABELS[i]!), lr[r]!, adams[r]);
        sum += l * ids.length;
      }
      expect(loss[r]).toBeCloseTo(sum / n, 5);
      const got = refParams(ens, r);
      for (let l = 0; l < WIDTHS.length - 1; l++) {
        expectClose(got.W[l]!, refs[r]!.W[l]!, 2e-6, 1e-4, `${optimizer} W${l} r${r}`);
        expectClose(got.b[l]!, refs[r]!.b[l]!, 2e-6, 1e-4, `${optimizer} b${l} r${r}`);
      }
    }
    expect(Array.from(ens.optimizerSteps())).toEqual(Array(R).fill(Math.ceil(n / b)));
  }

  it('SGD: several steps (last one short) match the reference, lr per replica', async () => {
    await compareSteps('sgd', [0.1, 0.05, 0.2], 4, 14);
  });

  it("Adam: several steps match PyTorch's update rule", async () => {
    await compareSteps('adam', [0.01, 0.003, 0.02], 3, 12);
  });

  it('Adam state carries across calls and resets on a change of optimiser', async () => {
    const a = makeEnsemble();
    const b = makeEnsemble();
    a.setOptimizer('adam');
    b.setOptimizer('adam');
    const idx = batchIndices(8, 0);
    await a.train(data, idx, { batchSize: 4, lr: 0.01 });
    await b.train(data, idx.slice(0, 0 + 4 * 0 + R * 8), { batchSize: 4, lr: 0.01 });
    // two calls on `a` equal one call over the concatenation on `b`
    const a2 = makeEnsemble();
    a2.setOptimizer('adam');
    const first = new Int32Array(R * 4);
    const second = new Int32Array(R * 4);
    for (let r = 0; r < R; r++) {
      first.set(idx.subarray(r * 8, r * 8 + 4), r * 4);
      second.set(idx.subarray(r * 8 + 4, r * 8 + 8), r * 4);
    }
    await a2.train(data, first, { batchSize: 4, lr: 0.01 });
    await a2.train(data, second, { batchSize: 4, lr: 0.01 });
    a2.parameters().forEach((t, i) => expect(Array.from(t.data)).toEqual(Array.from(b.parameters()[i]!.data)));
    a2.setOptimizer('sgd');
    expect(Array.from(a2.optimizerSteps())).toEqual([0, 0, 0]);
  });

  it('replicas are independent: changing one replica batch changes no other replica', async () => {
    const n = 8;
    const idx = batchIndices(n, 0);
    const a = makeEnsemble();
    const b = makeEnsemble();
    await a.train(data, idx, { batchSize: 4, lr: 0.1 });
    const idx2 = Int32Array.from(idx);
    for (let i = 0; i < n; i++) idx2[n + i] = (idx2[n + i]! + 11) % COUNT; // replica 1 only
    await b.train(data, idx2, { batchSize: 4, lr: 0.1 });
    for (let t = 0; t < 2 * a.layers; t++) {
      const ta = a.getTensor(t);
      const tb = b.getTensor(t);
      expect(Array.from(tb.slice0(0).data)).toEqual(Array.from(ta.slice0(0).data));
      expect(Array.from(tb.slice0(2).data)).toEqual(Array.from(ta.slice0(2).data));
      if (t === 0) expect(Array.from(tb.slice0(1).data)).not.toEqual(Array.from(ta.slice0(1).data));
    }
  });
});

describe('initialisation', () => {
  it('the same seed gives the same weights, different seeds differ, biases start at zero', () => {
    const a = new Ensemble({ replicas: 2, widths: WIDTHS });
    const b = new Ensemble({ replicas: 3, widths: WIDTHS });
    a.init([5, 6]);
    b.init([6, 5, 9]);
    const wa = a.getTensor(0);
    const wb = b.getTensor(0);
    expect(Array.from(wa.slice0(0).data)).toEqual(Array.from(wb.slice0(1).data));
    expect(Array.from(wa.slice0(1).data)).toEqual(Array.from(wb.slice0(0).data));
    expect(Array.from(wb.slice0(2).data)).not.toEqual(Array.from(wb.slice0(0).data));
    for (let l = 0; l < 3; l++) expect(a.getTensor(2 * l + 1).data.every((v) => v === 0)).toBe(true);
  });

  it('weights follow Philox: element k of layer l from counter (k/4, 0, 0x100 + l, 0)', () => {
    const ens = new Ensemble({ replicas: 1, widths: WIDTHS });
    const seed = 2 ** 40 + 12345;
    ens.init([seed]);
    const k0 = seed >>> 0;
    const k1 = Math.floor(seed / 2 ** 32);
    for (let l = 0; l < 3; l++) {
      const w = ens.getTensor(2 * l).data;
      const bound = Math.sqrt(6 / (WIDTHS[l]! + WIDTHS[l + 1]!));
      for (let k = 0; k < w.length; k++) {
        const word = philox4x32(Math.floor(k / 4), 0, 0x100 + l, 0, k0, k1)[k % 4]!;
        const u = (word >>> 8) / 16777216;
        expect(w[k]).toBeCloseTo((2 * u - 1) * bound, 6);
      }
    }
  });

  it('Xavier init of the study model: total weight norm 43.95 +- 0.2, within each layer bound', () => {
    const ens = new Ensemble({ replicas: 3 });
    ens.init([0, 1, 2]);
    const expected = Math.sqrt(
      [
        [784, 1024],
        [1024, 1024],
        [1024, 10],
      ].reduce((s, [i, o]) => s + (i! * o! * 2) / (i! + o!), 0),
    );
    expect(expected).toBeCloseTo(43.95, 2);
    ens.snapshot();
    const st = ens.stats();
    for (let r = 0; r < 3; r++) {
      const norm = Math.sqrt(st[r]!.reduce((s, l) => s + l.weightNorm2, 0));
      expect(Math.abs(norm - 43.95)).toBeLessThan(0.2);
    }
    const w0 = ens.getTensor(0).data;
    const bound = Math.sqrt(6 / (784 + 1024));
    let max = 0;
    for (const v of w0) max = Math.max(max, Math.abs(v));
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(bound * 0.999);
  });
});

describe('statistics', () => {
  it('norms, distances and dots match values computed from the tensors', async () => {
    const ens = makeEnsemble();
    ens.snapshot();
    const snap = ens.parameters().map((t) => Float64Array.from(t.data));
    await ens.train(data, batchIndices(8, 0), { batchSize: 4, lr: 0.3 });
    const now = ens.parameters().map((t) => Float64Array.from(t.data));
    const st = ens.stats();
    for (let r = 0; r < R; r++) {
      for (let l = 0; l < 3; l++) {
        for (const [part, key] of [
          [0, 'weight'],
          [1, 'bias'],
        ] as const) {
          const t = 2 * l + part;
          const n = now[t]!.length / R;
          let norm2 = 0;
          let dist2 = 0;
          let dot = 0;
          let s2 = 0;
          for (let i = r * n; i < (r + 1) * n; i++) {
            norm2 += now[t]![i]! ** 2;
            dist2 += (now[t]![i]! - snap[t]![i]!) ** 2;
            dot += now[t]![i]! * snap[t]![i]!;
            s2 += snap[t]![i]! ** 2;
          }
          const s = st[r]![l]!;
          expect(s[`${key}Norm2`]).toBeCloseTo(norm2, 9);
          expect(s[`${key}Dist2`]).toBeCloseTo(dist2, 9);
          expect(s[`${key}Dot`]).toBeCloseTo(dot, 9);
          expect(s[`${key}SnapNorm2`]).toBeCloseTo(s2, 9);
          expect(dist2).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe('native argument checks', () => {
  const nb = binding();
  const ens = makeEnsemble();
  const nat = ens.native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const ds = data.native;

  it('Dataset constructor rejects wrong types, lengths and labels', () => {
    const D = nb.Dataset as unknown as new (...a: unknown[]) => unknown;
    expect(() => new D([1, 2], new Uint8Array(1), 1, 2, 2)).toThrow(TypeError);
    expect(() => new D(new Float32Array(3), new Uint8Array(1), 1, 2, 2)).toThrow(RangeError);
    expect(() => new D(new Float32Array(2), new Uint8Array(2), 1, 2, 2)).toThrow(RangeError);
    expect(() => new D(new Float32Array(2), new Float32Array(1), 1, 2, 2)).toThrow(TypeError);
    expect(() => new D(new Float32Array(2), new Uint8Array([5]), 1, 2, 2)).toThrow(/label 5 at index 0/);
    expect(() => new D(new Float32Array(2), new Uint8Array(1), 1.5, 2, 2)).toThrow(TypeError);
    expect(() => new D(new Float32Array(2), new Uint8Array(1), 0, 2, 2)).toThrow(RangeError);
  });

  it('Ensemble constructor rejects bad options', () => {
    const E = nb.Ensemble as unknown as new (...a: unknown[]) => unknown;
    expect(() => new E()).toThrow(TypeError);
    expect(() => new E({ replicas: 1, widths: [3] })).toThrow(RangeError);
    expect(() => new E({ replicas: 1, widths: [3, 'a'] })).toThrow(TypeError);
    expect(() => new E({ replicas: 0, widths: [3, 2] })).toThrow(RangeError);
    expect(() => new E({ replicas: 1, widths: [3, 2], backend: 'tpu' })).toThrow(RangeError);
    // refused before anything is allocated, with the estimate and the machine's memory
    expect(() => new E({ replicas: 100000, widths: [10000, 10000] })).toThrow(/100000 replicas of 100010000 parameters need at least 120012\.0 GB .*this machine has \d/);
    try {
      new E({ replicas: 100000, widths: [10000, 10000] });
    } catch (err) {
      expect((err as { code?: string }).code).toBe('BSX_TOO_LARGE');
    }
  });

  it('methods reject wrong types, shapes, indices and values', async () => {
    expect(() => nat.init!([1, 2, 3])).toThrow(TypeError);
    expect(() => nat.init!(new Float64Array(2))).toThrow(RangeError);
    expect(() => nat.init!(new Float64Array([1, -1, 2]))).toThrow(RangeError);
    expect(() => nat.forward!(ds, new Int32Array(R * 2), 3)).toThrow(RangeError);
    expect(() => nat.forward!(ds, new Int32Array(R * 2).fill(COUNT), 2)).toThrow(/outside the dataset/);
    expect(() => nat.forward!(ds, new Int32Array(R * 2).fill(-1), 2)).toThrow(RangeError);
    expect(() => nat.forward!({}, new Int32Array(R * 2), 2)).toThrow(TypeError);
    expect(() => nat.forward!(ds, new Float32Array(R * 2), 2)).toThrow(TypeError);
    expect(() => nat.gradients!(ds, new Int32Array(R * 2), 0)).toThrow(RangeError);
    expect(() => nat.getTensor!('param', 6)).toThrow(RangeError);
    expect(() => nat.getTensor!('weights', 0)).toThrow(RangeError);
    expect(() => nat.setTensor!('param', 0, new Float32Array(3))).toThrow(RangeError);
    expect(() => nat.setTensor!('param', 0, new Float64Array(R * 35))).toThrow(TypeError);
    expect(() => nat.setOptimizer!('sgd')).toThrow(TypeError);
    expect(() => nat.setOptimizer!({ name: 'rmsprop' })).toThrow(/unknown optimizer 'rmsprop' \(known: sgd, adam, adamw\)/);
    expect(() => nat.setOptimizer!({ name: 'adam', beta1: 1.5 })).toThrow(RangeError);
    expect(() => nat.setOptimizer!({ name: 'adam', beta1: '0.5' })).toThrow(TypeError);
    expect(() => nat.setOptimizer!({ name: 'adam', momentum: 0.9 })).toThrow(/adam has no hyperparameter 'momentum'/);
    expect(() => nat.setOptimizer!({ name: 'sgd', nesterov: 1 })).toThrow(TypeError);
    expect(() => nat.setOptimizer!({ name: 'sgd', momentum: [0.9, 0.9] })).toThrow(/one value per replica \(3\)/);
    expect(() => nat.setOptimizer!({ name: 'sgd', momentum: [0.9, 0.5, -1] })).toThrow(/momentum of replica 2 must be in \[0, 1\)/);
    expect(() => nat.setOptimizer!({ name: 'sgd', nesterov: true })).toThrow(/nesterov needs momentum > 0/);
    expect(() => nat.train!(ds, new Int32Array(R * 4), 4, 2, new Float32Array([0.1, 0, 0.1]))).toThrow(RangeError);
    expect(() => nat.train!(ds, new Int32Array(R * 4), 4, 2, new Float32Array(2))).toThrow(RangeError);
    expect(() => nat.train!(ds, new Int32Array(R * 4), 5, 2, new Float32Array(R).fill(0.1))).toThrow(RangeError);
    expect(() => nat.evaluate!(ds, 0, COUNT + 1)).toThrow(RangeError);
    const other = makeData(5, 6, 3);
    expect(() => nat.forward!(other.native, new Int32Array(R), 1)).toThrow(/features/);
  });

  it('a call while train() runs is refused, not raced', async () => {
    const e = makeEnsemble();
    const p = e.train(data, batchIndices(8, 0), { batchSize: 2, lr: 0.1 });
    expect(() => e.getTensor(0)).toThrow(/busy/);
    await p;
    expect(e.getTensor(0).size).toBe(R * 35);
  });

  it('dispose frees the engine: later calls throw BSX_DISPOSED, a call in flight still completes', async () => {
    const e = makeEnsemble();
    const p = e.train(data, batchIndices(8, 0), { batchSize: 2, lr: 0.1 });
    e.dispose();
    expect(e.disposed).toBe(true);
    const loss = await p; // the engine stays alive until the running call ends
    expect(loss.every((v) => Number.isFinite(v))).toBe(true);
    for (const call of [() => e.getTensor(0), () => e.snapshot(), () => e.setOptimizer('adam'), () => e.stats(), () => e.parameterCount]) {
      expect(call).toThrow(/Ensemble\.\w+: the ensemble has been disposed/);
      try {
        call();
      } catch (err) {
        expect((err as { code?: string }).code).toBe('BSX_DISPOSED');
      }
    }
    await expect(e.train(data, batchIndices(2, 0), { batchSize: 2, lr: 0.1 })).rejects.toMatchObject({ code: 'BSX_DISPOSED' });
    e.dispose(); // idempotent
    const d = makeData(12, 7, 3);
    const f = makeEnsemble();
    const q = f.evaluate(d);
    d.dispose();
    await q;
    await expect(f.evaluate(d)).rejects.toMatchObject({ code: 'BSX_DISPOSED' });
    let kept: Ensemble | undefined;
    {
      using g = makeEnsemble();
      expect(g.disposed).toBe(false);
      kept = g;
    }
    expect(kept.disposed).toBe(true);
  });

  it('stats and snapshot reads need a snapshot', () => {
    const e = new Ensemble({ replicas: 1, widths: [3, 2] });
    expect(() => e.stats()).toThrow(/snapshot/);
    expect(() => e.getTensor(0, 'snapshot')).toThrow(/snapshot/);
  });
});

describe('the fused small-batch SGD path (b <= 4 by default, kernels up to 8)', () => {
  // Widths with whole vectors and tails on every SIMD path (37 = 2x16 + 5, 300 = 18x16 + 12),
  // and a 300x260 layer large enough to be cut across threads.
  const SB_WIDTHS = [37, 300, 260, 10];
  const SB_COUNT = 64;
  const rnd = lcg(5);
  const sbFeatures = new Float32Array(SB_COUNT * SB_WIDTHS[0]!).map(() => rnd() * 2 - 1);
  const sbLabels = new Uint8Array(SB_COUNT).map(() => Math.floor(rnd() * 10));
  const sbData = Dataset.fromArrays(sbFeatures, sbLabels, { dim: SB_WIDTHS[0]!, classes: 10, name: 'synthetic-sb' });
  const gemm = binding().gemm;
  const defaultPath = gemm.simdPath();
  const defaultThreads = gemm.threads();

  function restore(): void {
    gemm.setSimdPath(defaultPath);
    gemm.setThreads(defaultThreads);
    gemm.setSmallBatchMax(-1);
  }

  function sbEnsemble(replicas: number): Ensemble {
    const ens = new Ensemble({ replicas, widths: SB_WIDTHS });
    ens.init(Array.from({ length: replicas }, (_, r) => 100 + r));
    const r2 = lcg(17);
    for (let l = 0; l < 3; l++) ens.setTensor(2 * l + 1, ens.getTensor(2 * l + 1).data.map(() => (r2() - 0.5) * 0.2));
    ens.setOptimizer('sgd');
    return ens;
  }

  function sbIndices(replicas: number, n: number, salt: number): Int32Array {
    const idx = new Int32Array(replicas * n);
    for (let r = 0; r < replicas; r++) for (let i = 0; i < n; i++) idx[r * n + i] = (13 * i + 5 * r + salt) % SB_COUNT;
    return idx;
  }

  it('matches the float64 reference at b = 1..8 on every SIMD path (last step short)', async () => {
    try {
      expect(gemm.smallBatchMax()).toBe(4);
      gemm.setSmallBatchMax(8); // every instantiated kernel, beyond the default's b <= 4
      for (const path of gemm.availableSimdPaths()) {
        gemm.setSimdPath(path);
        for (const b of [1, 2, 3, 5, 8]) {
          const replicas = 2;
          const n = 2 * b + Math.max(1, b - 1); // three steps, the last one short when b > 1
          const lr = [0.05, 0.1];
          const ens = sbEnsemble(replicas);
          const refs = Array.from({ length: replicas }, (_, r) => refParams(ens, r));
          const idx = sbIndices(replicas, n, b);
          const loss = await ens.train(sbData, idx, { batchSize: b, lr });
          for (let r = 0; r < replicas; r++) {
            let sum = 0;
            for (let off = 0; off < n; off += b) {
              const ids = Array.from(idx.subarray(r * n + off, r * n + Math.min(n, off + b)));
              sum += refStep(SB_WIDTHS, refs[r]!, rowsOf(sbData, sbFeatures, ids), ids.map((i) => sbLabels[i]!), lr[r]!) * ids.length;
            }
            expect(loss[r], `${path} b=${b} loss r${r}`).toBeCloseTo(sum / n, 5);
            const got = refParams(ens, r);
            for (let l = 0; l < 3; l++) {
              expectClose(got.W[l]!, refs[r]!.W[l]!, 1e-6, 1e-4, `${path} b=${b} W${l} r${r}`);
              expectClose(got.b[l]!, refs[r]!.b[l]!, 1e-6, 1e-4, `${path} b=${b} b${l} r${r}`);
            }
          }
          expect(Array.from(ens.optimizerSteps())).toEqual([3, 3]);
        }
      }
    } finally {
      restore();
    }
  });

  it('matches the float64 reference at wide layers (1025 and 784 inputs, every lane tail)', async () => {
    const widths = [1025, 784, 10];
    const count = 24;
    const r3 = lcg(23);
    const feats = new Float32Array(count * widths[0]!).map(() => r3() * 2 - 1);
    const labels = new Uint8Array(count).map(() => Math.floor(r3() * 10));
    const ds = Dataset.fromArrays(feats, labels, { dim: widths[0]!, classes: 10, name: 'synthetic-wide' });
    try {
      gemm.setSmallBatchMax(8);
      for (const b of [1, 4, 8]) {
        const ens = new Ensemble({ replicas: 1, widths });
        ens.init([3]);
        ens.setOptimizer('sgd');
        const ref = refParams(ens, 0);
        const n = 2 * b + 1;
        const idx = Int32Array.from({ length: n }, (_, i) => (5 * i + b) % count);
        const loss = await ens.train(ds, idx, { batchSize: b, lr: 0.05 });
        let sum = 0;
        for (let off = 0; off < n; off += b) {
          const ids = Array.from(idx.subarray(off, Math.min(n, off + b)));
          sum += refStep(widths, ref, rowsOf(ds, feats, ids), ids.map((i) => labels[i]!), 0.05) * ids.length;
        }
        expect(loss[0], `b=${b} loss`).toBeCloseTo(sum / n, 5);
        const got = refParams(ens, 0);
        for (let l = 0; l < 2; l++) {
          expectClose(got.W[l]!, ref.W[l]!, 1e-6, 1e-4, `wide b=${b} W${l}`);
          expectClose(got.b[l]!, ref.b[l]!, 1e-6, 1e-4, `wide b=${b} b${l}`);
        }
      }
    } finally {
      restore();
    }
  });

  it('equals the GEMM path to float rounding, and is bit-identical on 1 and 2 threads', async () => {
    try {
      // one replica runs on one thread; three: threads take whole replicas
      const run = async (smallMax: number, threads: number, b: number, replicas: number): Promise<{ loss: Float64Array; params: Float32Array[] }> => {
        gemm.setSmallBatchMax(smallMax);
        gemm.setThreads(threads);
        const ens = sbEnsemble(replicas);
        const loss = await ens.train(sbData, sbIndices(replicas, 6 * b + 1, 2), { batchSize: b, lr: 0.1 });
        return { loss, params: ens.parameters().map((t) => Float32Array.from(t.data)) };
      };
      for (const [b, replicas] of [[1, 1], [4, 1], [8, 1], [1, 3], [5, 3]] as const) {
        const fused1 = await run(8, 1, b, replicas);
        const fused2 = await run(8, 2, b, replicas);
        const viaGemm = await run(0, 2, b, replicas);
        fused1.params.forEach((p, t) => expect(Array.from(fused2.params[t]!), `b=${b} tensor ${t}`).toEqual(Array.from(p)));
        expect(Array.from(fused2.loss)).toEqual(Array.from(fused1.loss));
        fused1.params.forEach((p, t) => expectClose(p, viaGemm.params[t]!, 1e-6, 1e-4, `b=${b} fused vs GEMM tensor ${t}`));
        fused1.loss.forEach((v, r) => expect(v).toBeCloseTo(viaGemm.loss[r]!, 5));
      }
    } finally {
      restore();
    }
  });

  it('gradient trials: the same statistics, histograms and S as through the GEMMs', async () => {
    try {
      const edges = Array.from({ length: 41 }, (_, i) => -0.2 + (0.4 * i) / 40);
      const trial = async (smallMax: number, b: number) => {
        gemm.setSmallBatchMax(smallMax);
        const ens = sbEnsemble(3);
        ens.snapshot();
        return ens.gradTrials(sbData, sbIndices(3, 4 * b + 1, 7), { batchSize: b, lr: 0.1, edgesMean: edges, edgesSum: edges, exportS: true });
      };
      for (const b of [1, 3, 8]) {
        const fused = await trial(8, b);
        const viaGemm = await trial(0, b);
        expect(fused.stats.steps).toEqual(viaGemm.stats.steps);
        for (const key of ['sumNormMean', 'sumNormSum', 'stepNormMean', 'stepNormSum', 'firstStepNorm2'] as const) {
          expectClose(fused.stats[key], viaGemm.stats[key], 1e-7, 1e-5, `b=${b} ${key}`);
        }
        expectClose(fused.s!.data, viaGemm.s!.data, 1e-7, 1e-4, `b=${b} S`);
        // values may move across a bin edge by rounding: compare the totals and the counts to within a few
        const total = (h: ArrayLike<number>): number => Array.from(h).reduce((a, v) => a + v, 0);
        expect(total(fused.hist.mean)).toBe(total(viaGemm.hist.mean));
        const moved = Array.from(fused.hist.mean).reduce((a, v, i) => a + Math.abs(v - viaGemm.hist.mean[i]!), 0);
        expect(moved, `b=${b} histogram counts moved`).toBeLessThanOrEqual(4);
      }
    } finally {
      restore();
    }
  });

  it('setSmallBatchMax rejects values outside [-1, 8]', () => {
    expect(() => gemm.setSmallBatchMax(9)).toThrow(RangeError);
    expect(() => gemm.setSmallBatchMax(1.5)).toThrow(RangeError);
    expect(() => (gemm.setSmallBatchMax as (n: unknown) => void)('4')).toThrow(TypeError);
    expect(gemm.smallBatchMax()).toBe(4);
  });
});
