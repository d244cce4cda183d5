// NPY files: encodes typed arrays in NumPy's .npy format and decodes them back with every
// field checked, so that numpy.load reads what bsx writes and bsx reads what numpy.save writes.
//
// Format (NumPy Enhancement Proposal NEP 1, "A simple file format for NumPy arrays", and the
// numpy.lib.format module documentation): the magic string "\x93NUMPY", a major and a minor
// version byte, the header length (version 1.0: little-endian uint16; 2.0: little-endian
// uint32), then the header: an ASCII Python dict literal with the keys 'descr' (the dtype,
// here '<f4', '<f8', '<i4' or '|u1'), 'fortran_order' (False here: C order) and 'shape' (a
// tuple of ints), padded with spaces and ended by '\n' so that magic + version + length +
// header is a multiple of 64 bytes. The raw array data follows, in C order.

import { endianness } from 'node:os';
import { BsxError, type BsxErrorCode } from '../errors.js';

/** Element types bsx reads and writes, named after their NumPy descr. */
export type NpyDtype = '<f4' | '<f8' | '<i4' | '|u1';

/** The typed array each NPY element type decodes to. */
export interface NpyDataTypes {
  '<f4': Float32Array;
  '<f8': Float64Array;
  '<i4': Int32Array;
  '|u1': Uint8Array;
}

export interface NpyArrayOf<D extends NpyDtype> {
  dtype: D;
  shape: number[];
  /** Row-major data, length = product of shape, in its own (aligned) buffer. */
  data: NpyDataTypes[D];
}

/** A decoded NPY array; narrow on `dtype` to get the typed array's type. */
export type NpyArray = { [D in NpyDtype]: NpyArrayOf<D> }[NpyDtype];

export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

const ITEM_SIZE: Record<NpyDtype, number> = { '<f4': 4, '<f8': 8, '<i4': 4, '|u1': 1 };

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint8Array) return '|u1';
  throw new BsxError('BSX_INVALID_ARGUMENT', 'encodeNpy: data must be a Float32Array, Float64Array, Int32Array or Uint8Array');
}

