// IDX file reader: parses the binary format that MNIST and Fashion-MNIST are
// shipped in, plain or gzipped, into a typed array with its shape.
//
// Format (Y. LeCun, "THE MNIST DATABASE of handwritten digits",
// http://yann.lecun.com/exdb/mnist/): a 4-byte magic number 0x00 0x00 <type>
// <ndims>, then ndims big-endian uint32 dimension sizes, then the data in
// row-major (C) order, big-endian. Type codes: 0x08 unsigned byte, 0x09 signed
// byte, 0x0B short (16-bit), 0x0C int (32-bit), 0x0D float (32-bit),
// 0x0E double (64-bit).

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { gunzip, gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';
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
const gunzipAsync = promisify(gunzip);

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

function gunzipBytesSync(bytes: Uint8Array, name: string): Uint8Array {
  checkGzipMagic(bytes, name);
  try {
    return gunzipSync(bytes);
  } catch (err) {
    throw gzipError(name, err);
  }
}

async function gunzipBytes(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  checkGzipMagic(bytes, name);
  try {
    return await gunzipAsync(bytes);
  } catch (err) {
    throw gzipError(name, err);
  }
}

/**
 * Parses uncompressed IDX bytes. `owned`: the bytes were allocated by this
 * module (read from disk or decompressed) and nobody else holds them.
 */
function parseRaw(bytes: Uint8Array, name: string, owned: boolean): IdxArray {
  if (bytes.length < 4) {
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
    count *= dim; // exact while below 2^53; anything that large is truncated anyway
  }
  const expected = headerBytes + count * info.size;
  const shapeText = `[${shape.join(', ')}] of ${info.idxName}`;
  if (bytes.length < expected) {
    throw corrupt(
      name,
      `truncated file: the header declares shape ${shapeText}, so expected ${expected} bytes, found ${bytes.length}`,
    );
  }
  if (bytes.length > expected) {
    throw corrupt(
      name,
      `trailing bytes: the header declares shape ${shapeText}, so expected ${expected} bytes, ` +
        `found ${bytes.length} (${bytes.length - expected} extra)`,
    );
  }
  // The data is a view into a buffer holding nothing else the caller can see:
  // the one just read or decompressed when `owned` and it is the whole buffer
  // (not a slice of Node's shared pool) and aligned, which saves a copy of a
  // large file; otherwise a fresh copy. The byte order is then fixed in place.
  let payload: Uint8Array;
  if (
    owned &&
    bytes.byteOffset === 0 &&
    bytes.buffer.byteLength === bytes.byteLength &&
    bytes.buffer instanceof ArrayBuffer &&
    headerBytes % info.size === 0
  ) {
    payload = bytes.subarray(headerBytes);
  } else {
    payload = new Uint8Array(count * info.size);
    payload.set(bytes.subarray(headerBytes));
  }
  if (info.size > 1 && LITTLE_ENDIAN_HOST) {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (info.size === 2) buf.swap16();
    else if (info.size === 4) buf.swap32();
    else buf.swap64();
  }
  return {
    dtype: info.dtype,
    shape,
    data: info.make(payload.buffer as ArrayBuffer, payload.byteOffset, count),
  } as IdxArray;
}

/**
 * Parses the bytes of an IDX file, gunzipping them first when they start with
 * the gzip magic (1f 8b) or `name` ends in `.gz`. `name` is used in error
 * messages. Throws BsxError BSX_DATA_CORRUPT on malformed input.
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  return isGzip(bytes, name) ? parseRaw(gunzipBytesSync(bytes, name), name, true) : parseRaw(bytes, name, false);
}

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

/** Reads and parses an IDX file (plain or gzipped). Missing file: BSX_DATA_NOT_FOUND. */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw readError(path, err);
  }
  return parseRaw(isGzip(bytes, path) ? await gunzipBytes(bytes, path) : bytes, path, true);
}

/** Synchronous readIdx. */
export function readIdxSync(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw readError(path, err);
  }
  return parseRaw(isGzip(bytes, path) ? gunzipBytesSync(bytes, path) : bytes, path, true);
}
