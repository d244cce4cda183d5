// The noise model of a gradient step (docs/findings.md, F13). Per-sample gradients with mean G
// and covariance Sigma over a population of N: the batch-mean gradient of b samples drawn
// without replacement has E|g_b|^2 = |G|^2 + tr(Sigma) (N - b) / (b (N - 1)), and the batch-sum
// gradient (b times it) E|b g_b|^2 = b^2 |G|^2 + b tr(Sigma) (N - b) / (N - 1). The root of the
// batch-sum one grows like sqrt(b) while b is well below B_simple = tr(Sigma) / |G|^2 and like b
// well above it (McCandlish, Kaplan, Amodei et al., "An Empirical Model of Large-Batch
// Training", 2018, section 2). |G|^2 and tr(Sigma) come from estimateNoiseScale.

export interface NoiseModel {
  /** |G|^2 */
  gradNorm2: number;
  /** tr(Sigma) */
  traceCov: number;
  /** N, the population the batches are drawn from without replacement (absent: infinite). */
  populationSize?: number;
}

export type Reduction = 'mean' | 'sum';

/** The finite-population factor of the noise term: (N - b) / (N - 1), or 1 without N. */
function finite(m: NoiseModel, b: number): number {
  const N = m.populationSize;
  return N === undefined ? 1 : N > 1 ? (N - b) / (N - 1) : 0;
}

/** E|g_b|^2 for the gradient of the batch-mean loss (`mean`) or of the batch-sum loss (`sum`). */
export function expectedNorm2(m: NoiseModel, b: number, reduction: Reduction): number {
  if (!(b > 0)) throw new RangeError(`expectedNorm2: b must be > 0, got ${b}`);
  const meanNorm2 = m.gradNorm2 + (m.traceCov * finite(m, b)) / b;
  return reduction === 'mean' ? meanNorm2 : b * b * meanNorm2;
}

/** The root-mean-square norm of one step's gradient, sqrt(E|g_b|^2). */
export function predictedStepNorm(m: NoiseModel, b: number, reduction: Reduction): number {
  return Math.sqrt(Math.max(0, expectedNorm2(m, b, reduction)));
}

/**
 * The local exponent d log sqrt(E|g_b|^2) / d log b of the batch-sum step: 1/2 while the noise
 * term dominates, 1 once the mean gradient does (the batch-mean one is this minus 1).
 */
export function localExponent(m: NoiseModel, b: number, reduction: Reduction = 'sum'): number {
  const N = m.populationSize;
  // E_sum(b) = b^2 G2 + b T (N - b) / (N - 1) = a b^2 + c b
  const a = m.gradNorm2 - (N === undefined ? 0 : N > 1 ? m.traceCov / (N - 1) : m.traceCov);
  const c = N === undefined ? m.traceCov : N > 1 ? (m.traceCov * N) / (N - 1) : 0;
  const e = a * b * b + c * b;
  const k = (2 * a * b * b + c * b) / (2 * e);
  return reduction === 'sum' ? k : k - 1;
}

/**
 * The batch size where the batch-sum step's local exponent crosses 3/4, halfway from 1/2 to 1:
 * B_simple N / (N - 1 - B_simple) with a population of N, B_simple without; Infinity when the
 * noise term dominates at every batch size of the population.
 */
export function crossoverBatch(m: NoiseModel): number {
  if (!(m.gradNorm2 > 0)) return Number.POSITIVE_INFINITY;
  const B = m.traceCov / m.gradNorm2;
  const N = m.populationSize;
  if (N === undefined) return B;
  return N - 1 - B > 0 ? (B * N) / (N - 1 - B) : Number.POSITIVE_INFINITY;
}
