// The critical batch size measured directly (docs/findings.md, F15): the SGD steps a run takes
// to reach a target, counted from its per-epoch evaluations, and the fit of
// steps(b) = S_min (1 + B_crit / b) over batch sizes (McCandlish, Kaplan, Amodei et al., "An
// Empirical Model of Large-Batch Training", 2018, eq. 2.11; Shallue et al., "Measuring the
// Effects of Data Parallelism on Neural Network Training", 2019). With b well below B_crit the
// steps fall like 1/b (perfect scaling: the same number of samples); well above, they level off
// at S_min. The interval comes from a bootstrap that redraws each count within its bracket
// (the target is only seen at evaluations) and resamples the seeds.

import { uniformAt } from '../rng/philox.js';
import { quantile } from './descriptive.js';

/** A run's metric after each evaluation: cumulative SGD steps and the metric there. */
export interface MetricCurve {
  steps: readonly number[];
  values: readonly number[];
}

/** Where a curve first reaches a target. */
export interface TargetCrossing {
  /** Estimated steps: interpolated in log(steps) between the evaluations around the crossing. */
  steps: number;
  /** The crossing lies in (lo, hi]: the evaluation before it (0 for the first) and the one at it. */
  lo: number;
  hi: number;
  /** Index of the first evaluation at or past the target. */
  index: number;
}

/**
 * The steps at which the metric first reaches `target` (`above`: value >= target, e.g. an
 * accuracy; `below`: value <= target, e.g. a loss), or undefined when no evaluation does. A
 * NaN value (a diverged run) never reaches it. Between two evaluations the metric is taken as
 * linear in log(steps); before the first evaluation nothing is known, so a crossing there is
 * put at the geometric middle of (steps[0] / 2, steps[0]].
 */
export function stepsToTarget(curve: MetricCurve, target: number, direction: 'above' | 'below'): TargetCrossing | undefined {
  const { steps, values } = curve;
  if (steps.length !== values.length) throw new RangeError(`stepsToTarget: ${steps.length} step counts but ${values.length} values`);
  const reached = (v: number) => (direction === 'above' ? v >= target : v <= target);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || !reached(v)) continue;
    const hi = steps[i]!;
    if (i === 0) return { steps: hi / Math.SQRT2, lo: 0, hi, index: 0 };
    const lo = steps[i - 1]!;
    const u = values[i - 1]!;
    // u has not reached the target and v has: the fraction of the way from u to the target
    const f = Number.isFinite(u) && v !== u ? Math.min(1, Math.max(0, (target - u) / (v - u))) : 1;
    const at = f >= 1 ? hi : Math.exp(Math.log(lo) + f * (Math.log(hi) - Math.log(lo)));
    return { steps: at, lo, hi, index: i };
  }
  return undefined;
}

export interface CriticalBatchFit {
  /** S_min: the fewest steps, at an unbounded batch. */
  sMin: number;
  /** B_crit: the batch size at which twice S_min steps are needed. */
  bCrit: number;
  /** E_min = S_min B_crit: the fewest samples, at a batch of 1. */
  eMin: number;
  /** Root-mean-square residual of log(steps). */
  rmsLog: number;
  n: number;
}

/** log S_min that minimises the squared log residuals for a given B (closed form). */
function logSMinFor(points: readonly { b: number; steps: number }[], B: number): number {
  let s = 0;
  for (const p of points) s += Math.log(p.steps) - Math.log(1 + B / p.b);
  return s / points.length;
}

function sse(points: readonly { b: number; steps: number }[], B: number): number {
  const ls = logSMinFor(points, B);
  let e = 0;
  for (const p of points) e += (Math.log(p.steps) - ls - Math.log(1 + B / p.b)) ** 2;
  return e;
}

/**
 * Least squares of log(steps) against log(S_min (1 + B_crit / b)): S_min in closed form for each
 * B_crit, B_crit by a grid over log B then golden-section search, within [b_min / 1000,
 * b_max * 1000] (a fit at an end of that range means the data do not show the knee).
 */
