// Tests of exports.gemm (src/napi/gemm_binding.cpp over src/cpu/gemm*.cpp): sgemm on every
// SIMD path this CPU has, against an independent float64 loop written here (not the C++
// reference), over all transpose combinations, alpha/beta, the epilogues, batched calls
// and shapes at every edge of the blocking; bit-identical results for 1 and 2 threads;
// argument errors thrown as TypeError/RangeError. Needs the addon built first
// (pnpm --filter @bsx/core-native run build).
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeBinding, NativeGemmOptions } from '../index.js';

const require = createRequire(import.meta.url);
// the addon's surface is typed once, in index.d.ts
const native = require('../index.cjs') as NativeBinding;
type GemmOpts = NativeGemmOptions;

const gemm = native.gemm;

// ---------------------------------------------------------------------------------------
// Deterministic inputs.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randArray(n: number, r: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * 2 - 1;
  return out;
}

interface Problem {
  opts: GemmOpts; // the call (c is the initial C; copy it before calling)
  expected: Float64Array; // C after the call, per the float64 loop below
}

// The independent float64 definition of sgemm (gemm.h), one problem of a batch.
function naive(o: GemmOpts, expected: Float64Array, p: number): void {
  const ta = o.transA ?? false;
  const tb = o.transB ?? false;
  const { M, N, K } = o;
  const lda = o.lda ?? (ta ? M : K);
  const ldb = o.ldb ?? (tb ? K : N);
  const ldc = o.ldc ?? N;
  const ldm = o.ldm ?? N;
  const alpha = o.alpha ?? 1;
  const beta = o.beta ?? 0;
  const offA = p * (o.strideA ?? (ta ? K : M) * lda);
  const offB = p * (o.strideB ?? (tb ? N : K) * ldb);
  const offC = p * (o.strideC ?? M * ldc);
  const offBias = p * (o.strideBias ?? N);
  const offMask = p * (o.strideMask ?? M * ldm);
  const rsA = ta ? 1 : lda;
  const csA = ta ? lda : 1;
  const rsB = tb ? 1 : ldb; // B(k, n) = b[k*rsB + n*csB]
  const csB = tb ? ldb : 1;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let ia = offA + m * rsA;
      let ib = offB + n * csB;
      for (let k = 0; k < K; k++) {
        acc += o.a[ia] * o.b[ib];
        ia += csA;
        ib += rsB;
      }
      const ic = offC + m * ldc + n;
      let v = alpha * acc;
      if (beta !== 0) v += beta * o.c[ic];
      if (o.bias) v += o.bias[offBias + n];
      if (o.mask && !(o.mask[offMask + m * ldm + n] > 0)) v = 0;
      if (o.relu && !(v > 0)) v = 0;
      expected[ic] = v;
    }
  }
}

interface MakeOpts {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: boolean;
  mask?: boolean;
  relu?: boolean;
  pad?: number; // extra columns in every leading dimension
  batch?: number;
  shareB?: boolean; // strideB = 0: one B for the whole batch
  seed?: number;
  noExpected?: boolean; // skip the float64 loop (the caller compares runs with each other)
}

