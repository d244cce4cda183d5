// The roofline model (bench/src/roofline-model.ts) against counts done by hand: FLOPs and
// bytes of every phase of a step of the 784-1024-1024-10 MLP, the reuse distances of a small
// hand-made sequence, where buffers land for given cache sizes, the bound of a phase, and the
// reading of the cache sizes from a sysfs tree.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  boundPhases,
  capacities,
  evalModel,
  parseCacheSize,
  placeBytes,
  readCaches,
  reuseDistance,
  stepModel,
  type Capacities,
  type StepModel,
} from '../src/roofline-model.js';

const KiB = 1024;
const MiB = 1024 * 1024;
/** This machine's caches for two threads: 2 x 32 KiB L1d, 2 x 1 MiB L2, one 32 MiB L3. */
const caps: Capacities = { L1: 64 * KiB, L2: 2 * MiB, L3: 32 * MiB, DRAM: Infinity };

const total = (bytes: Record<string, number>) => Object.values(bytes).reduce((a, b) => a + b, 0);

describe('FLOPs of a step', () => {
  for (const b of [8, 64, 256, 1024]) {
    it(`b = ${b}: each GEMM is 2 x b x in x out, the update 2 per parameter`, () => {
      const m = stepModel(b);
      const f = Object.fromEntries(m.phases.map((p) => [p.id, p.flops]));
      expect(f.fwd1).toBe(2 * b * 784 * 1024);
      expect(f.fwd2).toBe(2 * b * 1024 * 1024);
      expect(f.fwd3).toBe(2 * b * 1024 * 10);
      expect(f.dgrad3).toBe(2 * b * 10 * 1024);
      expect(f.dgrad2).toBe(2 * b * 1024 * 1024);
      expect(f.dgrad1).toBeUndefined(); // the input needs no gradient
      // GEMM + bias gradient (b x out adds) + SGD on weights and biases (2 per parameter)
      expect(f.wgrad3).toBe(2 * b * 1024 * 10 + b * 10 + 2 * (1024 * 10 + 10));
      expect(f.wgrad2).toBe(2 * b * 1024 * 1024 + b * 1024 + 2 * (1024 * 1024 + 1024));
      expect(f.wgrad1).toBe(2 * b * 784 * 1024 + b * 1024 + 2 * (784 * 1024 + 1024));
      expect(f.gather).toBe(0);
      expect(f.loss).toBe(7 * b * 10 + b);
      // the whole step: 3 passes over the 1,861,632 weights minus the first layer's dgrad
      const gemm = m.phases.filter((p) => p.kind !== 'loss' && p.kind !== 'gather').reduce((a, p) => a + p.flops, 0);
      const extra = b * (1024 + 1024 + 10) + 2 * (1861632 + 1024 + 1024 + 10);
      expect(gemm - extra).toBe(6 * b * 1861632 - 2 * b * 784 * 1024);
    });
  }

  it('runs the phases in the order of a step', () => {
    expect(stepModel(64).phases.map((p) => p.id)).toEqual(['gather', 'fwd1', 'fwd2', 'fwd3', 'loss', 'dgrad3', 'wgrad3', 'dgrad2', 'wgrad2', 'wgrad1']);
  });

  it('rejects a batch that is not a positive integer', () => {
    expect(() => stepModel(0)).toThrow(/positive integer, got 0/);
    expect(() => stepModel(2.5)).toThrow(/positive integer, got 2.5/);
  });
});

