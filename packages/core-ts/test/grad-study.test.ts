// The gradient-competition trials against a float64 reference that runs them one step at a
// time; chunk-size invariance; histograms; the statistics (power-law fit, noise scale, t
// quantiles) on synthetic data with known answers.

import { describe, expect, it } from 'vitest';
import {
  Dataset,
  Ensemble,
  estimateNoiseScale,
  fitLine,
  fitPowerLaw,
  gradientStudy,
  histogram,
  quantile,
  signedLogEdges,
  summarize,
  tQuantile,
  trialSamples,
  uniformAt,
  type RegimeModel,
} from '../src/index.js';
import { cloneParams, refGradients, refStep, type RefParams } from './reference/mlp.js';

const WIDTHS = [7, 5, 4, 3];

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const COUNT = 60;
const rnd = lcg(5);
const FEATURES = new Float32Array(COUNT * 7).map(() => rnd() * 2 - 1);
const LABELS = new Uint8Array(COUNT).map(() => Math.floor(rnd() * 3));
const data = Dataset.fromArrays(FEATURES, LABELS, { dim: 7, classes: 3 });

function regime(): RegimeModel {
  const e = new Ensemble({ replicas: 1, widths: WIDTHS });
  e.init([42]);
  const r = lcg(9);
  const tensors = e.parameters().map((t, i) => (i % 2 === 1 ? t.data.map(() => (r() - 0.5) * 0.3) : t.data));
  return { name: 'test', code: 3, widths: WIDTHS, tensors };
}

function refOf(m: RegimeModel): RefParams {
  return {
    W: [0, 2, 4].map((t) => Float64Array.from(m.tensors[t]!)),
    b: [1, 3, 5].map((t) => Float64Array.from(m.tensors[t]!)),
  };
}

