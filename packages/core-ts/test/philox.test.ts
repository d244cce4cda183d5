// Philox 4x32-10 in TypeScript and in the engine against Random123's known answers, and the
// epoch data order drawn from it.

import { describe, expect, it } from 'vitest';
import { epochPermutation, philox4x32, seedKey, uniformAt } from '../src/index.js';
// the raw engine, below the public API
import { binding } from '../src/engine/binding.js';

// counter[4] key[2] -> output[4] (Random123 kat_vectors, philox4x32_10)
const KAT: [number[], number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

describe('Philox 4x32-10', () => {
  it.each(KAT)('TypeScript: %j / %j', (c, k, want) => {
    expect(Array.from(philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, k[0]!, k[1]!))).toEqual(want);
  });

  it.each(KAT)('engine: %j / %j', (c, k, want) => {
    expect(Array.from(binding().philox(Uint32Array.from(c), Uint32Array.from(k)))).toEqual(want);
  });

  it('TypeScript and engine agree on many random blocks', () => {
    let s = 12345;
    const next = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < 2000; i++) {
      const c = [next(), next(), next(), next()];
      const k = [next(), next()];
      expect(Array.from(philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, k[0]!, k[1]!))).toEqual(
        Array.from(binding().philox(Uint32Array.from(c), Uint32Array.from(k))),
      );
    }
  });

  it('seeds map to keys and reject what is not an integer in [0, 2^53)', () => {
    expect(seedKey(5)).toEqual([5, 0]);
    expect(seedKey(2 ** 32 + 7)).toEqual([7, 1]);
    expect(() => seedKey(-1)).toThrow(RangeError);
    expect(() => seedKey(1.5)).toThrow(RangeError);
    expect(() => binding().philox(new Uint32Array(3), new Uint32Array(2))).toThrow(RangeError);
    expect(() => binding().philox([0, 0, 0, 0] as unknown as Uint32Array, new Uint32Array(2))).toThrow(TypeError);
  });

  it('uniform draws lie in [0, 1) with mean ~ 1/2', () => {
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const u = uniformAt(3, i, 0, 0, 0);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      sum += u;
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });
});

describe('epochPermutation', () => {
  it('is a permutation that depends only on (seed, epoch, n)', () => {
    const p = epochPermutation(7, 1, 1000);
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(epochPermutation(7, 1, 1000))).toEqual(Array.from(p));
    expect(Array.from(epochPermutation(7, 2, 1000))).not.toEqual(Array.from(p));
    expect(Array.from(epochPermutation(8, 1, 1000))).not.toEqual(Array.from(p));
  });

  it('puts each element at each position about equally often', () => {
    // n = 4: 24 orders; over 4800 epochs each (element, position) pair has expectation 1200
    const counts = Array.from({ length: 4 }, () => new Array(4).fill(0));
    for (let e = 0; e < 4800; e++) {
      const p = epochPermutation(1, e, 4);
      p.forEach((v, pos) => counts[v]![pos]++);
    }
    for (const row of counts) for (const c of row) expect(Math.abs(c - 1200)).toBeLessThan(120);
  });
});
