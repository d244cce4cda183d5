// IDX file reader: parses the binary format that MNIST and Fashion-MNIST are
// shipped in, plain or gzipped, into a typed array with its shape.
//
// Format (Y. LeCun, "THE MNIST DATABASE of handwritten digits",
// http://yann.lecun.com/exdb/mnist/): a 4-byte magic number 0x00 0x00 <type>
// <ndims>, then ndims big-endian uint32 dimension sizes, then the data in
// row-major (C) order, big-endian. Type codes: 0x08 unsigned byte, 0x09 signed
// byte, 0x0B short (16-bit), 0x0C int (32-bit), 0x0D float (32-bit),
// 0x0E double (64-bit).
//
// The header is read first and fixes the file's exact size: a plain file is checked against
// it before its data is read, a gzipped one is decompressed with its output capped at that
// size (a file that expands further is refused), and a size that the file cannot hold or the
// machine cannot allocate is refused from the header alone.

import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness, totalmem } from 'node:os';
import { constants as zlibConstants, createGunzip, gunzipSync } from 'node:zlib';
import { BsxError } from '../errors.js';

/** Element types of IDX files, named after the typed array they load into. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array each IDX element type is returned as. */
export interface IdxDataTypes {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/**
 * A parsed IDX array of one element type. `data` is row-major, length = product
 * of `shape`, in host byte order; it may be a view at a non-zero byteOffset of
 * its buffer (a file's header precedes it), so use data.byteOffset/length, not
 * data.buffer alone.
 */
export interface IdxArrayOf<D extends IdxDtype> {
  dtype: D;
  shape: number[];
  data: IdxDataTypes[D];
}

/** A parsed IDX array; narrow on `dtype` to get the typed array's type. */
export type IdxArray = { [D in IdxDtype]: IdxArrayOf<D> }[IdxDtype];

interface TypeInfo {
  dtype: IdxDtype;
  /** LeCun's name for the type, used in messages. */
  idxName: string;
  size: 1 | 2 | 4 | 8;
  make: (buffer: ArrayBuffer, byteOffset: number, length: number) => IdxArray['data'];
}

/** IDX type codes (third byte of the magic number) and what they decode to. */
const TYPES: ReadonlyMap<number, TypeInfo> = new Map<number, TypeInfo>([
  [0x08, { dtype: 'uint8', idxName: 'unsigned byte', size: 1, make: (b, o, n) => new Uint8Array(b, o, n) }],
  [0x09, { dtype: 'int8', idxName: 'signed byte', size: 1, make: (b, o, n) => new Int8Array(b, o, n) }],
  [0x0b, { dtype: 'int16', idxName: 'short', size: 2, make: (b, o, n) => new Int16Array(b, o, n) }],
  [0x0c, { dtype: 'int32', idxName: 'int', size: 4, make: (b, o, n) => new Int32Array(b, o, n) }],
  [0x0d, { dtype: 'float32', idxName: 'float', size: 4, make: (b, o, n) => new Float32Array(b, o, n) }],
  [0x0e, { dtype: 'float64', idxName: 'double', size: 8, make: (b, o, n) => new Float64Array(b, o, n) }],
]);

/** The IDX type code of each dtype (the inverse of the table above). */
export const IDX_TYPE_CODES: Readonly<Record<IdxDtype, number>> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** The longest IDX header: the magic number and 255 dimensions. */
const MAX_HEADER_BYTES = 4 + 4 * 255;
/** Deflate's largest expansion: 1032 output bytes per input byte (258-byte matches in 2 bits). */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed bytes tried for the header: a short prefix first, then this many at most. */
const HEADER_PREFIXES = [512, 16384];

function hex(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function corrupt(name: string, problem: string, cause?: unknown): BsxError {
  return new BsxError('BSX_DATA_CORRUPT', `${name}: ${problem}`, {
    path: name,
    ...(cause !== undefined ? { cause } : {}),
  });
}

function isGzip(bytes: Uint8Array, name: string): boolean {
  return (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) || name.endsWith('.gz');
}

function checkGzipMagic(bytes: Uint8Array, name: string): void {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    throw corrupt(
      name,
      `corrupt gzip: the name ends in .gz but the file does not start with the gzip magic 1f 8b ` +
        `(found ${bytes.length === 0 ? 'an empty file' : hex(bytes, 2)})`,
    );
  }
}

function gzipError(name: string, err: unknown): BsxError {
  const detail = err instanceof Error ? err.message : String(err);
  return corrupt(name, `corrupt gzip: decompression failed (${detail})`, err);
}

/** An IDX header: the element type, the shape, and the exact size of the file it begins. */
interface Header {
  info: TypeInfo;
  shape: number[];
  /** Elements: the product of the shape. */
  count: number;
  headerBytes: number;
  /** Bytes of the whole file: header and data. */
  expected: number;
  /** "[60000, 28, 28] of unsigned byte", for messages. */
  shapeText: string;
}

/**
 * Parses the IDX header at the start of `bytes`. `complete`: `bytes` is the whole file, so a
 * short one is truncated; otherwise undefined is returned when more bytes are needed.
 */
function parseHeader(bytes: Uint8Array, name: string, complete: boolean): Header | undefined {
  if (bytes.length < 4) {
    if (!complete) return undefined;
    throw corrupt(
      name,
      `truncated file: ${bytes.length} bytes, too short for the 4-byte IDX magic number` +
        (bytes.length > 0 ? ` (found ${hex(bytes, bytes.length)})` : ''),
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw corrupt(
      name,
      `wrong magic number: expected 00 00 <type> <ndims>, found ${hex(bytes, 4)} (not an IDX file)`,
    );
  }
  const code = bytes[2]!;
  const info = TYPES.get(code);
  if (info === undefined) {
    throw corrupt(
      name,
      `unknown IDX type code 0x${code.toString(16).padStart(2, '0')} in the magic number ${hex(bytes, 4)} ` +
        `(known: 0x08 unsigned byte, 0x09 signed byte, 0x0b short, 0x0c int, 0x0d float, 0x0e double)`,
    );
  }
  const ndims = bytes[3]!;
  if (ndims === 0) {
    throw corrupt(name, `zero dimensions in the magic number ${hex(bytes, 4)}: an IDX array needs at least one`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    if (!complete) return undefined;
    throw corrupt(
      name,
      `truncated file: the header of ${ndims} dimensions needs ${headerBytes} bytes, found ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const dim = view.getUint32(4 + 4 * i, false);
    shape.push(dim);
    count *= dim; // exact while below 2^53; larger sizes are refused by checkDeclaredSize
  }
  const expected = headerBytes + count * info.size;
  return { info, shape, count, headerBytes, expected, shapeText: `[${shape.join(', ')}] of ${info.idxName}` };
}

function truncatedData(h: Header, name: string, found: number): BsxError {
  return corrupt(
    name,
    `truncated file: the header declares shape ${h.shapeText}, so expected ${h.expected} bytes, found ${found}`,
  );
}

/** A plain file's size against the size its header declares. */
function checkPlainSize(h: Header, name: string, size: number): void {
  if (size < h.expected) throw truncatedData(h, name, size);
  if (size > h.expected) {
    throw corrupt(
      name,
      `trailing bytes: the header declares shape ${h.shapeText}, so expected ${h.expected} bytes, ` +
        `found ${size} (${size - h.expected} extra)`,
    );
  }
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

/**
 * Refuses a declared size that cannot be right or cannot be loaded: more than `compressed` bytes
 * of gzip data can expand to, more than a buffer can hold, more than the machine's memory.
 */
function checkDeclaredSize(h: Header, name: string, compressed?: number): void {
  const declares = `the header declares shape ${h.shapeText}, so ${h.expected} bytes`;
  if (compressed !== undefined && h.expected > compressed * MAX_DEFLATE_RATIO) {
    throw corrupt(
      name,
      `${declares}, more than its ${compressed} bytes of gzip data can expand to (at most ${MAX_DEFLATE_RATIO} times their size)`,
    );
  }
  const maxBuffer = bufferConstants.MAX_LENGTH - 1;
  if (!Number.isSafeInteger(h.expected) || h.expected > maxBuffer) {
    throw new BsxError('BSX_TOO_LARGE', `${name}: ${declares}, more than the largest buffer Node can allocate (${maxBuffer} bytes)`, {
      path: name,
    });
  }
  if (h.expected > totalmem()) {
    throw new BsxError('BSX_TOO_LARGE', `${name}: ${declares} (${gb(h.expected)}), more than this machine's memory (${gb(totalmem())})`, {
      path: name,
    });
  }
}

/** The typed array of a header and its data bytes (`payload`, exactly count * size bytes), fixed to host byte order in place. */
function finish(h: Header, payload: Uint8Array): IdxArray {
  if (h.info.size > 1 && LITTLE_ENDIAN_HOST) {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (h.info.size === 2) buf.swap16();
    else if (h.info.size === 4) buf.swap32();
    else buf.swap64();
  }
  return {
    dtype: h.info.dtype,
    shape: h.shape,
    data: h.info.make(payload.buffer as ArrayBuffer, payload.byteOffset, h.count),
  } as IdxArray;
}

/**
 * Parses uncompressed IDX bytes. `owned`: the bytes were allocated by this
 * module (read from disk or decompressed) and nobody else holds them.
 */
function parseRaw(bytes: Uint8Array, name: string, owned: boolean): IdxArray {
  const h = parseHeader(bytes, name, true)!;
  checkPlainSize(h, name, bytes.length);
  // The data is a view into a buffer holding nothing else the caller can see:
  // the one just decompressed when `owned` and it is the whole buffer (not a
  // slice of Node's shared pool) and aligned, which saves a copy of a large
  // file; otherwise a fresh copy. The byte order is then fixed in place.
  let payload: Uint8Array;
  if (
    owned &&
    bytes.byteOffset === 0 &&
    bytes.buffer.byteLength === bytes.byteLength &&
    bytes.buffer instanceof ArrayBuffer &&
    h.headerBytes % h.info.size === 0
  ) {
    payload = bytes.subarray(h.headerBytes);
  } else {
    payload = new Uint8Array(h.count * h.info.size);
    payload.set(bytes.subarray(h.headerBytes));
  }
  return finish(h, payload);
}

// ---------------------------------------------------------------------------
// gzip: the header from a short prefix, then the data with the output capped at the declared size

/**
 * The header of gzipped IDX data (`bytes`: the file's first bytes or all of them; `compressed`:
 * the file's size), decompressed from a prefix of at most 16 KiB (so at most ~17 MB of output).
 */
function gzipHeader(bytes: Uint8Array, name: string, compressed = bytes.length): Header {
  checkGzipMagic(bytes, name);
  for (const k of HEADER_PREFIXES) {
    const whole = k >= compressed;
    let prefix: Uint8Array;
    try {
      prefix = gunzipSync(bytes.subarray(0, k), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      throw gzipError(name, err);
    }
    const h = parseHeader(prefix.subarray(0, MAX_HEADER_BYTES), name, whole && prefix.length < MAX_HEADER_BYTES);
    if (h !== undefined) {
      checkDeclaredSize(h, name, compressed);
      return h;
    }
    if (whole) break;
  }
  throw corrupt(name, `corrupt gzip: its first ${HEADER_PREFIXES[HEADER_PREFIXES.length - 1]} bytes do not decompress to an IDX header`);
}

/**
 * A gzip file far larger than the data its header declares is not a gzip of that data (gzip
 * adds a few bytes per 64 KiB block at worst): refused before it is read into memory.
 */
function checkCompressedSize(h: Header, name: string, size: number): void {
  if (size > 2 * h.expected + (1 << 20)) {
    throw corrupt(name, `corrupt gzip: ${size} bytes of gzip data for the ${h.expected} bytes its header declares (shape ${h.shapeText})`);
  }
}

function expandsPast(h: Header, name: string): BsxError {
  return corrupt(
    name,
    `the gzip data expands past its declared size: the header declares shape ${h.shapeText}, so ${h.expected} bytes, ` +
      `and decompression went on beyond them (stopped there)`,
  );
}

function gunzipCappedSync(bytes: Uint8Array, h: Header, name: string): Uint8Array {
  let out: Uint8Array;
  try {
    // one output chunk one byte longer than the file may be: a longer stream fails at once
    out = gunzipSync(bytes, { maxOutputLength: h.expected, chunkSize: Math.max(64, h.expected + 1) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw expandsPast(h, name);
    throw gzipError(name, err);
  }
  if (out.length < h.expected) throw truncatedData(h, name, out.length);
  return out;
}

/** Streams the decompressed data into one buffer of the declared size; more output is refused as it arrives. */
function gunzipCapped(bytes: Uint8Array, h: Header, name: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const out = new Uint8Array(h.expected);
    let n = 0;
    let settled = false;
    const settle = (err: BsxError | undefined): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(out);
    };
    const z = createGunzip();
    z.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (n + chunk.length > out.length) {
        settle(expandsPast(h, name));
        z.destroy();
        return;
      }
      out.set(chunk, n);
      n += chunk.length;
    });
    z.on('error', (err) => settle(gzipError(name, err)));
    z.on('end', () => settle(n < out.length ? truncatedData(h, name, n) : undefined));
    z.end(bytes);
  });
}

