// Philox 4x32-10 (Salmon et al., SC 2011; constants as in Random123), the same generator as
// the engine's (packages/core-native/src/cpu/philox.h). bsx draws every data order and trial
// sample in TypeScript from it, so that a seed gives the same batches on every backend and
// whatever the number of replicas run together.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (exact in doubles). */
function mulhi32(a: number, b: number): number {
  const aH = a >>> 16;
  const aL = a & 0xffff;
  const bH = b >>> 16;
  const bL = b & 0xffff;
  const t = aL * bL;
  const m1 = aH * bL + (t >>> 16);
  const m2 = aL * bH + (m1 & 0xffff);
  return (aH * bH + Math.floor(m1 / 65536) + Math.floor(m2 / 65536)) >>> 0;
}

/**
 * counter[4], key[2] (uint32 each) -> 4 uint32 words, written to `out` (reused to avoid
 * allocation in hot loops).
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** Streams (third counter word) of the draws made in TypeScript; the engine uses 0x1xx-0x2xx. */
export const Stream = {
  /** Data order of an epoch: counter = (i, epoch, Shuffle, 0). */
  Shuffle: 0x1000,
  /** Samples of a gradient-study trial: counter = (i, trial, TrialSamples + b, regime). */
  TrialSamples: 0x2000,
} as const;

/** A seed as a Philox key: an integer in [0, 2^53). */
export function seedKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

const scratch = new Uint32Array(4);

/**
 * A uniform double in [0, 1) with 53 random bits from the block at (c0, c1, c2, c3) of `seed`.
 */
export function uniformAt(seed: number, c0: number, c1: number, c2: number, c3: number): number {
  const [k0, k1] = seedKey(seed);
  const r = philox4x32(c0 >>> 0, c1 >>> 0, c2 >>> 0, c3 >>> 0, k0, k1, scratch);
  return ((r[0]! >>> 5) * 67108864 + (r[1]! >>> 6)) / 9007199254740992;
}

/**
 * The data order of one epoch: a permutation of [0, n) by Fisher-Yates, each swap drawn from
 * Philox at counter (i, epoch, Stream.Shuffle, 0) with key = seed. Depends only on
 * (seed, epoch, n).
 */
export function epochPermutation(seed: number, epoch: number, n: number, out?: Int32Array): Int32Array {
  const perm = out ?? new Int32Array(n);
  if (perm.length !== n) throw new RangeError(`out must have ${n} elements, got ${perm.length}`);
  for (let i = 0; i < n; i++) perm[i] = i;
  const [k0, k1] = seedKey(seed);
  const r = new Uint32Array(4);
  for (let i = n - 1; i > 0; i--) {
    philox4x32(i >>> 0, epoch >>> 0, Stream.Shuffle, 0, k0, k1, r);
    const u = ((r[0]! >>> 5) * 67108864 + (r[1]! >>> 6)) / 9007199254740992;
    const j = Math.floor(u * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}
