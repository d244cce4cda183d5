// Shared by the engine's reference tests: a deterministic generator for test data (independent
// of the engine's Philox), a small synthetic dataset, a replica's parameters as float64 for
// the reference, and an element-wise closeness check that names the first bad element.

import { expect } from 'vitest';
import { Dataset, type Ensemble } from '../../src/index.js';
import type { RefParams } from '../reference/mlp.js';

/** Deterministic pseudo-random numbers in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** count samples of dim features in [-1, 1) and labels in [0, classes), kept for the reference. */
export function syntheticData(count: number, dim: number, classes: number, seed = 1): { data: Dataset; features: Float32Array; labels: Uint8Array } {
  const rnd = lcg(seed);
  const features = new Float32Array(count * dim).map(() => rnd() * 2 - 1);
  const labels = new Uint8Array(count).map(() => Math.floor(rnd() * classes));
  return { data: Dataset.fromArrays(features, labels, { dim, classes, name: 'synthetic' }), features, labels };
}

export function rowsOf(ds: Dataset, features: Float32Array, idx: ArrayLike<number>): Float64Array[] {
  return Array.from(idx, (i) => Float64Array.from(features.subarray(i * ds.dim, (i + 1) * ds.dim)));
}

/** Replica r's parameters as float64 arrays. */
export function refParams(ens: Ensemble, r: number): RefParams {
  const W: Float64Array[] = [];
  const b: Float64Array[] = [];
  for (let l = 0; l < ens.layers; l++) {
    W.push(Float64Array.from(ens.getTensor(2 * l).slice0(r).data));
    b.push(Float64Array.from(ens.getTensor(2 * l + 1).slice0(r).data));
  }
  return { W, b };
}

/** |actual - expected| <= atol + rtol |expected| element by element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`${what}[${i}]: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}