/**
 * Parses the bytes of an IDX file, gunzipping them first when they start with
 * the gzip magic (1f 8b) or `name` ends in `.gz`. `name` is used in error
 * messages. Throws BsxError BSX_DATA_CORRUPT on malformed input.
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (!isGzip(bytes, name)) return parseRaw(bytes, name, false);
  return parseRaw(gunzipCappedSync(bytes, gzipHeader(bytes, name), name), name, true);
}

// ---------------------------------------------------------------------------
// Files: the header first, then exactly the data it declares

function readError(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new BsxError('BSX_DATA_NOT_FOUND', `IDX file not found: ${path}`, { path, cause: err });
  }
  if (code === 'EISDIR') {
    return new BsxError('BSX_DATA_NOT_FOUND', `IDX file not found: ${path} is a directory`, { path, cause: err });
  }
  return err;
}

function isDirectoryError(): NodeJS.ErrnoException {
  return Object.assign(new Error('is a directory'), { code: 'EISDIR' });
}

async function readFullyAsync(fh: FileHandle, into: Uint8Array, position: number, path: string, h?: Header): Promise<void> {
  let off = 0;
  while (off < into.length) {
    const { bytesRead } = await fh.read(into, off, into.length - off, position + off);
    if (bytesRead === 0) {
      if (h) throw truncatedData(h, path, position + off);
      break;
    }
    off += bytesRead;
  }
}

function readFullySync(fd: number, into: Uint8Array, position: number, path: string, h?: Header): void {
  let off = 0;
  while (off < into.length) {
    const n = readSync(fd, into, off, into.length - off, position + off);
    if (n === 0) {
      if (h) throw truncatedData(h, path, position + off);
      break;
    }
    off += n;
  }
}

/** Reads and parses an IDX file (plain or gzipped). Missing file: BSX_DATA_NOT_FOUND. */
export async function readIdx(path: string): Promise<IdxArray> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw readError(path, err);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw readError(path, isDirectoryError());
    const head = new Uint8Array(Math.min(st.size, MAX_HEADER_BYTES));
    await readFullyAsync(fh, head, 0, path);
    if (isGzip(head, path)) {
      checkGzipMagic(head, path);
      const prefix = new Uint8Array(Math.min(st.size, HEADER_PREFIXES[HEADER_PREFIXES.length - 1]!));
      await readFullyAsync(fh, prefix, 0, path);
      const h = gzipHeader(prefix, path, st.size);
      checkCompressedSize(h, path, st.size);
      const bytes = new Uint8Array(st.size);
      await readFullyAsync(fh, bytes, 0, path);
      return parseRaw(await gunzipCapped(bytes, h, path), path, true);
    }
    const h = parseHeader(head, path, true)!;
    checkPlainSize(h, path, st.size);
    checkDeclaredSize(h, path);
    const payload = new Uint8Array(h.count * h.info.size);
    await readFullyAsync(fh, payload, h.headerBytes, path, h);
    return finish(h, payload);
  } finally {
    await fh.close();
  }
}