export function fitCriticalBatch(points: readonly { b: number; steps: number }[]): CriticalBatchFit {
  const usable = points.filter((p) => p.b > 0 && p.steps > 0 && Number.isFinite(p.steps));
  if (new Set(usable.map((p) => p.b)).size < 2) throw new RangeError('fitCriticalBatch: need steps at two or more batch sizes');
  const bs = usable.map((p) => p.b);
  const lo = Math.log(Math.min(...bs) / 1000);
  const hi = Math.log(Math.max(...bs) * 1000);
  const f = (x: number) => sse(usable, Math.exp(x));
  // a coarse grid first (the error need not be unimodal far from the data), then refine
  const grid = 200;
  let best = lo;
  for (let i = 0; i <= grid; i++) {
    const x = lo + ((hi - lo) * i) / grid;
    if (f(x) < f(best)) best = x;
  }
  let a = Math.max(lo, best - (hi - lo) / grid);
  let c = Math.min(hi, best + (hi - lo) / grid);
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = c - g * (c - a);
  let x2 = a + g * (c - a);
  for (let i = 0; i < 100 && c - a > 1e-10; i++) {
    if (f(x1) <= f(x2)) {
      c = x2;
      x2 = x1;
      x1 = c - g * (c - a);
    } else {
      a = x1;
      x1 = x2;
      x2 = a + g * (c - a);
    }
  }
  const B = Math.exp((a + c) / 2);
  const sMin = Math.exp(logSMinFor(usable, B));
  return { sMin, bCrit: B, eMin: sMin * B, rmsLog: Math.sqrt(sse(usable, B) / usable.length), n: usable.length };
}

/** Steps to a target of one seed at one (batch size, learning rate), with its bracket. */
export interface SeedCrossing {
  steps: number;
  lo: number;
  hi: number;
}

/** The runs of one batch size: per learning rate, per seed, the crossing (undefined: not reached). */
export interface BatchRuns {
  b: number;
  byLr: { lr: number; seeds: (SeedCrossing | undefined)[] }[];
}

/**
 * Steps of a batch size at its best learning rate: per learning rate the geometric mean over
 * the seeds (a learning rate with a seed that never reached the target counts as not reaching
 * it), then the fewest. Undefined when no learning rate reaches the target with every seed.
 */
export function bestSteps(runs: BatchRuns, pick: (c: SeedCrossing) => number = (c) => c.steps): { lr: number; steps: number } | undefined {
  let best: { lr: number; steps: number } | undefined;
  for (const { lr, seeds } of runs.byLr) {
    if (seeds.length === 0 || seeds.some((s) => s === undefined)) continue;
    const g = Math.exp(seeds.reduce((a, s) => a + Math.log(pick(s!)), 0) / seeds.length);
    if (!best || g < best.steps) best = { lr, steps: g };
  }
  return best;
}

/**
 * A 95% interval of B_crit: each replicate resamples the seeds of every (batch size, learning
 * rate) with replacement and redraws each seed's count log-uniformly within its bracket (for a
 * crossing at the first evaluation, from half of it), then picks the best learning rate and
 * fits again.
 */
export function criticalBatchInterval(runs: readonly BatchRuns[], opts: { bootstrap?: number; seed?: number } = {}): [number, number] {
  const reps = opts.bootstrap ?? 200;
  const seed = opts.seed ?? 0;
  const out: number[] = [];
  for (let k = 0; k < reps; k++) {
    let draw = 0;
    const u = () => uniformAt(seed, draw++, k, 0x4100, 0);
    const points: { b: number; steps: number }[] = [];
    for (const r of runs) {
      const resampled: BatchRuns = {
        b: r.b,
        byLr: r.byLr.map(({ lr, seeds }) => ({
          lr,
          seeds: seeds.map(() => {
            const s = seeds[Math.floor(u() * seeds.length)];
            if (!s) return undefined;
            const lo = Math.max(s.lo, s.hi / 2);
            return { steps: Math.exp(Math.log(lo) + u() * (Math.log(s.hi) - Math.log(lo))), lo: s.lo, hi: s.hi };
          }),
        })),
      };
      const best = bestSteps(resampled);
      if (best) points.push({ b: r.b, steps: best.steps });
    }
    if (new Set(points.map((p) => p.b)).size >= 2) out.push(fitCriticalBatch(points).bCrit);
  }
  return out.length > 0 ? [quantile(out, 0.025), quantile(out, 0.975)] : [Number.NaN, Number.NaN];
}