function makeProblem(M: number, N: number, K: number, mo: MakeOpts = {}): Problem {
  const r = rng(mo.seed ?? M * 1000003 + N * 1009 + K * 7 + (mo.transA ? 1 : 0) + (mo.transB ? 2 : 0));
  const ta = mo.transA ?? false;
  const tb = mo.transB ?? false;
  const pad = mo.pad ?? 0;
  const batch = mo.batch ?? 1;
  const beta = mo.beta ?? 0;
  const lda = (ta ? M : K) + pad;
  const ldb = (tb ? K : N) + pad;
  const ldc = N + pad;
  const ldm = N + 2 * pad;
  const gap = batch > 1 ? 3 : 0; // batch strides with a gap between problems
  const strideA = (ta ? K : M) * lda + gap;
  const strideB = mo.shareB ? 0 : (tb ? N : K) * ldb + gap;
  const strideC = M * ldc + gap;
  const strideBias = N + gap;
  const strideMask = M * ldm + gap;
  const opts: GemmOpts = {
    transA: ta,
    transB: tb,
    M,
    N,
    K,
    alpha: mo.alpha ?? 1,
    beta,
    a: randArray(strideA * batch, r),
    lda,
    b: randArray(Math.max(strideB * batch, (tb ? N : K) * ldb), r),
    ldb,
    c: randArray(strideC * batch, r),
    ldc,
  };
  if (beta === 0) opts.c.fill(Number.NaN); // beta == 0 must ignore C entirely
  if (mo.bias) opts.bias = randArray(strideBias * batch, r);
  if (mo.mask) {
    opts.mask = randArray(strideMask * batch, r);
    opts.ldm = ldm;
  }
  if (mo.relu) opts.relu = true;
  if (batch > 1) {
    Object.assign(opts, { batch, strideA, strideB, strideC });
    if (mo.bias) opts.strideBias = strideBias;
    if (mo.mask) opts.strideMask = strideMask;
  }
  const expected = Float64Array.from(opts.c);
  if (!mo.noExpected) for (let p = 0; p < batch; p++) naive(opts, expected, p);
  return { opts, expected };
}

// Runs `fn` (sgemm or sgemmReference) on a copy of C; returns the new C.
function run(fn: (o: GemmOpts) => void, prob: Problem): Float32Array {
  const c = Float32Array.from(prob.opts.c);
  fn({ ...prob.opts, c });
  return c;
}

// |got - ref| <= sqrt(K) * (atol + rtol*|ref|) inside C; padding and gaps untouched.
function compare(got: Float32Array, prob: Problem, label: string): void {
  const { M, N, K } = prob.opts;
  const ldc = prob.opts.ldc ?? N;
  const batch = prob.opts.batch ?? 1;
  const strideC = prob.opts.strideC ?? M * ldc;
  const scale = Math.sqrt(K);
  const atol = 1e-5;
  const rtol = 1e-5;
  const inside = new Uint8Array(got.length);
  for (let p = 0; p < batch; p++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) inside[p * strideC + m * ldc + n] = 1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const r = prob.expected[i];
    if (inside[i]) {
      if (!Number.isFinite(g) || Math.abs(g - r) > scale * (atol + rtol * Math.abs(r))) {
        const p = Math.floor(i / strideC);
        const m = Math.floor((i - p * strideC) / ldc);
        const n = i - p * strideC - m * ldc;
        expect.fail(`${label}: C[${p}][${m},${n}] = ${g}, expected ${r}`);
      }
    } else if (!Object.is(g, prob.opts.c[i])) {
      expect.fail(`${label}: element ${i} outside C was modified (${prob.opts.c[i]} -> ${g})`);
    }
  }
}

function describeProblem(prob: Problem): string {
  const o = prob.opts;
  const flags = [
    o.transA ? 'tA' : '',
    o.transB ? 'tB' : '',
    `alpha=${o.alpha}`,
    `beta=${o.beta}`,
    o.bias ? 'bias' : '',
    o.mask ? 'mask' : '',
    o.relu ? 'relu' : '',
    o.batch ? `batch=${o.batch}` : '',
    o.lda !== (o.transA ? o.M : o.K) ? `lda=${o.lda}` : '',
  ].filter(Boolean);
  return `M=${o.M} N=${o.N} K=${o.K} ${flags.join(' ')}`;
}

const paths = gemm.availableSimdPaths();
const defaultPath = gemm.simdPath();
const defaultThreads = gemm.threads();

// Checks sgemm on every path against the float64 loop.
function checkAllPaths(prob: Problem): void {
  for (const path of paths) {
    gemm.setSimdPath(path);
    compare(run(gemm.sgemm, prob), prob, `${path} ${describeProblem(prob)}`);
  }
}

const TRANS: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

beforeAll(() => {
  expect(paths).toContain('portable');
});

afterAll(() => {
  gemm.setSimdPath(defaultPath);
  gemm.setThreads(defaultThreads);
});