describe('gradient trials', () => {
  // every layer, on the fused small-batch path (b = 3) and through the GEMMs (b = 6)
  for (const [layer, b] of [[2, 3], [1, 3], [0, 3], [2, 6], [1, 6], [0, 6]] as const) {
    it(`match a float64 reference run one step at a time (statistics and histograms), layer ${layer}, b = ${b}`, async () => {
      const m = regime();
      const R = 3;
      const k = 10; // 4 steps of 3, the last one short; or 2 steps of 6, the last one short
      const lr = 0.2;
      const numel = WIDTHS[layer + 1]! * WIDTHS[layer]!;
      const ens = new Ensemble({ replicas: R, widths: WIDTHS });
      ens.init([0, 1, 2]);
      m.tensors.forEach((t, i) => ens.setTensorBroadcast(i, t, 'snapshot'));
      ens.resetToSnapshot();
      const idx = new Int32Array(R * k);
      for (let r = 0; r < R; r++) trialSamples(7, 3, b, r, COUNT, k, idx.subarray(r * k, (r + 1) * k));
      const edges = signedLogEdges(1e-4, 10, 4);
      const res = await ens.gradTrials(data, idx, { batchSize: b, lr, edgesMean: edges, edgesSum: edges, exportS: true, ...(layer !== 2 ? { layer } : {}) });
      expect([...res.stats.steps!]).toEqual(Array(res.stats.steps!.length).fill(Math.ceil(k / b)));
      expect(res.s!.shape).toEqual([R, WIDTHS[layer + 1], WIDTHS[layer]]);
      const allS: number[] = [];
      for (let r = 0; r < R; r++) {
        const p = cloneParams(refOf(m));
        const sMean = new Float64Array(numel);
        const sSum = new Float64Array(numel);
        let stepMean = 0;
        let stepSum = 0;
        let first = 0;
        let steps = 0;
        for (let off = 0; off < k; off += b) {
          const ids = Array.from(idx.subarray(r * k + off, r * k + Math.min(k, off + b)));
          const x = ids.map((i) => Float64Array.from(FEATURES.subarray(i * 7, i * 7 + 7)));
          const y = ids.map((i) => LABELS[i]!);
          const g = refGradients(WIDTHS, p, x, y).gW[layer]!;
          let n2 = 0;
          g.forEach((v, i) => {
            sMean[i] += v;
            sSum[i] += ids.length * v;
            n2 += v * v;
          });
          if (steps === 0) first = n2;
          stepMean += Math.sqrt(n2);
          stepSum += ids.length * Math.sqrt(n2);
          steps++;
          refStep(WIDTHS, p, x, y, lr);
        }
        const norm = (v: Float64Array): number => Math.sqrt(v.reduce((a, z) => a + z * z, 0));
        expect(res.stats.sumNormMean[r]).toBeCloseTo(norm(sMean), 5);
        expect(res.stats.sumNormSum[r]).toBeCloseTo(norm(sSum), 5);
        expect(res.stats.stepNormMean[r]).toBeCloseTo(stepMean / steps, 5);
        expect(res.stats.stepNormSum[r]).toBeCloseTo(stepSum / steps, 5);
        expect(res.stats.firstStepNorm2[r]).toBeCloseTo(first, 6);
        const exported = res.s!.slice0(r).data;
        exported.forEach((v, i) => expect(v).toBeCloseTo(sMean[i]!, 5));
        allS.push(...exported);
      }
      // the engine's counts equal a histogram of the exported values; everything is counted
      const h = histogram(allS, edges);
      expect(Array.from(res.hist.mean)).toEqual([h.underflow, ...h.counts, h.overflow, h.nan]);
      expect(res.hist.mean.reduce((a, v) => a + v, 0)).toBe(R * numel);
      expect(res.hist.sum.reduce((a, v) => a + v, 0)).toBe(R * numel);
    });
  }

  it('frozen (lr 0) match a float64 reference at the fixed weights, across forward blocks and a short last step', async () => {
    const m = regime();
    const R = 2;
    const k = 1030; // b = 3: forward blocks of 1023 rows (341 steps), then 7 rows (2 steps and 1 sample)
    const b = 3;
    const ens = new Ensemble({ replicas: R, widths: WIDTHS });
    ens.init([0, 1]);
    m.tensors.forEach((t, i) => ens.setTensorBroadcast(i, t, 'snapshot'));
    ens.resetToSnapshot();
    const r0 = lcg(77);
    const idx = new Int32Array(R * k).map(() => Math.floor(r0() * COUNT));
    const edges = signedLogEdges(1e-4, 10, 4);
    const stepsBefore = Array.from(ens.optimizerSteps());
    const res = await ens.gradTrials(data, idx, { batchSize: b, lr: 0, edgesMean: edges, edgesSum: edges, exportS: true });
    const steps = Math.ceil(k / b);
    expect([...res.stats.steps!]).toEqual([steps, steps]);
    expect(Array.from(ens.optimizerSteps(), (s, r) => s - stepsBefore[r]!)).toEqual([steps, steps]);
    // the weights did not move
    ens.parameters().forEach((t, i) => {
      for (let r = 0; r < R; r++) expect(Array.from(t.slice0(r).data)).toEqual(Array.from(m.tensors[i]!));
    });
    const p = refOf(m);
    const norm = (v: Float64Array): number => Math.sqrt(v.reduce((a, z) => a + z * z, 0));
    for (let r = 0; r < R; r++) {
      const sMean = new Float64Array(3 * 4);
      const sSum = new Float64Array(3 * 4);
      let stepMean = 0;
      let first = 0;
      for (let off = 0; off < k; off += b) {
        const ids = Array.from(idx.subarray(r * k + off, r * k + Math.min(k, off + b)));
        const x = ids.map((i) => Float64Array.from(FEATURES.subarray(i * 7, i * 7 + 7)));
        const g = refGradients(WIDTHS, p, x, ids.map((i) => LABELS[i]!)).gW[2]!;
        let n2 = 0;
        g.forEach((v, i) => {
          sMean[i] += v;
          sSum[i] += ids.length * v;
          n2 += v * v;
        });
        if (off === 0) first = n2;
        stepMean += Math.sqrt(n2);
      }
      expect(res.stats.sumNormMean[r]! / norm(sMean)).toBeCloseTo(1, 5);
      expect(res.stats.sumNormSum[r]! / norm(sSum)).toBeCloseTo(1, 5);
      expect(res.stats.stepNormMean[r]! / (stepMean / steps)).toBeCloseTo(1, 5);
      expect(res.stats.firstStepNorm2[r]! / first).toBeCloseTo(1, 5);
      res.s!.slice0(r).data.forEach((v, i) => expect(v).toBeCloseTo(sMean[i]!, 4));
    }
  });

  it('frozen (lr 0): |S| x b is the same for every b dividing 1024 on the same samples, and equals the first step of a moving trial at b = 1024', async () => {
    const widths = [784, 48, 24, 10];
    const R = 2;
    const n = 1024;
    const rx = lcg(11);
    const ds = Dataset.fromArrays(new Float32Array(300 * 784).map(() => rx() * 2 - 1), new Uint8Array(300).map(() => Math.floor(rx() * 10)), { dim: 784, classes: 10 });
    const ens = new Ensemble({ replicas: R, widths });
    ens.init([5, 6]);
    ens.snapshot();
    const idx = new Int32Array(R * n).map(() => Math.floor(rx() * 300));
    const edges = [-1e30, 1e30];
    const sums: number[][] = [];
    const exported: Float32Array[] = [];
    for (let b = 1; b <= n; b *= 2) {
      const res = await ens.gradTrials(ds, idx, { batchSize: b, lr: 0, edgesMean: edges, edgesSum: edges, exportS: true });
      sums.push([0, 1].flatMap((r) => [res.stats.sumNormMean[r]! * b, res.stats.sumNormSum[r]!]));
      exported.push(res.s!.data.map((v) => v * b));
    }
    expect(sums).toHaveLength(11);
    for (const row of sums) row.forEach((v, i) => expect(v / sums[0]![i]!).toBeCloseTo(1, 5));
    const scale = Math.max(...exported[0]!.map(Math.abs));
    for (const e of exported) e.forEach((v, i) => expect(Math.abs(v - exported[0]![i]!) / scale).toBeLessThan(1e-5));
    // one step of b = 1024: the frozen and the moving trial take it at the same weights
    const moving = await ens.gradTrials(ds, idx, { batchSize: 1024, lr: 0.1, edgesMean: edges, edgesSum: edges });
    [0, 1].forEach((r) => expect(moving.stats.sumNormSum[r]! / sums[0]![2 * r + 1]!).toBeCloseTo(1, 5));
  });

  it('give the same per-trial numbers for chunk sizes 1, 7 and all trials', async () => {
    const spec = { regime: regime(), batchSizes: [1, 3, 8], trials: 15, samplesPerTrial: 16, seed: 3, lr: 0.1 };
    const runs = await Promise.all([1, 7, 15].map((chunk) => gradientStudy(spec, data, { chunk })));
    for (const r of runs.slice(1)) {
      r.points.forEach((p, i) => {
        const q = runs[0]!.points[i]!;
        expect(p.b).toBe(q.b);
        p.perTrial.sumNormMean.forEach((v, t) => expect(v).toBeCloseTo(q.perTrial.sumNormMean[t]!, 6));
        p.perTrial.stepNormSum.forEach((v, t) => expect(v).toBeCloseTo(q.perTrial.stepNormSum[t]!, 6));
        expect(p.valueHist.mean.counts).toEqual(q.valueHist.mean.counts);
      });
    }
    const p0 = runs[0]!.points[0]!;
    const total = p0.valueHist.mean.counts.reduce((a, v) => a + v, 0) + p0.valueHist.mean.underflow + p0.valueHist.mean.overflow + p0.valueHist.mean.nan;
    expect(total).toBe(15 * 12);
    // the sum-reduced step norm is b times the mean-reduced one when b divides the samples
    const p8 = runs[0]!.points.find((p) => p.b === 8)!;
    p8.perTrial.stepNormSum.forEach((v, t) => expect(v).toBeCloseTo(8 * p8.perTrial.stepNormMean[t]!, 6));
    expect(runs[0]!.referenceB).toBe(8);
    expect(runs[0]!.points.find((p) => p.b === 8)!.scaled.mean.sumNorm.mean).toBeCloseTo(p8.mean.sumNorm.mean, 9);
  });

  it('trial samples are distinct, reproducible, and differ by trial, b and regime', () => {
    const a = trialSamples(1, 1, 64, 5, 60000, 1024);
    expect(new Set(a).size).toBe(1024);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThan(60000);
    expect(Array.from(trialSamples(1, 1, 64, 5, 60000, 1024))).toEqual(Array.from(a));
    expect(Array.from(trialSamples(1, 1, 64, 6, 60000, 1024))).not.toEqual(Array.from(a));
    expect(Array.from(trialSamples(1, 1, 32, 5, 60000, 1024))).not.toEqual(Array.from(a));
    expect(Array.from(trialSamples(1, 2, 64, 5, 60000, 1024))).not.toEqual(Array.from(a));
    expect(Array.from(trialSamples(1, 1, 1, 0, 5, 5)).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects bad study specs naming the field', async () => {
    await expect(gradientStudy({ regime: regime(), batchSizes: [0] }, data)).rejects.toThrow(/batchSizes\[0\]/);
    await expect(gradientStudy({ regime: regime(), trials: 1 }, data)).rejects.toThrow(/trials/);
    await expect(gradientStudy({ regime: regime(), batchSizes: [1], samplesPerTrial: 8, lr: -0.01 }, data)).rejects.toThrow(/lr must be a finite number >= 0/);
    await expect(gradientStudy({ regime: regime(), batchSizes: [1], samplesPerTrial: 100 }, data)).rejects.toThrow(/samplesPerTrial/);
    await expect(gradientStudy({ regime: { ...regime(), widths: [8, 5, 4, 3] }, batchSizes: [1], samplesPerTrial: 8 }, data)).rejects.toThrow(/regime/);
  });
});

/** Standard normal draws from Philox (Box-Muller). */
function gauss(seed: number, i: number, j: number): number {
  const u1 = Math.max(uniformAt(seed, i, j, 0x77, 0), 1e-300);
  const u2 = uniformAt(seed, i, j, 0x78, 0);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

describe('statistics', () => {
  it('quantiles follow numpy (linear interpolation), summaries are consistent', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6];
    expect(quantile(xs, 0.5)).toBe(3.5);
    expect(quantile(xs, 0.25)).toBe(1.75);
    expect(quantile(xs, 0.95)).toBeCloseTo(7.95, 12);
    const s = summarize(xs);
    expect(s.mean).toBe(3.875);
    expect(s.std).toBeCloseTo(Math.sqrt(52.875 / 7), 12);
  });

  it("Student's t quantiles match tables", () => {
    expect(tQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(tQuantile(0.975, 10)).toBeCloseTo(2.2281, 4);
    expect(tQuantile(0.975, 13)).toBeCloseTo(2.1604, 4);
    expect(tQuantile(0.975, 1000)).toBeCloseTo(1.9623, 4);
    expect(tQuantile(0.025, 5)).toBeCloseTo(-2.5706, 4);
  });

  it('a line fit recovers slope and intercept, with an interval that covers them', () => {
    const x = Array.from({ length: 50 }, (_, i) => i / 10);
    const y = x.map((v, i) => 2 - 0.7 * v + 0.05 * gauss(1, i, 0));
    const f = fitLine(x, y);
    expect(f.slope).toBeCloseTo(-0.7, 1);
    expect(f.slopeCi95[0]).toBeLessThan(-0.7);
    expect(f.slopeCi95[1]).toBeGreaterThan(-0.7);
    expect(f.interceptCi95[0]).toBeLessThan(2);
    expect(f.interceptCi95[1]).toBeGreaterThan(2);
  });

  it('the power-law fit recovers a known exponent; its 95% interval covers it ~95% of the time', () => {
    const bs = [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512, 1024];
    for (const k of [0.5, -1, 1]) {
      let covered = 0;
      const reps = 400;
      for (let rep = 0; rep < reps; rep++) {
        const y = bs.map((b, i) => 3 * b ** k * Math.exp(0.05 * gauss(2 + rep, i, Math.round(k * 10) + 50)));
        const f = fitPowerLaw(bs, y);
        if (f.exponentCi95[0] < k && f.exponentCi95[1] > k) covered++;
        expect(Math.abs(f.exponent - k)).toBeLessThan(0.05);
        expect(f.coefficient / 3).toBeGreaterThan(0.8);
        expect(f.coefficient / 3).toBeLessThan(1.25);
      }
      expect(covered / reps).toBeGreaterThan(0.92);
      expect(covered / reps).toBeLessThan(0.98);
    }
    expect(() => fitPowerLaw([1, 2, 3], [1, 0, 2])).toThrow(/> 0/);
  });

  it('B_simple recovers a known noise scale; its 95% interval covers it about 95% of the time', () => {
    // per-example gradients g = G + e, e ~ N(0, s2 I) in d dims: tr(Sigma) = d s2, B = d s2 / |G|^2
    const d = 40;
    const s2 = 0.25;
    const G = Array.from({ length: d }, (_, i) => (i % 2 === 0 ? 0.2 : -0.1));
    const g2 = G.reduce((a, v) => a + v * v, 0);
    const trueB = (d * s2) / g2;
    const reps = 40;
    let covered = 0;
    const estimates: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const groups = [1, 2, 4, 8, 16, 64].map((b) => ({
        b,
        norm2: Array.from({ length: 300 }, (_, t) => {
          // the mean of b examples: G + N(0, s2/b I)
          let n2 = 0;
          for (let j = 0; j < d; j++) n2 += (G[j]! + Math.sqrt(s2 / b) * gauss(3 + 7 * rep, t * d + j, b)) ** 2;
          return n2;
        }),
      }));
      const est = estimateNoiseScale(groups, { bootstrap: 100, seed: rep });
      estimates.push(est.bSimple);
      if (est.ci95[0] < trueB && est.ci95[1] > trueB) covered++;
      if (rep === 0) {
        expect(est.gradNorm2).toBeCloseTo(g2, 1);
        expect(est.traceCov).toBeCloseTo(d * s2, 0);
      }
    }
    const meanEst = estimates.reduce((a, v) => a + v, 0) / reps;
    expect(Math.abs(meanEst - trueB) / trueB).toBeLessThan(0.03);
    for (const e of estimates) expect(Math.abs(e - trueB) / trueB).toBeLessThan(0.15);
    expect(covered / reps).toBeGreaterThanOrEqual(0.85);
    expect(() => estimateNoiseScale([{ b: 1, norm2: [1, 2] }])).toThrow(/two or more/);
    // a batch of the whole population (x = 0: no noise left) is a valid point, not a division by zero
    const whole = estimateNoiseScale(
      [
        { b: 1, norm2: [3, 5, 4] },
        { b: 4, norm2: [1.6, 1.4, 1.5] },
        { b: 8, norm2: [1, 1, 1] },
      ],
      { populationSize: 8, bootstrap: 20 },
    );
    expect(Number.isFinite(whole.bSimple)).toBe(true);
    expect(whole.gradNorm2).toBeCloseTo(1, 1);
  });
});
