// Per-replica metrics derived from the engine's layer statistics: distances from the
// snapshot (the initial weights), norms from the origin and per-layer cosines, as the study
// reports them.

import type { LayerStats } from '../engine/ensemble.js';

export interface WeightMetrics {
  /** L2 distance of all weight matrices from their initial values (over all layers). */
  weightDistance: number;
  /** L2 distance of all biases from their initial values. */
  biasDistance: number;
  /** L2 norm of all weight matrices (distance from the origin). */
  weightNorm: number;
  /** L2 norm of all biases. */
  biasNorm: number;
  /** Cosine similarity of each layer's weight matrix with its initial value. */
  cosine: number[];
}

export function weightMetrics(layers: readonly LayerStats[]): WeightMetrics {
  let wd = 0;
  let bd = 0;
  let wn = 0;
  let bn = 0;
  const cosine: number[] = [];
  for (const s of layers) {
    wd += s.weightDist2;
    bd += s.biasDist2;
    wn += s.weightNorm2;
    bn += s.biasNorm2;
    const denom = Math.sqrt(s.weightNorm2) * Math.sqrt(s.weightSnapNorm2);
    cosine.push(denom > 0 ? s.weightDot / denom : Number.NaN);
  }
  return {
    weightDistance: Math.sqrt(wd),
    biasDistance: Math.sqrt(bd),
    weightNorm: Math.sqrt(wn),
    biasNorm: Math.sqrt(bn),
    cosine,
  };
}