describe('gemm: paths and controls', () => {
  it('reports the SIMD paths, kernel and threads', () => {
    expect(paths.length).toBeGreaterThanOrEqual(1);
    expect(paths).toContain(defaultPath);
    for (const p of paths) {
      gemm.setSimdPath(p);
      expect(gemm.simdPath()).toBe(p);
      expect(gemm.kernelName()).toBe(p);
    }
    gemm.setSimdPath(defaultPath);
    expect(gemm.threads()).toBeGreaterThanOrEqual(1);
  });

  it('measures a positive FMA peak', () => {
    const g = gemm.peakGflops(0.05);
    expect(g).toBeGreaterThan(0);
    expect(Number.isFinite(g)).toBe(true);
  });
});

describe('gemm: sgemm against a float64 loop on every SIMD path', () => {
  const dims = [1, 2, 3, 7, 8, 10, 15, 16, 17, 31, 33, 64, 100];

  for (const [ta, tb] of TRANS) {
    it(`edge grid, transA=${ta} transB=${tb}`, () => {
      // Every M,N,K from the small set (all register-tile and packing edges).
      for (const M of dims)
        for (const N of dims)
          for (const K of dims) {
            if ((M * 7 + N * 3 + K) % 3 !== 0 && M > 8 && K > 8) continue; // thin the grid out
            checkAllPaths(makeProblem(M, N, K, { transA: ta, transB: tb }));
          }
    });
  }

  for (const [ta, tb] of TRANS) {
    it(`large edges (784, 1024, 1025), transA=${ta} transB=${tb}`, () => {
      const shapes: Array<[number, number, number]> = [
        [1025, 33, 17],
        [17, 1025, 784],
        [100, 784, 1025],
        [33, 1024, 1025],
        [1025, 10, 100],
        [3, 1025, 1024],
        [1025, 1025, 3],
      ];
      for (const [M, N, K] of shapes)
        checkAllPaths(makeProblem(M, N, K, { transA: ta, transB: tb, beta: 0.5, bias: true }));
    });
  }

  for (const [ta, tb] of TRANS) {
    it(`alpha, beta, epilogues and padded leading dimensions, transA=${ta} transB=${tb}`, () => {
      const shapes: Array<[number, number, number]> = [
        [5, 37, 19],
        [33, 70, 300],
        [8, 100, 64],
        [64, 65, 7],
        [17, 31, 1],
      ];
      const variants: MakeOpts[] = [
        { alpha: 1, beta: 0 },
        { alpha: -0.5, beta: 1 },
        { alpha: 2.5, beta: -0.75 },
        { bias: true },
        { relu: true },
        { mask: true },
        { bias: true, relu: true },
        { bias: true, mask: true, relu: true, beta: 1, alpha: -1 },
        { mask: true, relu: true, pad: 3 },
        { bias: true, beta: 0.25, pad: 5 },
      ];
      for (const [M, N, K] of shapes)
        for (const v of variants) checkAllPaths(makeProblem(M, N, K, { ...v, transA: ta, transB: tb }));
    });
  }

  it('one thread: several column blocks of packed B per call', () => {
    gemm.setThreads(1);
    try {
      for (const [ta, tb] of TRANS)
        checkAllPaths(makeProblem(17, 1025, 1025, { transA: ta, transB: tb, beta: -1, bias: true, relu: true }));
    } finally {
      gemm.setThreads(defaultThreads);
    }
  });

  it('beta = 0 ignores NaN in C', () => {
    for (const [ta, tb] of TRANS) {
      for (const [M, N, K] of [
        [1, 1024, 784],
        [8, 784, 1024],
        [64, 100, 33],
        [1024, 784, 4],
      ] as Array<[number, number, number]>) {
        const prob = makeProblem(M, N, K, { transA: ta, transB: tb, beta: 0 });
        expect(Number.isNaN(prob.opts.c[0])).toBe(true);
        checkAllPaths(prob);
      }
    }
  });

  it('MLP forward shapes: X[b,784] W1^T (+bias, relu) and X[b,1024] W3^T with N=10', () => {
    for (const b of [1, 2, 3, 4, 5, 6, 7, 8, 64, 256]) {
      checkAllPaths(makeProblem(b, 1024, 784, { transB: true, bias: true, relu: true }));
      checkAllPaths(makeProblem(b, 10, 1024, { transB: true, bias: true }));
    }
  });

  it('MLP backward-data shapes: dY[b,1024] W[1024,784] with the ReLU mask', () => {
    for (const b of [1, 3, 8, 64]) checkAllPaths(makeProblem(b, 784, 1024, { mask: true }));
    for (const b of [2, 64]) checkAllPaths(makeProblem(b, 1024, 10, { mask: true }));
  });

  it('MLP weight-gradient shapes fused into SGD: W -= lr * dY^T X (transA, beta = 1)', () => {
    for (const b of [1, 2, 8, 16, 64])
      checkAllPaths(makeProblem(1024, 784, b, { transA: true, alpha: -0.01, beta: 1 }));
    checkAllPaths(makeProblem(10, 1024, 64, { transA: true, alpha: -0.01, beta: 1 }));
  });
});