/** Reverses the byte order of each `size`-byte element of `bytes` in place. */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function shapeLiteral(shape: readonly number[]): string {
  if (shape.length === 0) return '()';
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** Encodes `data` (row-major, length = product of `shape`) as an NPY v1.0 file (v2.0 if the header needs it). */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const dtype = dtypeOf(data);
  if (!Array.isArray(shape)) throw new BsxError('BSX_INVALID_ARGUMENT', 'encodeNpy: shape must be an array of integers');
  let count = 1;
  shape.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new BsxError('BSX_INVALID_ARGUMENT', `encodeNpy: shape[${i}] must be an integer >= 0, got ${d}`);
    }
    count *= d;
  });
  if (count !== data.length) {
    throw new BsxError(
      'BSX_INVALID_ARGUMENT',
      `encodeNpy: shape [${shape.join(', ')}] holds ${count} elements but data has ${data.length}`,
    );
  }
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeLiteral(shape)}, }`;
  // Version 1.0 stores the header length in 2 bytes; longer headers (absurd shapes) need 2.0.
  let major = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
  if (total - prefix > 0xffff) {
    major = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
  }
  const headerLen = total - prefix;
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  const body = out.subarray(total);
  body.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (!LITTLE_ENDIAN_HOST) swapBytes(body, ITEM_SIZE[dtype]);
  return out;
}

// ---------------------------------------------------------------------------
// Decoding: a small parser for the Python literal of the header (a dict of strings, booleans
// and tuples of ints), strict enough that any damage is reported rather than guessed around.

type PyValue = string | boolean | number[];

class HeaderParser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly fail: (problem: string) => never,
  ) {}

  private ws(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private expect(ch: string): void {
    this.ws();
    if (this.text[this.pos] !== ch) {
      this.fail(`header: expected '${ch}' at offset ${this.pos}, found ${JSON.stringify(this.text[this.pos] ?? 'end of header')}`);
    }
    this.pos++;
  }

  private peek(): string | undefined {
    this.ws();
    return this.text[this.pos];
  }

  private string(): string {
    this.ws();
    const q = this.text[this.pos];
    if (q !== "'" && q !== '"') this.fail(`header: expected a string at offset ${this.pos}`);
    const end = this.text.indexOf(q, this.pos + 1);
    if (end < 0) this.fail('header: unterminated string');
    const s = this.text.slice(this.pos + 1, end);
    if (s.includes('\\')) this.fail('header: escape sequences are not supported in strings');
    this.pos = end + 1;
    return s;
  }

  private value(): PyValue {
    const c = this.peek();
    if (c === "'" || c === '"') return this.string();
    if (c === '(') {
      this.pos++;
      const items: number[] = [];
      for (;;) {
        if (this.peek() === ')') {
          this.pos++;
          break;
        }
        const m = /^\d+L?/.exec(this.text.slice(this.pos));
        if (!m) this.fail(`header: expected a non-negative integer in the shape at offset ${this.pos}`);
        const n = Number(m[0].replace('L', ''));
        if (!Number.isSafeInteger(n)) this.fail(`header: shape entry ${m[0]} is too large`);
        items.push(n);
        this.pos += m[0].length;
        const next = this.peek();
        if (next === ',') this.pos++;
        else if (next !== ')') this.fail(`header: expected ',' or ')' in the shape at offset ${this.pos}`);
      }
      return items;
    }
    for (const [word, v] of [['True', true], ['False', false]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(`header: unexpected value at offset ${this.pos}`);
  }

  dict(): Map<string, PyValue> {
    const out = new Map<string, PyValue>();
    this.expect('{');
    for (;;) {
      if (this.peek() === '}') {
        this.pos++;
        break;
      }
      const key = this.string();
      this.expect(':');
      if (out.has(key)) this.fail(`header: key '${key}' appears twice`);
      out.set(key, this.value());
      const next = this.peek();
      if (next === ',') this.pos++;
      else if (next !== '}') this.fail(`header: expected ',' or '}' at offset ${this.pos}`);
    }
    this.ws();
    if (this.pos !== this.text.length) this.fail(`header: unexpected text after the dict at offset ${this.pos}`);
    return out;
  }
}

/**
 * Decodes an NPY file (version 1.0 or 2.0; descr '<f4', '<f8', '<i4' or '|u1'; C order) and
 * checks that the data is exactly as long as the shape says. `name` (the file) is named in
 * every error; errors are BsxError with `code` (BSX_RUN_CORRUPT unless told otherwise).
 */
export function decodeNpy(bytes: Uint8Array, name: string, code: BsxErrorCode = 'BSX_RUN_CORRUPT'): NpyArray {
  const fail = (problem: string): never => {
    throw new BsxError(code, `${name}: not a valid .npy file: ${problem}`, { path: name });
  };
  if (bytes.length < 10) fail(`only ${bytes.length} bytes, shorter than the smallest header`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) fail('bad magic string (expected \\x93NUMPY)');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!((major === 1 || major === 2) && minor === 0)) fail(`unsupported format version ${major}.${minor} (expected 1.0 or 2.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let prefix = 10;
  let headerLen: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
  } else {
    if (bytes.length < 12) fail(`only ${bytes.length} bytes, shorter than the version 2.0 header`);
    headerLen = view.getUint32(8, true);
    prefix = 12;
  }
  const dataStart = prefix + headerLen;
  if (dataStart > bytes.length) fail(`truncated header: it declares ${headerLen} bytes but the file has ${bytes.length - prefix} after the prefix`);
  let text = '';
  for (let i = prefix; i < dataStart; i++) {
    const c = bytes[i]!;
    if (c > 0x7e || (c < 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d)) fail(`header has a non-ASCII byte 0x${c.toString(16)} at offset ${i}`);
    text += String.fromCharCode(c);
  }
  const dict = new HeaderParser(text, fail).dict();
  for (const k of dict.keys()) {
    if (k !== 'descr' && k !== 'fortran_order' && k !== 'shape') fail(`header: unexpected key '${k}'`);
  }
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string') fail("header: 'descr' is missing or not a string");
  if (typeof fortran !== 'boolean') fail("header: 'fortran_order' is missing or not True/False");
  if (!Array.isArray(shape)) fail("header: 'shape' is missing or not a tuple");
  const d = descr as string;
  if (!(d in ITEM_SIZE)) fail(`unsupported dtype '${d}' (expected '<f4', '<f8', '<i4' or '|u1')`);
  if (fortran) fail('fortran_order is True; only C-order arrays are supported');
  const dtype = d as NpyDtype;
  const dims = shape as number[];
  let count = 1;
  for (const n of dims) count *= n;
  const size = ITEM_SIZE[dtype];
  const expected = count * size;
  const have = bytes.length - dataStart;
  if (!Number.isSafeInteger(expected)) fail(`shape (${dims.join(', ')}) is too large`);
  if (have < expected) fail(`truncated data: shape (${dims.join(', ')}) of ${dtype} needs ${expected} bytes, found ${have}`);
  if (have > expected) fail(`${have - expected} unexpected bytes after the data of shape (${dims.join(', ')})`);
  // Copy into a fresh buffer: the data is then aligned for its type and owned by the result.
  // (Not bytes.slice: on a Node Buffer that is a view sharing the pool's memory.)
  const raw = new Uint8Array(expected);
  raw.set(bytes.subarray(dataStart, dataStart + expected));
  if (!LITTLE_ENDIAN_HOST) swapBytes(raw, size);
  const buf = raw.buffer;
  switch (dtype) {
    case '<f4':
      return { dtype, shape: [...dims], data: new Float32Array(buf, 0, count) };
    case '<f8':
      return { dtype, shape: [...dims], data: new Float64Array(buf, 0, count) };
    case '<i4':
      return { dtype, shape: [...dims], data: new Int32Array(buf, 0, count) };
    case '|u1':
      return { dtype, shape: [...dims], data: new Uint8Array(buf, 0, count) };
  }
}