describe('bytes of a step', () => {
  it('counts every operand once; read-and-written weights twice', () => {
    const b = 8;
    const placed = placeBytes(stepModel(b), caps);
    const m = stepModel(b);
    const at = (id: string) => total(placed[m.phases.findIndex((p) => p.id === id)]!);
    // forward 1: W1, b1, the batch x0 read; a1 written
    expect(at('fwd1')).toBe(784 * 1024 * 4 + 1024 * 4 + b * 784 * 4 + b * 1024 * 4);
    // backward-data 2: d2, W2, the mask a1 read; d1 written
    expect(at('dgrad2')).toBe(b * 1024 * 4 + 1024 * 1024 * 4 + b * 1024 * 4 + b * 1024 * 4);
    // weight gradient + update 2: d2, a1 read; W2 and b2 read and written
    expect(at('wgrad2')).toBe(b * 1024 * 4 + b * 1024 * 4 + 2 * (1024 * 1024 * 4 + 1024 * 4));
    // gather: b rows from the dataset, written to x0, and b labels
    expect(at('gather')).toBe(b * 784 * 4 + b * 784 * 4 + b * 4);
    // loss head: logits and labels read, their delta written
    expect(at('loss')).toBe(b * 10 * 4 + b * 4 + b * 10 * 4);
  });

  it('places the weights in L3 at every batch size on this machine, in DRAM when the L3 is small', () => {
    for (const b of [8, 64, 256, 1024]) {
      const m = stepModel(b);
      const placed = placeBytes(m, caps);
      const fwd2 = placed[m.phases.findIndex((p) => p.id === 'fwd2')]!;
      expect(fwd2.L3).toBeGreaterThanOrEqual(1024 * 1024 * 4); // W2 is 4 MiB: not in a 2 MiB L2
    }
    // at b = 1024 the step touches ~27.5 MB: with a 16 MiB L3 the weights come from DRAM
    const m = stepModel(1024);
    const small = placeBytes(m, { ...caps, L3: 16 * MiB });
    expect(small[m.phases.findIndex((p) => p.id === 'fwd2')]!.DRAM).toBeGreaterThanOrEqual(1024 * 1024 * 4);
    // the dataset's rows always come from DRAM
    expect(placeBytes(stepModel(8), caps)[0]!.DRAM).toBe(8 * 784 * 4);
  });
});

describe('reuse distance', () => {
  // three phases over buffers A (10 bytes), B (20), C (5): p0 = {A, B}, p1 = {C}, p2 = {A}
  const tiny: StepModel = {
    b: 1,
    buffers: { A: 10, B: 20, C: 5 },
    phases: [
      { id: 'p0', kind: 'forward', label: 'p0', flops: 0, uses: [{ buffer: 'A', access: 'r' }, { buffer: 'B', access: 'w' }] },
      { id: 'p1', kind: 'forward', label: 'p1', flops: 0, uses: [{ buffer: 'C', access: 'rw' }] },
      { id: 'p2', kind: 'forward', label: 'p2', flops: 0, uses: [{ buffer: 'A', access: 'r' }] },
    ],
  };

  it('sums the distinct buffers touched from the previous use to this one', () => {
    expect(reuseDistance(tiny, 2, 'A')).toBe(10 + 20 + 5); // p0 .. p2
    expect(reuseDistance(tiny, 0, 'A')).toBe(10 + 20); // p2 (previous step) .. p0
    expect(reuseDistance(tiny, 0, 'B')).toBe(10 + 20 + 5); // used once a step: the whole step
    expect(reuseDistance(tiny, 1, 'C')).toBe(10 + 20 + 5);
  });

  it('places each use in the smallest level holding its distance', () => {
    const placed = placeBytes(tiny, { L1: 30, L2: 35, L3: 100, DRAM: Infinity });
    expect(placed[0]).toEqual({ L1: 10, L2: 20, L3: 0, DRAM: 0 }); // A at 30 -> L1, B at 35 -> L2
    expect(placed[1]).toEqual({ L1: 0, L2: 10, L3: 0, DRAM: 0 }); // C read and written: 2 x 5
    expect(placed[2]).toEqual({ L1: 0, L2: 10, L3: 0, DRAM: 0 });
  });

  it('names a buffer the phase does not use', () => {
    expect(() => reuseDistance(tiny, 1, 'Z')).toThrow(/buffer 'Z'/);
  });
});

