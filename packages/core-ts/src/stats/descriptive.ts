// Descriptive statistics over plain arrays: mean, sample standard deviation, quantiles
// (linear interpolation between order statistics, as numpy's default), histograms with
// explicit under/overflow.

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

/** Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2 values. */
export function std(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < n; i++) s += (xs[i]! - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/** Quantile q in [0, 1] with linear interpolation (numpy's 'linear' method). */
export function quantile(xs: ArrayLike<number>, q: number): number {
  if (xs.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const sorted = Float64Array.from(xs).sort();
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  if (lo === hi || sorted[lo] === sorted[hi]) return sorted[lo]!;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Summary {
  n: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  p05: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
}

export function summarize(xs: ArrayLike<number>): Summary {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    min = Math.min(min, xs[i]!);
    max = Math.max(max, xs[i]!);
  }
  return {
    n: xs.length,
    mean: mean(xs),
    std: std(xs),
    min,
    max,
    p05: quantile(xs, 0.05),
    p25: quantile(xs, 0.25),
    p50: quantile(xs, 0.5),
    p75: quantile(xs, 0.75),
    p95: quantile(xs, 0.95),
  };
}

/** Counts with fixed edges: bin k holds edges[k] <= v < edges[k+1], the last bin is closed. */
export interface Histogram {
  edges: number[];
  counts: number[];
  underflow: number;
  overflow: number;
  nan: number;
}

export function histogram(xs: ArrayLike<number>, edges: readonly number[]): Histogram {
  const bins = edges.length - 1;
  if (bins < 1) throw new RangeError('histogram: need at least 2 edges');
  const counts = new Array<number>(bins).fill(0);
  let underflow = 0;
  let overflow = 0;
  let nan = 0;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (Number.isNaN(v)) nan++;
    else if (v < edges[0]!) underflow++;
    else if (v > edges[bins]!) overflow++;
    else {
      let lo = 0;
      let hi = bins; // find the last k with edges[k] <= v
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (edges[mid]! <= v) lo = mid;
        else hi = mid;
      }
      counts[lo]! += 1;
    }
  }
  return { edges: [...edges], counts, underflow, overflow, nan };
}

/** n+1 evenly spaced edges over [lo, hi]. */
export function linearEdges(lo: number, hi: number, bins: number): number[] {
  return Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
}

/**
 * Edges symmetric about zero, log-spaced in magnitude from `minMag` to `maxMag` with
 * `perDecade` bins per decade on each side and one bin [-minMag, minMag) in the middle.
 */
export function signedLogEdges(minMag: number, maxMag: number, perDecade: number): number[] {
  if (!(minMag > 0 && maxMag > minMag)) throw new RangeError('signedLogEdges: need 0 < minMag < maxMag');
  const decades = Math.log10(maxMag / minMag);
  const k = Math.round(decades * perDecade);
  const pos = Array.from({ length: k + 1 }, (_, i) => minMag * 10 ** ((decades * i) / k));
  return [...pos.map((v) => -v).reverse(), ...pos];
}
