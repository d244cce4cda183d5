// The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish, Kaplan, Amodei et
// al., "An Empirical Model of Large-Batch Training", 2018, eq. 2.8): G the full-batch gradient,
// Sigma the covariance of per-example gradients. For the mean gradient of b examples drawn
// without replacement from N, E|g_b|^2 = |G|^2 + tr(Sigma) (N - b) / (b (N - 1)); a least-squares
// line through (x_b, |g_b|^2) over all trials and batch sizes gives |G|^2 (intercept) and
// tr(Sigma) (slope), weighted for the larger spread of small batches. The interval comes
// from a bootstrap over trials within each batch size.

import { uniformAt } from '../rng/philox.js';
import { quantile } from './descriptive.js';

export interface NoiseScaleGroup {
  b: number;
  /** |g_b|^2 of independent batches of size b, all at the same weights. */
  norm2: ArrayLike<number>;
}

export interface NoiseScaleEstimate {
  bSimple: number;
  /** 95% bootstrap percentile interval. */
  ci95: [number, number];
  /** |G|^2, the squared norm of the full-batch gradient. */
  gradNorm2: number;
  /** Its 95% bootstrap percentile interval. */
  gradNorm2Ci95: [number, number];
  /** tr(Sigma), the trace of the per-example gradient covariance. */
  traceCov: number;
  /** Its 95% bootstrap percentile interval. */
  traceCovCi95: [number, number];
  bootstrap: number;
  populationSize?: number;
}

function xOf(b: number, population?: number): number {
  return population === undefined ? 1 / b : (population - b) / (b * (population - 1));
}

/**
 * Weighted least squares through the group means (x_b, mean |g_b|^2), weights n_b b^2: for
 * small batches the variance of |g_b|^2 is dominated by the noise term, ~ 1/b^2, and an
 * unweighted fit would let those batch sizes swamp the intercept |G|^2. The weights depend
 * on b alone (not on the sample variances), so the fit stays unbiased.
 */
function estimate(groups: { b: number; v: ArrayLike<number> }[], population?: number): { g2: number; tr: number } {
  let sw = 0;
  let swx = 0;
  let swy = 0;
  let swxx = 0;
  let swxy = 0;
  for (const g of groups) {
    const n = g.v.length;
    let m = 0;
    for (let i = 0; i < n; i++) m += g.v[i]! / n;
    const x = xOf(g.b, population);
    const w = n * g.b * g.b; // finite also where b is the whole population (x = 0)
    sw += w;
    swx += w * x;
    swy += w * m;
    swxx += w * x * x;
    swxy += w * x * m;
  }
  const det = sw * swxx - swx * swx;
  if (!(det > 0)) throw new RangeError('estimateNoiseScale: the batch sizes do not separate (need two or more distinct b)');
  const tr = (sw * swxy - swx * swy) / det;
  const g2 = (swy - tr * swx) / sw;
  return { g2, tr };
}

export function estimateNoiseScale(
  groups: readonly NoiseScaleGroup[],
  opts: { populationSize?: number; bootstrap?: number; seed?: number } = {},
): NoiseScaleEstimate {
  const usable = groups.filter((g) => g.norm2.length > 0);
  if (new Set(usable.map((g) => g.b)).size < 2) {
    throw new RangeError('estimateNoiseScale: need trials at two or more batch sizes');
  }
  const population = opts.populationSize;
  const { g2, tr } = estimate(usable.map((g) => ({ b: g.b, v: g.norm2 })), population);
  const reps = opts.bootstrap ?? 200;
  const seed = opts.seed ?? 0;
  const boots: number[] = [];
  const bootG2: number[] = [];
  const bootTr: number[] = [];
  for (let k = 0; k < reps; k++) {
    const resampled = usable.map((g, gi) => {
      const n = g.norm2.length;
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = g.norm2[Math.floor(uniformAt(seed, i, k, 0x3000 + gi, 0) * n)]!;
      return { b: g.b, v };
    });
    const e = estimate(resampled, population);
    boots.push(e.g2 > 0 ? e.tr / e.g2 : Number.POSITIVE_INFINITY);
    bootG2.push(e.g2);
    bootTr.push(e.tr);
  }
  return {
    bSimple: g2 > 0 ? tr / g2 : Number.POSITIVE_INFINITY,
    ci95: [quantile(boots, 0.025), quantile(boots, 0.975)],
    gradNorm2: g2,
    gradNorm2Ci95: [quantile(bootG2, 0.025), quantile(bootG2, 0.975)],
    traceCov: tr,
    traceCovCi95: [quantile(bootTr, 0.025), quantile(bootTr, 0.975)],
    bootstrap: reps,
    ...(population !== undefined ? { populationSize: population } : {}),
  };
}
