// The statistics behind the findings beyond the study, on synthetic data with known answers:
// F13's noise model (|G|^2, tr(Sigma) and B_simple recovered from simulated batches of a finite
// population of per-sample gradients, and its predicted step norms against simulated ones), and
// F15's steps-to-target count and fit of steps(b) = S_min (1 + B_crit / b).

import { describe, expect, it } from 'vitest';
import { estimateNoiseScale, uniformAt } from '../src/index.js';
import {
  bestSteps,
  criticalBatchInterval,
  fitCriticalBatch,
  stepsToTarget,
  type BatchRuns,
} from '../src/stats/critical-batch.js';
import { crossoverBatch, expectedNorm2, localExponent, predictedStepNorm } from '../src/stats/noise-model.js';

/** Standard normal draws from Philox (Box-Muller). */
function gauss(seed: number, i: number, j: number): number {
  const u1 = Math.max(uniformAt(seed, i, j, 0x91, 0), 1e-300);
  const u2 = uniformAt(seed, i, j, 0x92, 0);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

describe('F13: the noise model of a step', () => {
  // A population of N per-sample gradients in d dimensions: g_s = G + e_s, the e_s centred
  // exactly, with unequal variances per dimension. G and Sigma (divisor N) are computed from it.
  const N = 2000;
  const d = 64;
  const G = Array.from({ length: d }, (_, j) => (j % 3 === 0 ? 0.1 : -0.04));
  const scale = Array.from({ length: d }, (_, j) => 0.5 + (j % 4) * 0.4);
  const e = Array.from({ length: N }, (_, s) => scale.map((c, j) => c * gauss(1, s, j)));
  for (let j = 0; j < d; j++) {
    const m = e.reduce((a, v) => a + v[j]!, 0) / N;
    e.forEach((v) => (v[j]! -= m));
  }
  const pop = e.map((v) => v.map((x, j) => G[j]! + x));
  const g2 = G.reduce((a, v) => a + v * v, 0);
  const tr = e.reduce((a, v) => a + v.reduce((b, x) => b + x * x, 0), 0) / N;
  const trueB = tr / g2;
  const sizes = [1, 4, 16, 64, 256, 1024];
  const trials = 300;

  /** Per b, per trial: the batch-mean gradient of b samples drawn without replacement. */
  const batches = sizes.map((b) =>
    Array.from({ length: trials }, (_, t) => {
      // partial Fisher-Yates over the population
      const idx = Array.from({ length: N }, (_, i) => i);
      const g = new Float64Array(d);
      for (let i = 0; i < b; i++) {
        const k = i + Math.floor(uniformAt(7, i, t, b, 0) * (N - i));
        [idx[i], idx[k]] = [idx[k]!, idx[i]!];
        pop[idx[i]!]!.forEach((x, j) => (g[j] += x / b));
      }
      return g;
    }),
  );
  const norm2 = (g: Float64Array) => g.reduce((a, x) => a + x * x, 0);

  it('recovers |G|^2, tr(Sigma) and B_simple from batches of a finite population, each within its interval', () => {
    // the sizes straddle B_simple and the crossover
    expect(trueB).toBeGreaterThan(200);
    expect(crossoverBatch({ gradNorm2: g2, traceCov: tr, populationSize: N })).toBeLessThan(1024);
    const est = estimateNoiseScale(
      sizes.map((b, i) => ({ b, norm2: batches[i]!.map(norm2) })),
      { populationSize: N, bootstrap: 200, seed: 3 },
    );
    expect(Math.abs(est.gradNorm2 / g2 - 1)).toBeLessThan(0.05);
    expect(Math.abs(est.traceCov / tr - 1)).toBeLessThan(0.05);
    expect(Math.abs(est.bSimple / trueB - 1)).toBeLessThan(0.08);
    expect(est.gradNorm2Ci95[0]).toBeLessThan(g2);
    expect(est.gradNorm2Ci95[1]).toBeGreaterThan(g2);
    expect(est.traceCovCi95[0]).toBeLessThan(tr);
    expect(est.traceCovCi95[1]).toBeGreaterThan(tr);
    expect(est.ci95[0]).toBeLessThan(trueB);
    expect(est.ci95[1]).toBeGreaterThan(trueB);
    // the intervals are intervals of the estimate, not of anything wider
    expect(est.gradNorm2Ci95[1] - est.gradNorm2Ci95[0]).toBeLessThan(0.2 * g2);
    expect(est.traceCovCi95[1] - est.traceCovCi95[0]).toBeLessThan(0.2 * tr);
  });

  it("the predicted step norm matches the simulated mean norm of batch-sum and batch-mean steps at every b", () => {
    const est = estimateNoiseScale(sizes.map((b, i) => ({ b, norm2: batches[i]!.map(norm2) })), { populationSize: N, bootstrap: 20 });
    sizes.forEach((b, i) => {
      const simMean = batches[i]!.reduce((a, g) => a + Math.sqrt(norm2(g)), 0) / trials;
      expect(Math.abs(predictedStepNorm(est, b, 'mean') / simMean - 1), `b=${b}`).toBeLessThan(0.03);
      expect(Math.abs(predictedStepNorm(est, b, 'sum') / (b * simMean) - 1), `b=${b}`).toBeLessThan(0.03);
    });
    // exactly the law with the true parameters (finite-population factor included)
    const truth = { gradNorm2: g2, traceCov: tr, populationSize: N };
    expect(expectedNorm2(truth, 1000, 'mean')).toBeCloseTo(g2 + (tr * (N - 1000)) / (1000 * (N - 1)), 12);
    expect(expectedNorm2(truth, N, 'sum')).toBeCloseTo(N * N * g2, 6); // the whole population: no noise left
  });

  it('the local exponent of the batch-sum step is 1/2 below B_simple, 1 above, 3/4 at the crossover', () => {
    const m = { gradNorm2: 0.01, traceCov: 5 }; // B_simple 500, no finite population
    expect(localExponent(m, 1)).toBeCloseTo(0.5, 2);
    expect(localExponent(m, 1e6)).toBeCloseTo(1, 2);
    expect(crossoverBatch(m)).toBeCloseTo(500, 9);
    expect(localExponent(m, crossoverBatch(m))).toBeCloseTo(0.75, 12);
    expect(localExponent(m, 100, 'mean')).toBeCloseTo(localExponent(m, 100) - 1, 12);
    // numerically: d log sqrt(E) / d log b
    const h = 1e-4;
    for (const b of [3, 500, 7000]) {
      const num = (Math.log(predictedStepNorm(m, b * Math.exp(h), 'sum')) - Math.log(predictedStepNorm(m, b * Math.exp(-h), 'sum'))) / (2 * h);
      expect(localExponent(m, b)).toBeCloseTo(num, 6);
    }
    // with a population of N the crossover moves up: B N / (N - 1 - B), and none when B >= N - 1
    const f = { ...m, populationSize: 2000 };
    expect(crossoverBatch(f)).toBeCloseTo((500 * 2000) / 1499, 9);
    expect(localExponent(f, crossoverBatch(f))).toBeCloseTo(0.75, 12);
    expect(crossoverBatch({ ...m, populationSize: 400 })).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('F15: steps to a target and the critical batch size', () => {
  // steps(b) = S_min (1 + B / b), N samples per epoch; a metric linear in log(steps) that
  // reaches the target exactly at steps(b)
  const S_MIN = 50;
  const B = 300;
  const N = 4096;
  const steps = (b: number) => S_MIN * (1 + B / b);
  const sizes = [8, 32, 128, 512, 2048];
  const curve = (b: number, s: number, epochs: number, direction: 'above' | 'below') => {
    const spe = Math.ceil(N / b);
    const xs = Array.from({ length: epochs }, (_, e) => (e + 1) * spe);
    const sign = direction === 'above' ? 1 : -1;
    return { steps: xs, values: xs.map((x) => 0.95 + sign * 0.02 * Math.log(x / s)) };
  };

  it('counts the steps to a target: exact for a log-linear curve, inside its bracket; first evaluation, never, NaN, losses', () => {
    for (const b of sizes) {
      const c = stepsToTarget(curve(b, steps(b), 40, 'above'), 0.95, 'above')!;
      expect(c.steps / steps(b)).toBeCloseTo(1, 10);
      expect(c.lo).toBeLessThan(steps(b));
      expect(c.hi).toBeGreaterThanOrEqual(steps(b));
      expect(c.hi - c.lo).toBe(Math.ceil(N / b));
      const l = stepsToTarget(curve(b, steps(b), 40, 'below'), 0.95, 'below')!;
      expect(l.steps / steps(b)).toBeCloseTo(1, 10);
    }
    // reached at the first evaluation: nothing is known before it
    expect(stepsToTarget({ steps: [100, 200], values: [0.96, 0.97] }, 0.95, 'above')).toEqual({ steps: 100 / Math.SQRT2, lo: 0, hi: 100, index: 0 });
    expect(stepsToTarget({ steps: [100, 200], values: [0.9, 0.94] }, 0.95, 'above')).toBeUndefined();
    // a diverged run (NaN) never reaches a target, and a NaN before the crossing is not interpolated from
    expect(stepsToTarget({ steps: [100, 200], values: [Number.NaN, Number.NaN] }, 0.5, 'below')).toBeUndefined();
    expect(stepsToTarget({ steps: [100, 200], values: [Number.NaN, 0.96] }, 0.95, 'above')).toEqual({ steps: 200, lo: 100, hi: 200, index: 1 });
  });

  it('fits S_min and B_crit of a synthetic steps(b) with a known knee, with and without noise', () => {
    const exact = fitCriticalBatch(sizes.map((b) => ({ b, steps: steps(b) })));
    expect(exact.bCrit).toBeCloseTo(B, 4);
    expect(exact.sMin).toBeCloseTo(S_MIN, 5);
    expect(exact.eMin).toBeCloseTo(S_MIN * B, 2);
    expect(exact.rmsLog).toBeLessThan(1e-8);
    // 8% multiplicative noise: still near the knee
    const noisy = fitCriticalBatch(sizes.map((b, i) => ({ b, steps: steps(b) * Math.exp(0.08 * gauss(5, i, 0)) })));
    expect(noisy.bCrit / B).toBeGreaterThan(0.6);
    expect(noisy.bCrit / B).toBeLessThan(1.6);
    expect(() => fitCriticalBatch([{ b: 8, steps: 100 }])).toThrow(/two or more/);
  });

  it('picks the best learning rate per batch size, and the interval of B_crit covers the knee', () => {
    // three lrs: the best reaches the target at steps(b), another at 1.5x, a third never
    const runs: BatchRuns[] = sizes.map((b) => {
      const seedCrossings = (factor: number, seed: number) => {
        const c = stepsToTarget(curve(b, steps(b) * factor * Math.exp(0.05 * gauss(9, b, seed)), 60, 'above'), 0.95, 'above')!;
        return { steps: c.steps, lo: c.lo, hi: c.hi };
      };
      return {
        b,
        byLr: [
          { lr: 0.1, seeds: [seedCrossings(1.5, 0), seedCrossings(1.5, 1)] },
          { lr: 0.2, seeds: [seedCrossings(1, 2), seedCrossings(1, 3)] },
          { lr: 0.4, seeds: [undefined, undefined] },
        ],
      };
    });
    for (const r of runs) {
      const best = bestSteps(r)!;
      expect(best.lr).toBe(0.2);
      expect(best.steps / steps(r.b)).toBeGreaterThan(0.85);
      expect(best.steps / steps(r.b)).toBeLessThan(1.15);
    }
    expect(bestSteps({ b: 8, byLr: [{ lr: 0.1, seeds: [undefined] }] })).toBeUndefined();
    // a learning rate counts only when every seed reaches the target
    const half = { steps: 10, lo: 8, hi: 12 };
    expect(bestSteps({ b: 8, byLr: [{ lr: 0.1, seeds: [{ steps: 40, lo: 30, hi: 50 }] }, { lr: 0.4, seeds: [half, undefined] }] })).toEqual({ lr: 0.1, steps: 40 });
    const ci = criticalBatchInterval(runs, { bootstrap: 200, seed: 1 });
    expect(ci[0]).toBeLessThan(B);
    expect(ci[1]).toBeGreaterThan(B);
    expect(ci[1] / ci[0]).toBeLessThan(4);
  });
});