/** Synchronous readIdx. */
export function readIdxSync(path: string): IdxArray {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw readError(path, err);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw readError(path, isDirectoryError());
    const head = new Uint8Array(Math.min(st.size, MAX_HEADER_BYTES));
    readFullySync(fd, head, 0, path);
    if (isGzip(head, path)) {
      checkGzipMagic(head, path);
      const prefix = new Uint8Array(Math.min(st.size, HEADER_PREFIXES[HEADER_PREFIXES.length - 1]!));
      readFullySync(fd, prefix, 0, path);
      const h = gzipHeader(prefix, path, st.size);
      checkCompressedSize(h, path, st.size);
      const bytes = new Uint8Array(st.size);
      readFullySync(fd, bytes, 0, path);
      return parseRaw(gunzipCappedSync(bytes, h, path), path, true);
    }
    const h = parseHeader(head, path, true)!;
    checkPlainSize(h, path, st.size);
    checkDeclaredSize(h, path);
    const payload = new Uint8Array(h.count * h.info.size);
    readFullySync(fd, payload, h.headerBytes, path, h);
    return finish(h, payload);
  } finally {
    closeSync(fd);
  }
}

/** The element type and shape an IDX file (plain or gzipped) declares, read from its header alone. */
export async function readIdxHeader(path: string): Promise<{ dtype: IdxDtype; shape: number[] }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw readError(path, err);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw readError(path, isDirectoryError());
    let head = new Uint8Array(Math.min(st.size, MAX_HEADER_BYTES));
    await readFullyAsync(fh, head, 0, path);
    let h: Header;
    if (isGzip(head, path)) {
      checkGzipMagic(head, path);
      head = new Uint8Array(Math.min(st.size, HEADER_PREFIXES[HEADER_PREFIXES.length - 1]!));
      await readFullyAsync(fh, head, 0, path);
      h = gzipHeader(head, path, st.size);
    } else {
      h = parseHeader(head, path, true)!;
      checkPlainSize(h, path, st.size);
    }
    return { dtype: h.info.dtype, shape: h.shape };
  } finally {
    await fh.close();
  }
}
