// Tests of the run store: NPY encoding (checked against NumPy itself where it is installed),
// canonical JSON and spec hashes, atomic writes, run-directory locks (within a process and
// across processes, live and stale holders), the metrics CSV (bit-exact round trips),
// checkpoints (round trip, recovery from an interrupted swap, damaged files) and, with the
// store transpiled for child processes, kill -9 in the middle of writes.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BsxError } from '../src/errors.js';
import {
  RunStore,
  acquireLock,
  canonicalJson,
  decodeNpy,
  describeRun,
  encodeNpy,
  formatCsvNumber,
  metricsHeader,
  parseCsvNumber,
  specHash,
  writeFileAtomic,
  writeJsonAtomic,
  type Checkpoint,
  type MetricsRow,
  type NpyData,
  type RunKey,
} from '../src/store/index.js';

// ---------------------------------------------------------------------------
// Helpers

const tmpRoots: string[] = [];
function tmp(prefix = 'bsx-store-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function key(over: { seeds?: number[]; lr2?: number; data?: RunKey['data'] } = {}): RunKey {
  return {
    spec: {
      widths: [784, 1024, 1024, 10],
      seeds: over.seeds ?? [0, 1],
      phases: [
        { epochs: 1, batchSize: 1024, lr: 0.01, optimizer: 'sgd' },
        { epochs: 30, batchSize: 64, lr: over.lr2 ?? 0.01, optimizer: 'sgd' },
      ],
    },
    data: over.data ?? { name: 'mnist' },
  };
}

async function expectBsx(p: Promise<unknown> | (() => unknown), code: string, ...patterns: (string | RegExp)[]): Promise<BsxError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(BsxError);
  const be = err as BsxError;
  expect(be.code).toBe(code);
  for (const pat of patterns) expect(be.message).toMatch(pat);
  return be;
}

function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

function waitForLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m !== undefined) {
        child.stdout!.off('data', onData);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing ${re}; output: ${buf}`)));
  });
}

function isTmpName(n: string): boolean {
  return /\.tmp-\d+-[0-9a-f]+$/.test(n) || /^checkpoint\.(tmp|old)-/.test(n);
}

// ---------------------------------------------------------------------------
// NPY

const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

function sample(kind: 'f4' | 'f8' | 'i4' | 'u1', n: number): NpyData {
  switch (kind) {
    case 'f4':
      return Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.37 + 1e-7 * i);
    case 'f8':
      return Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 1e10 + 1 / (i + 3));
    case 'i4':
      return Int32Array.from({ length: n }, (_, i) => (i * 2654435761) | 0);
    case 'u1':
      return Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255);
  }
}

describe('npy', () => {
  const shapes: number[][] = [[], [0], [1], [7], [2, 3], [0, 5], [2, 3, 4], [3, 1, 2, 2]];

  it('round-trips every dtype and shape, with a 64-byte aligned header', () => {
    for (const kind of ['f4', 'f8', 'i4', 'u1'] as const) {
      for (const shape of shapes) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = sample(kind, n);
        const bytes = encodeNpy(data, shape);
        expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
        const hlen = bytes[8]! | (bytes[9]! << 8);
        expect((10 + hlen) % 64).toBe(0);
        expect(bytes[10 + hlen - 1]).toBe(0x0a);
        expect(bytes.length).toBe(10 + hlen + data.byteLength);
        const back = decodeNpy(bytes, 'x.npy');
        expect(back.shape).toEqual(shape);
        expect(back.data.constructor).toBe(data.constructor);
        expect([...back.data]).toEqual([...data]);
      }
    }
  });

  it('writes the header NumPy writes', () => {
    const bytes = encodeNpy(new Float32Array(6), [2, 3]);
    expect(bytes[8]! | (bytes[9]! << 8)).toBe(118); // 10 + 118 = 128
    const text = Buffer.from(bytes.subarray(10, 128)).toString('latin1');
    expect(text).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.padEnd(117, ' ') + '\n');
    const headerOf = (b: Uint8Array) => Buffer.from(b.subarray(10, 10 + (b[8]! | (b[9]! << 8)))).toString('latin1').trimEnd();
    expect(headerOf(encodeNpy(new Uint8Array(4), [4]))).toBe(`{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }`);
    expect(headerOf(encodeNpy(new Float64Array(1), []))).toBe(`{'descr': '<f8', 'fortran_order': False, 'shape': (), }`);
    expect(headerOf(encodeNpy(new Int32Array(0), [0, 2, 1]))).toBe(`{'descr': '<i4', 'fortran_order': False, 'shape': (0, 2, 1), }`);
  });

  it('keeps a view of a larger buffer to its own bytes', () => {
    const big = Float32Array.from({ length: 10 }, (_, i) => i);
    const back = decodeNpy(encodeNpy(big.subarray(3, 7), [4]), 'v.npy');
    expect([...back.data]).toEqual([3, 4, 5, 6]);
  });

  it('rejects a shape that does not match the data', async () => {
    await expectBsx(() => encodeNpy(new Float32Array(5), [2, 3]), 'BSX_INVALID_ARGUMENT', /6 elements but data has 5/);
    await expectBsx(() => encodeNpy(new Float32Array(0), [-1]), 'BSX_INVALID_ARGUMENT', /shape\[0\]/);
  });

  it('rejects damaged files, naming the file and the problem', async () => {
    const good = encodeNpy(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const withHeader = (h: string, body = new Uint8Array(24), version = [1, 0]) => {
      const padded = h.padEnd(Math.ceil((10 + h.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
      const out = new Uint8Array(10 + padded.length + body.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version[0]!, version[1]!]);
      out[8] = padded.length & 255;
      out[9] = padded.length >> 8;
      out.set(Buffer.from(padded, 'latin1'), 10);
      out.set(body, 10 + padded.length);
      return out;
    };
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, good.length - 1), /truncated data: shape \(2, 3\) of <f4 needs 24 bytes, found 23/],
      [good.subarray(0, 40), /truncated header/],
      [good.subarray(0, 5), /shorter than the smallest header/],
      [Uint8Array.from([...good, 0]), /1 unexpected bytes after the data/],
      [Uint8Array.from([0x92, ...good.subarray(1)]), /bad magic/],
      [withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, new Uint8Array(24), [3, 0]), /unsupported format version 3\.0/],
      [withHeader(`{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }`), /unsupported dtype '>f4'/],
      [withHeader(`{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }`), /unsupported dtype '<f2'/],
      [withHeader(`{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }`), /fortran_order is True/],
      [withHeader(`{'descr': '<f4', 'shape': (2, 3), }`), /'fortran_order' is missing/],
      [withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }`), /expected a non-negative integer/],
      [withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}`), /unexpected (key|value)/],
      [withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)`), /expected/],
    ];
    for (const [bytes, re] of cases) {
      const e = await expectBsx(() => decodeNpy(bytes, '/some/dir/w.npy'), 'BSX_RUN_CORRUPT', /^\/some\/dir\/w\.npy: /, re);
      expect(e.path).toBe('/some/dir/w.npy');
    }
    await expectBsx(() => decodeNpy(good.subarray(0, 30), 'd.npy', 'BSX_DATA_CORRUPT'), 'BSX_DATA_CORRUPT', /d\.npy/);
    // Version 2.0 (4-byte header length) and a header with py2-style longs are accepted.
    const v2h = `{'descr': '<i4', 'fortran_order': False, 'shape': (2L,), }`;
    const v2 = new Uint8Array(12 + 116 + 8);
    v2.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 116, 0, 0, 0]);
    v2.set(Buffer.from(v2h.padEnd(115, ' ') + '\n', 'latin1'), 12);
    new DataView(v2.buffer).setInt32(128, -7, true);
    new DataView(v2.buffer).setInt32(132, 9, true);
    const d2 = decodeNpy(v2, 'v2.npy');
    expect(d2.dtype).toBe('<i4');
    expect([...d2.data]).toEqual([-7, 9]);
  });

  it.runIf(hasNumpy)('is read by numpy.load and reads numpy.save output (NumPy installed)', () => {
    const dir = tmp();
    const written: { file: string; kind: string; shape: number[]; data: NpyData }[] = [];
    for (const kind of ['f4', 'f8', 'i4', 'u1'] as const) {
      for (const shape of [[], [0], [5], [2, 3], [2, 3, 4]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = sample(kind, n);
        const file = join(dir, `${kind}-${shape.join('x') || 'scalar'}.npy`);
        writeFileSync(file, encodeNpy(data, shape));
        written.push({ file, kind, shape, data });
      }
    }
    const py = `
import json, sys, numpy as np
out = []
for f in sys.argv[1:]:
    a = np.load(f, allow_pickle=False)
    out.append({'dtype': a.dtype.str, 'shape': list(a.shape), 'data': a.ravel().tolist()})
print(json.dumps(out))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py, ...written.map((w) => w.file)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { dtype: string; shape: number[]; data: number[] }[];
    written.forEach((w, i) => {
      expect(got[i]!.dtype).toBe({ f4: '<f4', f8: '<f8', i4: '<i4', u1: '|u1' }[w.kind]);
      expect(got[i]!.shape).toEqual(w.shape);
      expect(got[i]!.data).toEqual([...w.data]);
    });

    // numpy.save -> decodeNpy
    const py2 = `
import numpy as np, sys
d = sys.argv[1]
np.save(d + '/a.npy', np.arange(24, dtype='<f4').reshape(2, 3, 4) / 7)
np.save(d + '/b.npy', np.array([1.5, -2.25, 1e300], dtype='<f8'))
np.save(d + '/c.npy', np.array([[1, -2], [3, 2**31 - 1]], dtype='<i4'))
np.save(d + '/d.npy', np.zeros((0,), dtype='u1'))
np.save(d + '/e.npy', np.float32(0.1))
`;
    const r2 = spawnSync('/usr/bin/python3', ['-c', py2, dir], { encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(0);
    const a = decodeNpy(readFileSync(join(dir, 'a.npy')), 'a.npy');
    expect(a.dtype).toBe('<f4');
    expect(a.shape).toEqual([2, 3, 4]);
    expect([...a.data]).toEqual([...Float32Array.from({ length: 24 }, (_, i) => Math.fround(i) / 7)].map((x) => Math.fround(x)));
    const b = decodeNpy(readFileSync(join(dir, 'b.npy')), 'b.npy');
    expect(b.dtype).toBe('<f8');
    expect([...b.data]).toEqual([1.5, -2.25, 1e300]);
    const c = decodeNpy(readFileSync(join(dir, 'c.npy')), 'c.npy');
    expect(c.shape).toEqual([2, 2]);
    expect([...c.data]).toEqual([1, -2, 3, 2 ** 31 - 1]);
    const d = decodeNpy(readFileSync(join(dir, 'd.npy')), 'd.npy');
    expect(d.dtype).toBe('|u1');
    expect(d.shape).toEqual([0]);
    const e = decodeNpy(readFileSync(join(dir, 'e.npy')), 'e.npy');
    expect(e.shape).toEqual([]);
    expect(e.data[0]).toBe(Math.fround(0.1));
  });

  it.skipIf(hasNumpy)('numpy cross-check skipped: /usr/bin/python3 cannot import numpy', () => {
    console.warn('store.test: NumPy is not installed for /usr/bin/python3; the numpy.load/numpy.save cross-check was skipped');
  });
});

// ---------------------------------------------------------------------------
// Canonical JSON and hashes

describe('canonicalJson and specHash', () => {
  it('sorts keys, has no whitespace and writes numbers as JSON does', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x"y'], c: { z: 0.1, y: -0, x: 1e21 } })).toBe(
      '{"a":[true,null,"x\\"y"],"b":1,"c":{"x":1e+21,"y":0,"z":0.1}}',
    );
    expect(canonicalJson(Object.assign(Object.create(null) as object, { b: 2, a: 1 }))).toBe('{"a":1,"b":2}');
  });

  it('is stable across key order and matches a hash computed elsewhere (Python hashlib)', () => {
    const k = key();
    const reordered = {
      data: { name: 'mnist' },
      spec: {
        phases: k.spec.phases.map((p) => ({ optimizer: p.optimizer, lr: p.lr, batchSize: p.batchSize, epochs: p.epochs })),
        seeds: [0, 1],
        widths: [784, 1024, 1024, 10],
      },
    };
    expect(specHash(reordered)).toBe(specHash(k));
    // json.dumps(k, sort_keys=True, separators=(',', ':')) -> sha256 -> first 16 hex digits
    expect(specHash(k)).toBe('6f20d200843eb32f');
    expect(specHash(k)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('differs when any field changes', () => {
    const base = specHash(key());
    const variants: RunKey[] = [
      key({ seeds: [0, 2] }),
      key({ seeds: [1, 0] }),
      key({ lr2: 0.011 }),
      key({ data: { name: 'fashion-mnist' } }),
      key({ data: { name: 'mnist', trainLimit: 1000 } }),
      key({ data: { name: 'mnist', testLimit: 1000 } }),
      { ...key(), spec: { ...key().spec, widths: [784, 512, 10] } },
      { ...key(), spec: { ...key().spec, phases: [key().spec.phases[0]!] } },
      { ...key(), spec: { ...key().spec, phases: key().spec.phases.map((p) => ({ ...p, optimizer: 'adam' as const })) } },
      { ...key(), spec: { ...key().spec, phases: key().spec.phases.map((p, i) => ({ ...p, epochs: p.epochs + i })) } },
      { ...key(), spec: { ...key().spec, phases: key().spec.phases.map((p, i) => ({ ...p, batchSize: p.batchSize + i })) } },
    ];
    const hashes = variants.map(specHash);
    for (const h of hashes) expect(h).not.toBe(base);
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('rejects values JSON cannot carry, naming where they are', async () => {
    await expectBsx(() => canonicalJson({ a: { b: undefined } }), 'BSX_INVALID_ARGUMENT', /\$\.a\.b is undefined/);
    await expectBsx(() => canonicalJson({ a: [1, NaN] }), 'BSX_INVALID_ARGUMENT', /\$\.a\[1\] is NaN/);
    await expectBsx(() => canonicalJson({ x: Infinity }), 'BSX_INVALID_ARGUMENT', /\$\.x is Infinity/);
    await expectBsx(() => canonicalJson({ f: () => 1 }), 'BSX_INVALID_ARGUMENT', /\$\.f is a function/);
    await expectBsx(() => canonicalJson({ d: new Date(0) }), 'BSX_INVALID_ARGUMENT', /\$\.d is an instance of Date/);
    await expectBsx(() => canonicalJson({ n: 1n }), 'BSX_INVALID_ARGUMENT', /bigint/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    await expectBsx(() => canonicalJson(cyc), 'BSX_INVALID_ARGUMENT', /circular/);
    // The same object twice (not a cycle) is fine.
    const shared = { v: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"v":1},"b":{"v":1}}');
  });
});

// ---------------------------------------------------------------------------
// Atomic writes

describe('writeFileAtomic', () => {
  it('writes and replaces a large file, leaving no temporary file', async () => {
    const dir = tmp();
    const target = join(dir, 'big.bin');
    const a = new Uint8Array(24 << 20).fill(0x61);
    const b = new Uint8Array(16 << 20).fill(0x62);
    await writeFileAtomic(target, a);
    expect(readFileSync(target).equals(Buffer.from(a))).toBe(true);
    await writeFileAtomic(target, b);
    expect(readFileSync(target).equals(Buffer.from(b))).toBe(true);
    await writeJsonAtomic(join(dir, 'x.json'), { z: 1, a: [1, 2] });
    expect(JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8'))).toEqual({ z: 1, a: [1, 2] });
    expect(readdirSync(dir).sort()).toEqual(['big.bin', 'x.json']);
  });

  it('leaves nothing behind when the write fails', async () => {
    const dir = tmp();
    await expect(writeFileAtomic(join(dir, 'missing', 'f.txt'), 'x')).rejects.toThrow(/ENOENT/);
    mkdirSync(join(dir, 'adir'));
    await expect(writeFileAtomic(join(dir, 'adir'), 'x')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['adir']);
    expect(readdirSync(join(dir, 'adir'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The run directory

describe('RunStore: directory, spec.json, summary, exports', () => {
  it('names the directory by the key hash and writes spec.json with a description', async () => {
    const root = tmp();
    const store = new RunStore(root);
    const k = key();
    expect(store.runDir(k)).toBe(join(root, 'runs', specHash(k)));
    expect(describeRun(k)).toBe('b1024x1@0.01 -> b64x30@0.01, sgd, seeds 0,1, widths 784-1024-1024-10, mnist');
    expect(
      describeRun({
        spec: { ...k.spec, phases: [{ epochs: 2, batchSize: 32, lr: 0.001, optimizer: 'adam' }, k.spec.phases[1]!] },
        data: { name: 'mnist', trainLimit: 1000, testLimit: 500 },
      }),
    ).toBe('b32x2@0.001 adam -> b64x30@0.01 sgd, seeds 0,1, widths 784-1024-1024-10, mnist (train 1000, test 500)');

    const h = await store.open(k);
    expect(h.dir).toBe(store.runDir(k));
    const spec = JSON.parse(readFileSync(join(h.dir, 'spec.json'), 'utf8')) as Record<string, unknown>;
    expect(spec.spec).toEqual(k.spec);
    expect(spec.data).toEqual(k.data);
    expect(spec.hash).toBe(specHash(k));
    expect(spec.description).toBe(describeRun(k));
    expect(existsSync(join(h.dir, 'lock'))).toBe(true);
    h.release();
    h.release(); // idempotent
    expect(existsSync(join(h.dir, 'lock'))).toBe(false);
    await expectBsx(h.readMetrics(), 'BSX_INVALID_ARGUMENT', /released/);

    // Same key, different key order and an undefined optional field: the same run.
    const again = await store.open({ data: { name: 'mnist', trainLimit: undefined }, spec: { ...k.spec } });
    expect(again.dir).toBe(h.dir);
    again.release();
    expect(readdirSync(join(root, 'runs'))).toHaveLength(1);
  });

  it('requires explicit widths in the key', async () => {
    const store = new RunStore(tmp());
    const k = key();
    delete k.spec.widths;
    await expectBsx(store.open(k), 'BSX_INVALID_ARGUMENT', /widths/);
    await expectBsx(store.open({ ...key(), data: { name: 'mnist', trainLimit: 0 } }), 'BSX_INVALID_ARGUMENT', /trainLimit/);
  });

  it('refuses a spec.json that does not match the key', async () => {
    const store = new RunStore(tmp());
    const k = key();
    const h = await store.open(k);
    const file = join(h.dir, 'spec.json');
    h.release();
    const spec = JSON.parse(readFileSync(file, 'utf8')) as { spec: { seeds: number[] } };
    spec.spec.seeds = [0, 1, 2];
    writeFileSync(file, JSON.stringify(spec));
    const e = await expectBsx(store.open(k), 'BSX_RUN_CORRUPT', file, /does not match/, /seeds 0,1,2/);
    expect(e.path).toBe(file);
    expect(existsSync(join(h.dir, 'lock'))).toBe(false); // the lock was given back
    writeFileSync(file, '{"spec": ');
    await expectBsx(store.open(k), 'BSX_RUN_CORRUPT', file, /not valid JSON/);
  });

  it('writes summary.json only when told, keeping non-finite numbers', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    expect(await h.finished()).toBeUndefined();
    await h.writeSummary({ seeds: [{ seed: 0, loss: NaN, big: Infinity, small: -Infinity, acc: 0.98 }], backend: 'cpu' });
    expect(await h.finished()).toEqual({ seeds: [{ seed: 0, loss: NaN, big: Infinity, small: -Infinity, acc: 0.98 }], backend: 'cpu' });
    h.release();
  });

  it('exports tensors as .npy files', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    const w = Float32Array.from({ length: 6 }, (_, i) => i / 3);
    const dir = await h.exportTensors('epoch-3', [
      { name: 'seed0.W1', data: w, shape: [2, 3] },
      { name: 'seed0.b1', data: new Float32Array([1, 2]), shape: [2] },
    ]);
    expect(dir).toBe(join(h.dir, 'exports', 'epoch-3'));
    expect(readdirSync(dir).sort()).toEqual(['seed0.W1.npy', 'seed0.b1.npy']);
    const back = decodeNpy(readFileSync(join(dir, 'seed0.W1.npy')), 'w');
    expect(back.shape).toEqual([2, 3]);
    expect([...back.data]).toEqual([...w]);
    await expectBsx(h.exportTensors('../evil', []), 'BSX_INVALID_ARGUMENT', /name/);
    await expectBsx(h.exportTensors('ok', [{ name: 'a/b', data: w, shape: [6] }]), 'BSX_INVALID_ARGUMENT', /name/);
    await expectBsx(h.exportTensors('ok', [{ name: 'a', data: w, shape: [5] }]), 'BSX_INVALID_ARGUMENT', /6/);
    h.release();
  });
});

// ---------------------------------------------------------------------------
// Metrics

function randomDouble(): number {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setUint32(0, (Math.random() * 2 ** 32) >>> 0);
  dv.setUint32(4, (Math.random() * 2 ** 32) >>> 0);
  return dv.getFloat64(0);
}

function mrow(seed: number, epoch: number, layers = 3, v: () => number = Math.random): MetricsRow {
  return {
    seed,
    epoch,
    phase: epoch > 2 ? 1 : 0,
    trainLoss: v(),
    trainAcc: v(),
    testLoss: v(),
    testAcc: v(),
    weightDistance: v(),
    biasDistance: v(),
    weightNorm: v(),
    biasNorm: v(),
    cosine: Array.from({ length: layers }, v),
    samplesPerSec: v(),
    diverged: epoch % 2 === 0,
  };
}

function expectSameRows(a: MetricsRow[], b: MetricsRow[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((r, i) => {
    const s = b[i]!;
    for (const k of Object.keys(r) as (keyof MetricsRow)[]) {
      if (k === 'cosine') {
        expect(r.cosine.length).toBe(s.cosine.length);
        r.cosine.forEach((c, j) => expect(Object.is(c, s.cosine[j]), `row ${i} cosine[${j}]: ${c} vs ${s.cosine[j]}`).toBe(true));
      } else {
        expect(Object.is(r[k], s[k]), `row ${i} ${k}: ${String(r[k])} vs ${String(s[k])}`).toBe(true);
      }
    }
  });
}

describe('RunHandle metrics', () => {
  it('formats numbers so that they parse back to the same double', () => {
    const specials = [NaN, Infinity, -Infinity, 0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, 0.1, 1 / 3, 1e21, 123456789012345680000];
    for (let i = 0; i < 20000; i++) specials.push(randomDouble());
    for (const x of specials) expect(Object.is(parseCsvNumber(formatCsvNumber(x)), x)).toBe(true);
    expect([NaN, Infinity, -Infinity, -0].map(formatCsvNumber)).toEqual(['nan', 'inf', '-inf', '-0']);
    for (const bad of ['', ' ', 'abc', '1.2.3', '0x10', '1e', '--1']) expect(parseCsvNumber(bad)).toBeUndefined();
  });

  it('round-trips rows bit-exactly, with the documented header', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    expect(await h.readMetrics()).toEqual([]);
    const specials = [NaN, Infinity, -Infinity, -0, 5e-324, 1e308, 0.1];
    let si = 0;
    const rows1 = [mrow(0, 1, 3, () => specials[si++ % specials.length]!), mrow(1, 1, 3, randomDouble)];
    const rows2 = [mrow(0, 2, 3, randomDouble), mrow(1, 2, 3, randomDouble)];
    await h.appendMetrics(rows1);
    await h.appendMetrics(rows2);
    await h.appendMetrics([]);
    const text = readFileSync(join(h.dir, 'metrics.csv'), 'utf8');
    const header =
      'seed,epoch,phase,train_loss,train_acc,test_loss,test_acc,weight_distance,bias_distance,weight_norm,bias_norm,' +
      'cosine_l1,cosine_l2,cosine_l3,samples_per_sec,diverged';
    expect(text.split('\n')[0]).toBe(header);
    expect(metricsHeader(3).join(',')).toBe(header);
    expect(text.split('\n')[1]).toBe('0,1,0,nan,inf,-inf,-0,5e-324,1e+308,0.1,nan,inf,-inf,-0,5e-324,false');
    expect(text.endsWith('\n')).toBe(true);
    expectSameRows(await h.readMetrics(), [...rows1, ...rows2]);
    expect(readdirSync(h.dir).filter(isTmpName)).toEqual([]);
    h.release();
  });

  it('rejects rows that do not fit the file', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    await h.appendMetrics([mrow(0, 1)]);
    await expectBsx(h.appendMetrics([mrow(0, 2, 2)]), 'BSX_INVALID_ARGUMENT', /2 cosine values, expected 3/);
    await expectBsx(h.appendMetrics([mrow(0, 1)]), 'BSX_INVALID_ARGUMENT', /seed 0 epoch 1 is already/);
    await expectBsx(h.appendMetrics([mrow(0, 2), mrow(0, 2)]), 'BSX_INVALID_ARGUMENT', /seed 0 epoch 2 is already/);
    await expectBsx(h.appendMetrics([{ ...mrow(0, 2), epoch: 1.5 }]), 'BSX_INVALID_ARGUMENT', /epoch must be an integer/);
    expect(await h.readMetrics()).toHaveLength(1);
    h.release();
  });

  it('truncates to an epoch atomically', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    const rows: MetricsRow[] = [];
    for (let e = 1; e <= 5; e++) for (const s of [0, 1]) rows.push(mrow(s, e, 3, randomDouble));
    await h.appendMetrics(rows);
    expect(await h.truncateMetrics(5)).toBe(0);
    expect(await h.truncateMetrics(3)).toBe(4);
    expectSameRows(await h.readMetrics(), rows.slice(0, 6));
    expect(await h.truncateMetrics(0)).toBe(6);
    expect(await h.readMetrics()).toEqual([]);
    expect(readFileSync(join(h.dir, 'metrics.csv'), 'utf8')).toBe(metricsHeader(3).join(',') + '\n');
    await h.appendMetrics([mrow(0, 1)]); // the header stays usable
    expect(readdirSync(h.dir).filter(isTmpName)).toEqual([]);
    h.release();
  });

  it('reports a damaged CSV with the file and line', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    await h.appendMetrics([mrow(0, 1), mrow(0, 2)]);
    const file = join(h.dir, 'metrics.csv');
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, [lines[0], lines[1], lines[2]!.replace(/,[^,]*,/, ',x,')].join('\n'));
    await expectBsx(h.readMetrics(), 'BSX_RUN_CORRUPT', file, /line 3/, /"x" is not a number/);
    writeFileSync(file, [lines[0], lines[1]!.split(',').slice(0, 5).join(',')].join('\n'));
    await expectBsx(h.readMetrics(), 'BSX_RUN_CORRUPT', /line 2: 5 fields, expected 16/);
    writeFileSync(file, 'seed,epoch\n');
    await expectBsx(h.readMetrics(), 'BSX_RUN_CORRUPT', /line 1: unexpected header/);
    h.release();
  });
});

// ---------------------------------------------------------------------------
// Checkpoints

function checkpoint(epoch: number, opts: { big?: boolean } = {}): Checkpoint {
  const n = opts.big ? 1 << 18 : 12;
  const tensors: Checkpoint['tensors'] = [];
  for (const slot of ['param', 'snapshot', 'adamM', 'adamV'] as const) {
    for (let index = 0; index < 2; index++) {
      const data = Float32Array.from({ length: n }, (_, i) => epoch * 1000 + index * 100 + i / 7);
      tensors.push({ slot, index, shape: index === 0 ? [n / 4, 4] : [n], data });
    }
  }
  return {
    epoch,
    phase: epoch > 2 ? 1 : 0,
    tensors,
    optimizerSteps: [epoch * 59, epoch * 59],
    optimizer: 'adam',
    rng: { nextEpoch: epoch + 1 },
    extra: { note: `after epoch ${epoch}`, lrs: [0.01, 0.001] },
  };
}

describe('RunHandle checkpoints', () => {
  it('saves and loads, replacing the previous checkpoint', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    expect(await h.loadCheckpoint()).toBeUndefined();
    await h.saveCheckpoint(checkpoint(1));
    await h.saveCheckpoint(checkpoint(2));
    expect(await h.loadCheckpoint()).toEqual(checkpoint(2));
    const files = readdirSync(join(h.dir, 'checkpoint')).sort();
    expect(files).toContain('state.json');
    expect(files).toContain('param-0.npy');
    expect(files).toContain('adamV-1.npy');
    expect(files).toHaveLength(9);
    expect(readdirSync(h.dir).filter(isTmpName)).toEqual([]);
    const noExtra = { ...checkpoint(3), extra: undefined };
    delete noExtra.extra;
    await h.saveCheckpoint(noExtra);
    expect(await h.loadCheckpoint()).toEqual(noExtra);
    h.release();
  });

  it('rejects a bad checkpoint before writing anything', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    const cp = checkpoint(1);
    cp.tensors[0]!.shape = [5];
    await expectBsx(h.saveCheckpoint(cp), 'BSX_INVALID_ARGUMENT', /tensors\[0\]: shape \[5\] holds 5 values but data has 12/);
    const cp2 = checkpoint(1);
    cp2.tensors[1]!.index = 0;
    await expectBsx(h.saveCheckpoint(cp2), 'BSX_INVALID_ARGUMENT', /appears twice/);
    expect(readdirSync(h.dir).filter((n) => n.startsWith('checkpoint'))).toEqual([]);
    h.release();
  });

  it('recovers from a swap interrupted after the old checkpoint was moved away', async () => {
    const store = new RunStore(tmp());
    let h = await store.open(key());
    await h.saveCheckpoint(checkpoint(4));
    h.release();
    // As if killed between "rename checkpoint -> checkpoint.old-*" and "rename tmp -> checkpoint".
    renameSync(join(h.dir, 'checkpoint'), join(h.dir, 'checkpoint.old-12345-0123456789ab'));
    h = await store.open(key());
    expect(await h.loadCheckpoint()).toEqual(checkpoint(4));
    expect(readdirSync(h.dir).filter((n) => n.startsWith('checkpoint'))).toEqual(['checkpoint']);
    h.release();
  });

  it('prefers the newest complete side directory and skips damaged or incomplete ones', async () => {
    const store = new RunStore(tmp());
    const stage = tmp();
    const dir = store.runDir(key());
    for (const e of [7, 8, 9]) {
      const h = await store.open(key());
      await h.saveCheckpoint(checkpoint(e));
      h.release();
      renameSync(join(dir, 'checkpoint'), join(stage, `c${e}`));
    }
    // As if interrupted mid-swap: the old checkpoint (7) moved away, the new one (8) complete
    // but not yet renamed into place; plus a damaged one (9) and one without state.json.
    renameSync(join(stage, 'c7'), join(dir, 'checkpoint.old-4-dddddddddddd'));
    renameSync(join(stage, 'c8'), join(dir, 'checkpoint.tmp-5-eeeeeeeeeeee'));
    renameSync(join(stage, 'c9'), join(dir, 'checkpoint.tmp-6-ffffffffffff'));
    const bad = join(dir, 'checkpoint.tmp-6-ffffffffffff', 'param-0.npy');
    writeFileSync(bad, readFileSync(bad).subarray(0, 100));
    mkdirSync(join(dir, 'checkpoint.tmp-7-abababababab'));
    writeFileSync(join(dir, 'checkpoint.tmp-7-abababababab', 'param-0.npy'), encodeNpy(new Float32Array(3), [3]));
    const h = await store.open(key());
    expect(await h.loadCheckpoint()).toEqual(checkpoint(8));
    expect(readdirSync(dir).filter((n) => n.startsWith('checkpoint'))).toEqual(['checkpoint']);
    h.release();
  });

  it('reports a damaged side directory when it is the only complete one', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    await h.saveCheckpoint(checkpoint(3));
    const side = join(h.dir, 'checkpoint.old-9-999999999999');
    renameSync(join(h.dir, 'checkpoint'), side);
    rmSync(join(side, 'adamV-1.npy'));
    await expectBsx(h.loadCheckpoint(), 'BSX_RUN_CORRUPT', join(side, 'adamV-1.npy'), /missing/);
    h.release();
  });

  it('returns undefined when only incomplete side directories exist, and removes them', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    mkdirSync(join(h.dir, 'checkpoint.tmp-7-abcdefabcdef'));
    writeFileSync(join(h.dir, 'checkpoint.tmp-7-abcdefabcdef', 'state.json'), '{"format": 1, "ep');
    expect(await h.loadCheckpoint()).toBeUndefined();
    expect(readdirSync(h.dir).filter((n) => n.startsWith('checkpoint'))).toEqual([]);
    h.release();
  });

  it('rejects damaged checkpoint files, naming the file', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    const cpDir = join(h.dir, 'checkpoint');
    const damage = async (file: string, fn: (b: Buffer) => Buffer | undefined, ...patterns: (string | RegExp)[]) => {
      await h.saveCheckpoint(checkpoint(1));
      const path = join(cpDir, file);
      const out = fn(readFileSync(path));
      if (out === undefined) rmSync(path);
      else writeFileSync(path, out);
      const e = await expectBsx(h.loadCheckpoint(), 'BSX_RUN_CORRUPT', path, ...patterns);
      expect(e.path).toBe(path);
    };
    await damage('param-1.npy', (b) => b.subarray(0, b.length - 10), /truncated data/);
    await damage('adamM-0.npy', () => undefined, /missing/);
    await damage('snapshot-0.npy', () => Buffer.from(encodeNpy(new Float32Array(12), [12])), /shape \(12\) differs from \(3, 4\)/);
    await damage('snapshot-1.npy', (b) => {
      const c = Buffer.from(b);
      c[c.length - 1]! ^= 1;
      return c;
    }, /SHA-256/);
    await damage('param-0.npy', () => Buffer.from(encodeNpy(new Float64Array(12), [3, 4])), /dtype <f8/);
    await damage('state.json', (b) => b.subarray(0, 20), /not valid JSON/);
    await damage('state.json', () => undefined, /missing/);
    h.release();
  });
});

// ---------------------------------------------------------------------------
// Locks

describe('locks', () => {
  it('refuses a second open without wait, naming the holder', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key());
    const e = await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', `run directory ${h.dir} is in use by process ${process.pid} since `, /wait for it or stop it/);
    expect(e.path).toBe(join(h.dir, 'lock'));
    const info = JSON.parse(readFileSync(join(h.dir, 'lock'), 'utf8')) as Record<string, unknown>;
    expect(info.pid).toBe(process.pid);
    expect(info.hostname).toBe(hostname());
    expect(new Date(info.startedAt as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
    await expectBsx(store.open(key(), { wait: true, timeoutMs: 150, pollMs: 20 }), 'BSX_RUN_LOCKED', /gave up after waiting/);
    const ac = new AbortController();
    const pending = store.open(key(), { wait: true, pollMs: 20, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expectBsx(pending, 'BSX_CANCELLED');
    h.release();
    (await store.open(key())).release();
  });

  it('takes over the lock of a process that is gone', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    const child = spawn(process.execPath, ['-e', '']);
    await waitExit(child);
    const dead = child.pid!;
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: dead, hostname: hostname(), startedAt: '2020-01-01T00:00:00.000Z' }));
    const h = await store.open(key());
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(dir).filter((n) => n.startsWith('lock'))).toEqual(['lock']);
    h.release();
  });

  it('does not take over a lock held on another host', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 999999999, hostname: `not-${hostname()}`, startedAt: '2020-01-01T00:00:00.000Z' }));
    await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', /process 999999999 on host not-/);
  });

  it('waits for a live holder in another process; takes over once it is gone', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 800)']);
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: new Date().toISOString() }));
    await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', `in use by process ${child.pid} since`);
    const t0 = Date.now();
    const h = await store.open(key(), { wait: true, pollMs: 25 });
    expect(child.exitCode).toBe(0); // it had exited when the lock was taken over
    expect(Date.now() - t0).toBeGreaterThan(300);
    h.release();
  });

  it('waits for a live holder in another process to release', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    const lockPath = join(dir, 'lock');
    const script = `
      const fs = require('fs'), os = require('os');
      const p = ${JSON.stringify(lockPath)};
      const fd = fs.openSync(p, 'wx');
      fs.writeSync(fd, JSON.stringify({ pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() }));
      fs.closeSync(fd);
      console.log('locked');
      setTimeout(() => { fs.unlinkSync(p); console.log('released'); setTimeout(() => {}, 3000); }, 500);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForLine(child, /^locked$/);
    await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', `process ${child.pid}`);
    const t0 = Date.now();
    const h = await store.open(key(), { wait: true, pollMs: 25 });
    expect(Date.now() - t0).toBeGreaterThan(250);
    expect(child.exitCode).toBeNull(); // released, not dead
    h.release();
    child.kill();
    await waitExit(child);
  });

  it('serialises openers within a process, also when taking over a stale lock together', async () => {
    for (const stale of [false, true]) {
      const store = new RunStore(tmp());
      const dir = store.runDir(key());
      mkdirSync(dir, { recursive: true });
      if (stale) {
        const child = spawn(process.execPath, ['-e', '']);
        await waitExit(child);
        writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: new Date().toISOString() }));
      }
      let inside = 0;
      let maxInside = 0;
      let done = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const h = await store.open(key(), { wait: true, pollMs: 2 });
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(5);
          inside--;
          done++;
          h.release();
        }),
      );
      expect(done).toBe(8);
      expect(maxInside).toBe(1);
      expect(readdirSync(dir).filter((n) => n.startsWith('lock'))).toEqual([]);
    }
  });

  it('treats an unreadable young lock file as held, an old one as stale', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'lock'), '');
    const t0 = Date.now();
    await expectBsx(acquireLock(dir), 'BSX_RUN_LOCKED', /its lock file is being written/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'lock'), old, old);
    const l = await acquireLock(dir);
    expect(l.info.pid).toBe(process.pid);
    l.release();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('respects the lease of a lock from another host while it is fresh, breaks it once expired', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, 'lock');
    const foreign = (extra: Record<string, unknown> = {}) =>
      JSON.stringify({ pid: 4242, hostname: 'node-17.cluster', startedAt: '2030-01-01T00:00:00.000Z', token: 'theirs', leaseMs: 2000, ...extra });
    writeFileSync(lock, foreign());
    // its pid means nothing here (no such process, or another one): only the lease counts
    await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', /in use by process 4242 on host node-17\.cluster since .* \(lease of 2 s renewed 0 s ago\)/);
    const past = new Date(Date.now() - 5000);
    utimesSync(lock, past, past);
    const h = await store.open(key());
    const mine = JSON.parse(readFileSync(lock, 'utf8')) as Record<string, unknown>;
    expect(mine.pid).toBe(process.pid);
    expect(mine.hostname).toBe(hostname());
    expect(mine.leaseMs).toBeGreaterThan(0);
    h.release();
    // the same host name but another process namespace (another container): judged by the lease too
    const gone = spawn(process.execPath, ['-e', '']);
    await waitExit(gone);
    writeFileSync(lock, foreign({ pid: gone.pid, hostname: hostname(), pidNamespace: 'another-container' }));
    await expectBsx(store.open(key()), 'BSX_RUN_LOCKED', `in use by process ${gone.pid} since`);
    utimesSync(lock, past, past);
    (await store.open(key())).release();
  });

  it('waits while the holder on another host renews its lease, takes over when it stops', async () => {
    const store = new RunStore(tmp());
    const dir = store.runDir(key());
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, 'lock');
    writeFileSync(lock, JSON.stringify({ pid: 4242, hostname: 'node-17.cluster', startedAt: new Date().toISOString(), token: 'theirs', leaseMs: 400 }));
    // the "other host" renews its lease every 100 ms for 1.2 s
    const script = `const fs = require('fs'); const t = setInterval(() => { const n = new Date(); fs.utimesSync(${JSON.stringify(lock)}, n, n); }, 100); setTimeout(() => clearInterval(t), 1200);`;
    const child = spawn(process.execPath, ['-e', script]);
    const t0 = Date.now();
    await expectBsx(store.open(key(), { wait: true, pollMs: 20, timeoutMs: 800 }), 'BSX_RUN_LOCKED', /gave up after waiting/);
    const h = await store.open(key(), { wait: true, pollMs: 20 });
    // taken only after the renewals stopped (1.2 s) and the lease ran out (0.4 s)
    expect(Date.now() - t0).toBeGreaterThan(1400);
    h.release();
    await waitExit(child);
    // a holder whose clock runs ahead (mtime in the future) is broken once this process has seen
    // the file unchanged for a lease, whatever the clocks say
    writeFileSync(lock, JSON.stringify({ pid: 4242, hostname: 'node-17.cluster', startedAt: new Date().toISOString(), token: 'theirs', leaseMs: 300 }));
    const future = new Date(Date.now() + 3_600_000);
    utimesSync(lock, future, future);
    const t1 = Date.now();
    (await store.open(key(), { wait: true, pollMs: 20 })).release();
    expect(Date.now() - t1).toBeGreaterThanOrEqual(280);
  }, 20_000);

  it('renews its own lease, and stops writing once another process broke it', async () => {
    const store = new RunStore(tmp());
    const h = await store.open(key(), { leaseMs: 200 });
    const lock = join(h.dir, 'lock');
    const past = new Date(Date.now() - 60_000);
    utimesSync(lock, past, past);
    await sleep(150);
    expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(1000); // touched again
    expect(h.lost).toBe(false);
    let told = false;
    h.onLost(() => (told = true));
    // another process judged it expired and took it over
    writeFileSync(lock, JSON.stringify({ pid: 4242, hostname: 'node-17.cluster', startedAt: new Date().toISOString(), token: 'theirs', leaseMs: 60_000 }));
    await sleep(150);
    expect(h.lost).toBe(true);
    expect(told).toBe(true);
    await expectBsx(h.appendMetrics([]), 'BSX_RUN_LOCKED', /broke this process's lease/);
    h.release();
    expect(JSON.parse(readFileSync(lock, 'utf8')).token).toBe('theirs'); // not removed: not ours
  });

  it('release() leaves a lock that is no longer its own', async () => {
    const dir = tmp();
    const l = await acquireLock(dir);
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: 'x', token: 'other' }));
    l.release();
    expect(existsSync(join(dir, 'lock'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Crashes and concurrent processes: the store transpiled to plain JS, run in children.

describe('child processes (kill -9, concurrency)', () => {
  let lib = '';
  let work = '';
  beforeAll(() => {
    work = tmp('bsx-store-child-');
    const src = fileURLToPath(new URL('../src/', import.meta.url));
    const out = join(work, 'lib');
    for (const rel of ['errors.ts', 'io/npy.ts', 'store/atomic.ts', 'store/hash.ts', 'store/lock.ts', 'store/run-store.ts', 'store/validate.ts', 'store/index.ts']) {
      const r = ts.transpileModule(readFileSync(join(src, rel), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
        fileName: rel,
      });
      const dest = join(out, rel.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, r.outputText);
    }
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    lib = pathToFileURL(join(out, 'store', 'index.js')).href;
  });

  function runChild(code: string, args: string[]): ChildProcess {
    const file = join(work, `child-${Math.random().toString(16).slice(2)}.mjs`);
    writeFileSync(file, code);
    return spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async function finish(child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await waitExit(child);
    return { code, out, err };
  }

  it('survives kill -9 at random moments of a training-like loop', async () => {
    const root = join(work, 'killroot');
    const code = `
      import { RunStore } from ${JSON.stringify(lib)};
      const [root, mode] = process.argv.slice(2);
      const key = ${JSON.stringify(key())};
      const fail = (m) => { console.log('FAIL ' + m); process.exit(3); };
      const h = await new RunStore(root).open(key, { wait: true, pollMs: 10 });
      const cp = await h.loadCheckpoint();
      const start = cp ? cp.epoch : 0;
      if (cp) {
        if (cp.tensors.length !== 2 || cp.rng.nextEpoch !== start + 1) fail('bad checkpoint state');
        for (const t of cp.tensors) if (!t.data.every((v) => v === start)) fail('checkpoint data of another epoch');
      }
      await h.truncateMetrics(start);
      const rows = await h.readMetrics();
      for (const s of [0, 1]) {
        const eps = rows.filter((r) => r.seed === s).map((r) => r.epoch);
        if (eps.join() !== Array.from({ length: start }, (_, i) => i + 1).join()) fail('metrics epochs ' + eps.join() + ' vs checkpoint ' + start);
      }
      console.log('resumed ' + start);
      if (mode === 'check') { h.release(); process.exit(0); }
      const n = 1 << 19;
      for (let e = start + 1; ; e++) {
        const row = (seed) => ({ seed, epoch: e, phase: 0, trainLoss: e / 3, trainAcc: 0.5, testLoss: NaN, testAcc: 0.25,
          weightDistance: 1, biasDistance: 2, weightNorm: 3, biasNorm: 4, cosine: [1 / e, 0.5, -0], samplesPerSec: 1e6, diverged: false });
        await h.appendMetrics([row(0), row(1)]);
        await h.saveCheckpoint({ epoch: e, phase: 0, optimizer: 'sgd', optimizerSteps: [e, e], rng: { nextEpoch: e + 1 },
          tensors: [{ slot: 'param', index: 0, shape: [n], data: new Float32Array(n).fill(e) },
                    { slot: 'snapshot', index: 0, shape: [n / 2, 2], data: new Float32Array(n).fill(e) }] });
        console.log('epoch ' + e);
      }
    `;
    let lastResumed = -1;
    for (let i = 0; i < 12; i++) {
      const child = runChild(code, [root, 'train']);
      const done = finish(child);
      await waitForLine(child, /^epoch \d+$/);
      await sleep(Math.random() * 150);
      child.kill('SIGKILL');
      const r = await done;
      expect(r.out, r.err).not.toMatch(/FAIL/);
      const m = /resumed (\d+)/.exec(r.out);
      expect(m, r.out + r.err).not.toBeNull();
      const resumed = Number(m![1]);
      expect(resumed).toBeGreaterThanOrEqual(lastResumed);
      lastResumed = resumed;
    }
    const check = await finish(runChild(code, [root, 'check']));
    expect(check.code, check.out + check.err).toBe(0);
    expect(Number(/resumed (\d+)/.exec(check.out)![1])).toBeGreaterThanOrEqual(lastResumed);
    // And in this process: the run opens, its checkpoint loads and no temporary file is left.
    const h = await new RunStore(root).open(key());
    const cp = await h.loadCheckpoint();
    expect(cp).toBeDefined();
    expect(readdirSync(h.dir).filter(isTmpName)).toEqual([]);
    h.release();
  });

  it('never exposes a partial file when a writer is killed', async () => {
    const target = join(work, 'atomic-target.bin');
    const code = `
      import { writeFileAtomic } from ${JSON.stringify(lib)};
      const [target] = process.argv.slice(2);
      const size = 8 << 20;
      const bufs = [Buffer.alloc(size, 0x61), Buffer.alloc(size + 4096, 0x62)];
      for (let i = 0; ; i++) { await writeFileAtomic(target, bufs[i % 2]); if (i === 0) console.log('ready'); }
    `;
    for (let i = 0; i < 8; i++) {
      const child = runChild(code, [target]);
      const done = finish(child);
      await waitForLine(child, /^ready$/);
      await sleep(Math.random() * 100);
      child.kill('SIGKILL');
      await done;
      const got = readFileSync(target);
      const ok = (got.length === 8 << 20 && got.every((b) => b === 0x61)) || (got.length === (8 << 20) + 4096 && got.every((b) => b === 0x62));
      expect(ok, `target of ${got.length} bytes is neither version`).toBe(true);
    }
  });

  it('gives the run to one process at a time', async () => {
    const root = join(work, 'race');
    const counter = join(work, 'race-counter');
    writeFileSync(counter, '0');
    const code = `
      import { RunStore } from ${JSON.stringify(lib)};
      import { readFileSync, writeFileSync } from 'node:fs';
      const [root, counter] = process.argv.slice(2);
      const store = new RunStore(root);
      for (let i = 0; i < 6; i++) {
        const h = await store.open(${JSON.stringify(key())}, { wait: true, pollMs: 3 });
        const v = Number(readFileSync(counter, 'utf8'));
        await new Promise((r) => setTimeout(r, 8));
        writeFileSync(counter, String(v + 1));
        h.release();
      }
    `;
    const results = await Promise.all(Array.from({ length: 4 }, () => finish(runChild(code, [root, counter]))));
    for (const r of results) expect(r.code, r.err).toBe(0);
    expect(readFileSync(counter, 'utf8')).toBe('24');
  });

  it('removes its lock when the process exits normally without release()', async () => {
    const root = join(work, 'exit');
    const code = `
      import { RunStore } from ${JSON.stringify(lib)};
      const h = await new RunStore(process.argv[2]).open(${JSON.stringify(key())});
      console.log(h.dir);
    `;
    const r = await finish(runChild(code, [root]));
    expect(r.code, r.err).toBe(0);
    const dir = r.out.trim();
    expect(existsSync(join(dir, 'spec.json'))).toBe(true);
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });
});