describe('bounds', () => {
  it('is the larger of the FLOP time and the sum of bytes over bandwidths', () => {
    const m = stepModel(8);
    const bw = { L1: 1e12, L2: 5e11, L3: 1e9, DRAM: 5e8 };
    const rows = boundPhases(m, caps, { flops: 1e12, bandwidth: bw });
    const placed = placeBytes(m, caps);
    rows.forEach((r, i) => {
      const p = placed[i]!;
      const mem = p.L1 / bw.L1 + p.L2 / bw.L2 + p.L3 / bw.L3 + p.DRAM / bw.DRAM;
      expect(r.computeSeconds).toBeCloseTo(m.phases[i]!.flops / 1e12, 15);
      expect(r.memorySeconds).toBeCloseTo(mem, 15);
      expect(r.boundSeconds).toBe(Math.max(r.computeSeconds, r.memorySeconds));
    });
    // forward 2 at b = 8 with a slow L3: 4 MiB of W2 at 1 GB/s dominate its 16.8 MFLOP
    const fwd2 = rows.find((r) => r.id === 'fwd2')!;
    expect(fwd2.boundBy).toBe('L3');
    expect(fwd2.boundSeconds).toBeGreaterThan((1024 * 1024 * 4) / 1e9);
    // with fast memory it is compute-bound
    const fast = boundPhases(m, caps, { flops: 1e9, bandwidth: { L1: 1e15, L2: 1e15, L3: 1e15, DRAM: 1e15 } });
    expect(fast.find((r) => r.id === 'fwd2')!.boundBy).toBe('compute');
    expect(fast.find((r) => r.id === 'fwd2')!.boundSeconds).toBeCloseTo((2 * 8 * 1024 * 1024) / 1e9, 12);
  });
});

describe('evaluation', () => {
  it('counts the forward FLOPs of a chunk and reads the weights once per chunk', () => {
    const chunk = 1000;
    const m = evalModel(chunk);
    const flops = m.phases.filter((p) => p.kind === 'forward').reduce((a, p) => a + p.flops, 0);
    expect(flops / chunk).toBe(2 * (784 * 1024 + 1024 * 1024 + 1024 * 10));
    const placed = placeBytes(m, caps);
    const weights = (784 * 1024 + 1024 * 1024 + 1024 * 10 + 1024 + 1024 + 10) * 4;
    const acts = chunk * (1024 + 1024 + 10) * 4 * 2; // each written once and read once
    const input = chunk * 784 * 4 + chunk; // image rows and byte labels from the test set
    expect(placed.reduce((a, p) => a + total(p), 0)).toBe(weights + acts + input);
  });
});

describe('caches', () => {
  it('parses the sizes sysfs and lscpu print', () => {
    expect(parseCacheSize('32K')).toBe(32 * KiB);
    expect(parseCacheSize('1024K')).toBe(MiB);
    expect(parseCacheSize('32 MiB')).toBe(32 * MiB);
    expect(parseCacheSize('65536')).toBe(65536);
    expect(() => parseCacheSize('big')).toThrow(/'big'/);
  });

  it('reads the data caches of every CPU from sysfs and sizes them for the threads', () => {
    const root = mkdtempSync(join(tmpdir(), 'bsx-sysfs-'));
    const entries: [number, string, string, (cpu: number) => string][] = [
      [1, 'Data', '32K', (c) => String(c)],
      [1, 'Instruction', '32K', (c) => String(c)],
      [2, 'Unified', '1024K', (c) => String(c)],
      [3, 'Unified', '32768K', () => '0-1'],
    ];
    for (const cpu of [0, 1]) {
      entries.forEach(([level, type, size, shared], i) => {
        const dir = join(root, `cpu${cpu}`, 'cache', `index${i}`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'level'), `${level}\n`);
        writeFileSync(join(dir, 'type'), `${type}\n`);
        writeFileSync(join(dir, 'size'), `${size}\n`);
        writeFileSync(join(dir, 'shared_cpu_list'), `${shared(cpu)}\n`);
      });
    }
    mkdirSync(join(root, 'cpufreq')); // not a CPU
    const caches = readCaches(root);
    expect(caches).toEqual([
      { level: 1, size: 32 * KiB, instances: 2, sharedBy: 1 },
      { level: 2, size: MiB, instances: 2, sharedBy: 1 },
      { level: 3, size: 32 * MiB, instances: 1, sharedBy: 2 },
    ]);
    expect(capacities(caches, 2)).toEqual(caps);
    expect(capacities(caches, 1)).toEqual({ L1: 32 * KiB, L2: MiB, L3: 32 * MiB, DRAM: Infinity });
    expect(() => readCaches(join(root, 'missing'))).toThrow(/missing/);
  });
});