describe('gemm: batched calls', () => {
  it('match the float64 loop per problem (strides with gaps, shared B, epilogues)', () => {
    for (const [ta, tb] of TRANS) {
      checkAllPaths(makeProblem(3, 40, 20, { transA: ta, transB: tb, batch: 5, bias: true, relu: true }));
      checkAllPaths(makeProblem(64, 100, 70, { transA: ta, transB: tb, batch: 3, mask: true, beta: 1 }));
      checkAllPaths(makeProblem(8, 1024, 784, { transA: ta, transB: tb, batch: 4, shareB: true, bias: true }));
      checkAllPaths(makeProblem(1024, 100, 4, { transA: ta, transB: tb, batch: 2, beta: 0.5 }));
    }
  });

  it('equal one sgemm per problem, bit for bit', () => {
    for (const path of paths) {
      gemm.setSimdPath(path);
      for (const [ta, tb] of TRANS) {
        const prob = makeProblem(17, 50, 33, { transA: ta, transB: tb, batch: 5, bias: true, mask: true, beta: 1, noExpected: true });
        const batched = run(gemm.sgemm, prob);
        const single = Float32Array.from(prob.opts.c);
        const o = prob.opts;
        for (let p = 0; p < 5; p++) {
          gemm.sgemm({
            ...o,
            batch: 1,
            a: o.a.subarray(p * o.strideA!),
            b: o.b.subarray(p * o.strideB!),
            c: single.subarray(p * o.strideC!),
            bias: o.bias!.subarray(p * o.strideBias!),
            mask: o.mask!.subarray(p * o.strideMask!),
            strideA: undefined,
            strideB: undefined,
            strideC: undefined,
            strideBias: undefined,
            strideMask: undefined,
          });
        }
        expect(Buffer.from(batched.buffer).equals(Buffer.from(single.buffer))).toBe(true);
      }
    }
  });
});

describe('gemm: determinism', () => {
  it('gives identical bits with 1 and 2 threads, on every path', () => {
    const shapes: Array<[number, number, number, boolean, boolean]> = [
      [1, 1024, 784, false, true],
      [8, 784, 1024, false, false],
      [64, 784, 1024, false, false],
      [24, 1024, 256, true, false],
      [100, 200, 77, true, false],
      [1000, 100, 300, false, false],
      [256, 1024, 784, false, true],
      [100, 784, 1025, false, false],
      [1024, 784, 5, true, false],
      [1024, 784, 64, true, false],
      [300, 10, 1024, false, true],
      [40, 1000, 300, true, true],
    ];
    for (const path of paths) {
      gemm.setSimdPath(path);
      for (const [M, N, K, ta, tb] of shapes) {
        if (path === 'portable' && M * N * K > 1e8) continue;
        const prob = makeProblem(M, N, K, { transA: ta, transB: tb, beta: 0.5, bias: true, relu: true, noExpected: true });
        gemm.setThreads(1);
        const one = run(gemm.sgemm, prob);
        gemm.setThreads(2);
        const two = run(gemm.sgemm, prob);
        const label = `${path} M=${M} N=${N} K=${K}`;
        expect(Buffer.from(one.buffer).equals(Buffer.from(two.buffer)), label).toBe(true);
        // Batched over replicas (one per thread) matches too.
        const bprob = makeProblem(M > 64 ? 64 : M, N, K, { transA: ta, transB: tb, batch: 3, beta: 1, noExpected: true });
        gemm.setThreads(1);
        const b1 = run(gemm.sgemm, bprob);
        gemm.setThreads(2);
        const b2 = run(gemm.sgemm, bprob);
        expect(Buffer.from(b1.buffer).equals(Buffer.from(b2.buffer)), `batched ${label}`).toBe(true);
      }
    }
    gemm.setThreads(defaultThreads);
  });
});

