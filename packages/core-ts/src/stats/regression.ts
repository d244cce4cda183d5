// Least-squares fits: a straight line with confidence intervals from Student's t, and the
// power law y = c * b^k as a line in log-log space.

import { tQuantile } from './tdist.js';

export interface LineFit {
  slope: number;
  intercept: number;
  /** 95% confidence intervals (t with n - 2 degrees of freedom). */
  slopeCi95: [number, number];
  interceptCi95: [number, number];
  slopeStdErr: number;
  interceptStdErr: number;
  r2: number;
  n: number;
}

export function fitLine(x: ArrayLike<number>, y: ArrayLike<number>): LineFit {
  const n = x.length;
  if (n !== y.length) throw new RangeError(`fitLine: ${n} x values but ${y.length} y values`);
  if (n < 3) throw new RangeError(`fitLine: need at least 3 points for an interval, got ${n}`);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]! / n;
    my += y[i]! / n;
  }
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i]! - mx) ** 2;
    sxy += (x[i]! - mx) * (y[i]! - my);
    syy += (y[i]! - my) ** 2;
  }
  if (sxx === 0) throw new RangeError('fitLine: all x values are equal');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (y[i]! - intercept - slope * x[i]!) ** 2;
  const s2 = sse / (n - 2);
  const slopeStdErr = Math.sqrt(s2 / sxx);
  const interceptStdErr = Math.sqrt(s2 * (1 / n + (mx * mx) / sxx));
  const t = tQuantile(0.975, n - 2);
  return {
    slope,
    intercept,
    slopeCi95: [slope - t * slopeStdErr, slope + t * slopeStdErr],
    interceptCi95: [intercept - t * interceptStdErr, intercept + t * interceptStdErr],
    slopeStdErr,
    interceptStdErr,
    r2: syy > 0 ? 1 - sse / syy : 1,
    n,
  };
}

export interface PowerLawFit {
  /** k in y = c * b^k */
  exponent: number;
  exponentCi95: [number, number];
  /** c */
  coefficient: number;
  /** R^2 in log-log space */
  r2: number;
  n: number;
  /** The batch sizes the fit used. */
  range: [number, number];
}

/** Fits y = c * b^k by least squares on (ln b, ln y). Non-positive y values are an error. */
export function fitPowerLaw(b: ArrayLike<number>, y: ArrayLike<number>): PowerLawFit {
  const lx: number[] = [];
  const ly: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (!(b[i]! > 0) || !(y[i]! > 0)) throw new RangeError(`fitPowerLaw: b and y must be > 0 (at ${i}: b=${b[i]}, y=${y[i]})`);
    lx.push(Math.log(b[i]!));
    ly.push(Math.log(y[i]!));
  }
  const f = fitLine(lx, ly);
  return {
    exponent: f.slope,
    exponentCi95: f.slopeCi95,
    coefficient: Math.exp(f.intercept),
    r2: f.r2,
    n: f.n,
    range: [Math.min(...Array.from(b)), Math.max(...Array.from(b))],
  };
}