describe('gemm: sgemmReference', () => {
  it('matches the float64 loop', () => {
    for (const [ta, tb] of TRANS) {
      for (const [M, N, K] of [
        [1, 1, 1],
        [7, 33, 17],
        [64, 10, 100],
      ] as Array<[number, number, number]>) {
        for (const v of [{}, { bias: true, relu: true, beta: 0.5 }, { mask: true, alpha: -2, pad: 2 }] as MakeOpts[]) {
          const prob = makeProblem(M, N, K, { ...v, transA: ta, transB: tb });
          compare(run(gemm.sgemmReference, prob), prob, `reference ${describeProblem(prob)}`);
        }
      }
      const bprob = makeProblem(5, 9, 12, { transA: ta, transB: tb, batch: 3, bias: true, mask: true, beta: 1 });
      compare(run(gemm.sgemmReference, bprob), bprob, `reference ${describeProblem(bprob)}`);
    }
  });
});

describe('gemm: argument errors', () => {
  const base = (): GemmOpts => ({
    M: 3,
    N: 4,
    K: 5,
    alpha: 1,
    beta: 0,
    a: new Float32Array(15),
    lda: 5,
    b: new Float32Array(20),
    ldb: 4,
    c: new Float32Array(12),
    ldc: 4,
  });

  it('accepts the base call', () => {
    expect(() => gemm.sgemm(base())).not.toThrow();
  });

  const typeErrors: Array<[string, (o: GemmOpts) => unknown]> = [
    ['M', (o) => ({ ...o, M: '3' })],
    ['a', (o) => ({ ...o, a: [1, 2, 3] })],
    ['a', (o) => ({ ...o, a: new Float64Array(15) })],
    ['b', (o) => ({ ...o, b: undefined })],
    ['c', (o) => ({ ...o, c: null })],
    ['transA', (o) => ({ ...o, transA: 1 })],
    ['alpha', (o) => ({ ...o, alpha: '1' })],
    ['bias', (o) => ({ ...o, bias: new Int32Array(4) })],
    ['relu', (o) => ({ ...o, relu: 'yes' })],
    ['lda', (o) => ({ ...o, lda: {} })],
  ];
  // A short description of a bad value, for the test titles.
  const show = (v: unknown): string => {
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v === 'string') return `'${v}'`;
    if (Array.isArray(v)) return `[${v.join(', ')}]`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as Float32Array).length})`;
    return typeof v;
  };

  for (const [name, mut] of typeErrors) {
    it(`TypeError for ${name} = ${show((mut(base()) as Record<string, unknown>)[name])}`, () => {
      expect(() => gemm.sgemm(mut(base()) as GemmOpts)).toThrow(TypeError);
      expect(() => gemm.sgemm(mut(base()) as GemmOpts)).toThrow(new RegExp(name));
    });
  }

  it('TypeError for a missing or non-object options argument', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const s = gemm.sgemm as any;
    expect(() => s()).toThrow(TypeError);
    expect(() => s(5)).toThrow(TypeError);
    expect(() => s([1])).toThrow(TypeError);
    expect(() => gemm.setSimdPath(3 as unknown as string)).toThrow(TypeError);
    expect(() => gemm.setThreads('2' as unknown as number)).toThrow(TypeError);
  });

  const rangeErrors: Array<[string, (o: GemmOpts) => GemmOpts, RegExp?]> = [
    ['M', (o) => ({ ...o, M: 0 })],
    ['N', (o) => ({ ...o, N: -1 })],
    ['K', (o) => ({ ...o, K: 2.5 })],
    ['M', (o) => ({ ...o, M: Number.NaN })],
    ['K', (o) => ({ ...o, K: Number.POSITIVE_INFINITY })],
    ['lda', (o) => ({ ...o, lda: 4 })],
    ['ldb', (o) => ({ ...o, ldb: 3 })],
    ['ldc', (o) => ({ ...o, ldc: 3 })],
    ['lda', (o) => ({ ...o, transA: true, lda: 2 })],
    ['a', (o) => ({ ...o, a: new Float32Array(14) }), /a has 14 elements, needs at least 15 \(M=3, K=5, lda=5\)/],
    ['b', (o) => ({ ...o, b: new Float32Array(19) }), /b has 19 elements, needs at least 20/],
    ['c', (o) => ({ ...o, c: new Float32Array(11) }), /c has 11 elements, needs at least 12/],
    ['a', (o) => ({ ...o, lda: 6 }), /a has 15 elements, needs at least 17/],
    ['b', (o) => ({ ...o, transB: true, ldb: 6 }), /b has 20 elements, needs at least 23 \(K=5, N=4, ldb=6, transB\)/],
    ['bias', (o) => ({ ...o, bias: new Float32Array(3) }), /bias has 3 elements, needs at least 4/],
    ['mask', (o) => ({ ...o, mask: new Float32Array(11) }), /mask has 11 elements, needs at least 12/],
    ['ldm', (o) => ({ ...o, mask: new Float32Array(12), ldm: 3 })],
    ['batch', (o) => ({ ...o, batch: 0 })],
    ['a', (o) => ({ ...o, batch: 2 }), /a has 15 elements, needs at least 30/],
    ['strideC', (o) => ({ ...o, batch: 2, strideC: 5, c: new Float32Array(100), a: new Float32Array(100), b: new Float32Array(100) })],
    ['strideA', (o) => ({ ...o, strideA: -1 })],
  ];
  for (const [name, mut, re] of rangeErrors) {
    const o = mut(base());
    const changed = Object.entries(o)
      .filter(([k, v]) => (base() as unknown as Record<string, unknown>)[k] !== v && !ArrayBuffer.isView(v))
      .map(([k, v]) => `${k}=${show(v)}`);
    const arrays = (['a', 'b', 'c', 'bias', 'mask'] as const)
      .filter((k) => o[k] !== undefined && o[k]!.length !== (base()[k]?.length ?? -1))
      .map((k) => `${k}=${show(o[k])}`);
    it(`RangeError naming ${name} for ${[...changed, ...arrays].join(' ')}`, () => {
      expect(() => gemm.sgemm(o)).toThrow(RangeError);
      expect(() => gemm.sgemm(o)).toThrow(re ?? new RegExp(name));
      expect(() => gemm.sgemmReference(o)).toThrow(RangeError);
    });
  }

  it('RangeError for bad controls', () => {
    expect(() => gemm.setSimdPath('sse9')).toThrow(RangeError);
    expect(() => gemm.setThreads(0)).toThrow(RangeError);
    expect(() => gemm.setThreads(1.5)).toThrow(RangeError);
    expect(() => gemm.peakGflops(-1)).toThrow(RangeError);
  });

  it('leaves C untouched on error and keeps working afterwards', () => {
    const o = base();
    o.c.fill(7);
    expect(() => gemm.sgemm({ ...o, a: new Float32Array(2) })).toThrow(RangeError);
    expect(Array.from(o.c).every((v) => v === 7)).toBe(true);
    const prob = makeProblem(9, 9, 9, { bias: true });
    compare(run(gemm.sgemm, prob), prob, 'after errors');
  });
});
