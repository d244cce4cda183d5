// Checks of the JSON files bsx reads back (summary.json, spec.json, state.json, suite.json,
// gradient-study points, ...): a file's content is checked against a small description of its
// fields before any of it is used, and a wrong field is reported with the file, the field's
// path and what was found ("runs/ab12/summary.json: seeds must be an array, got 42"), never as
// a TypeError from deep inside bsx.

import { BsxError, type BsxErrorCode } from '../errors.js';

/** A check of one value: returns it (typed) or throws Invalid with the path where it failed. */
export type Check<T> = (v: unknown, path: string) => T;

/** A value that does not fit its description; turned into a BsxError naming the file by checkJson. */
export class Invalid extends Error {
  constructor(
    readonly at: string,
    readonly problem: string,
  ) {
    super(at === '' ? problem : `${at} ${problem}`);
  }
}

/** A short text of a value found, for messages. */
export function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function fail(path: string, expected: string, v: unknown): never {
  if (v === undefined && path !== '') throw new Invalid(path, `is missing (expected ${expected})`);
  throw new Invalid(path, `${path === '' ? 'the content must be' : 'must be'} ${expected}, got ${shown(v)}`);
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Any JSON value, unchecked (an opaque field), but present. */
export const anyValue: Check<unknown> = (v, p) => (v === undefined ? fail(p, 'a value', v) : v);

/** A string matching `re`; `what` describes it in messages. */
export function matching(re: RegExp, what: string): Check<string> {
  return (v, p) => (typeof v === 'string' && re.test(v) ? v : fail(p, what, v));
}

export const string: Check<string> = (v, p) => (typeof v === 'string' ? v : fail(p, 'a string', v));

export const nonEmptyString: Check<string> = (v, p) => (typeof v === 'string' && v !== '' ? v : fail(p, 'a non-empty string', v));

export const boolean: Check<boolean> = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'true or false', v));

/** Any number, NaN and infinities included (files that keep them, e.g. a diverged run's loss). */
export const number: Check<number> = (v, p) => (typeof v === 'number' ? v : fail(p, 'a number', v));

/** A number, or null read as NaN (JSON.stringify writes NaN and infinities as null). */
export const numberOrNull: Check<number> = (v, p) => (v === null ? Number.NaN : number(v, p));

/** A finite number >= min. */
export function finite(min = -Infinity): Check<number> {
  const what = min === -Infinity ? 'a finite number' : `a finite number >= ${min}`;
  return (v, p) => (typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fail(p, what, v));
}

/** An integer in [min, max] (safe integers only). */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER): Check<number> {
  const what = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return (v, p) => (Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fail(p, what, v));
}

/** One of the given values (compared with ===). */
export function oneOf<T extends string | number | boolean>(...values: readonly T[]): Check<T> {
  const what = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return (v, p) => (values.includes(v as T) ? (v as T) : fail(p, what, v));
}

/** An array whose every element passes `of`; `length` (if given) is required. */
export function arrayOf<T>(of: Check<T>, opts: { length?: number; minLength?: number } = {}): Check<T[]> {
  return (v, p) => {
    if (!Array.isArray(v)) return fail(p, 'an array', v);
    if (opts.length !== undefined && v.length !== opts.length) {
      throw new Invalid(p, `must hold ${opts.length} entries, got ${v.length}`);
    }
    if (opts.minLength !== undefined && v.length < opts.minLength) {
      throw new Invalid(p, `must hold at least ${opts.minLength} entries, got ${v.length}`);
    }
    return v.map((x, i) => of(x, child(p, i)));
  };
}

type Fields = Record<string, Check<unknown>>;
type Out<F extends Fields> = { [K in keyof F]: F[K] extends Check<infer T> ? T : never };

/**
 * An object with the `required` fields and, where present, the `optional` ones (undefined
 * counts as absent); other fields are kept unchecked (files may gain fields).
 */
export function object<R extends Fields, O extends Fields = Record<never, never>>(
  required: R,
  optional?: O,
): Check<Out<R> & Partial<Out<O>>> {
  return (v, p) => {
    if (!isRecord(v)) return fail(p, 'an object', v);
    const out: Record<string, unknown> = { ...v };
    for (const [k, c] of Object.entries(required)) out[k] = c(v[k], child(p, k));
    for (const [k, c] of Object.entries(optional ?? {})) if (v[k] !== undefined) out[k] = c(v[k], child(p, k));
    return out as Out<R> & Partial<Out<O>>;
  };
}

/** null or a value passing `of`. */
export function nullable<T>(of: Check<T>): Check<T | null> {
  return (v, p) => (v === null ? null : of(v, p));
}

export interface CheckJsonOptions {
  /** The error code (default BSX_RUN_CORRUPT). */
  code?: BsxErrorCode;
  /** What the user can do, appended to the message ("delete the run folder ..."). */
  hint?: string;
}

/** A BsxError naming the file and what is wrong with it. */
export function fileError(file: string, problem: string, opts: CheckJsonOptions = {}, cause?: unknown): BsxError {
  return new BsxError(opts.code ?? 'BSX_RUN_CORRUPT', `${file}: ${problem}${opts.hint ? `; ${opts.hint}` : ''}`, {
    path: file,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Checks a value read from `file`; throws a BsxError naming the file and the field. */
export function checkJson<T>(file: string, value: unknown, check: Check<T>, opts: CheckJsonOptions = {}): T {
  try {
    return check(value, '');
  } catch (e) {
    if (e instanceof Invalid) throw fileError(file, e.message, opts, e);
    throw e;
  }
}

/** Parses JSON text read from `file` and checks it (invalid JSON is named as such). */
export function parseJsonFile<T>(
  file: string,
  text: string,
  check: Check<T>,
  opts: CheckJsonOptions & { reviver?: (key: string, value: unknown) => unknown } = {},
): T {
  let value: unknown;
  try {
    value = JSON.parse(text, opts.reviver);
  } catch (e) {
    throw fileError(file, `not valid JSON (${(e as Error).message})`, opts, e);
  }
  return checkJson(file, value, check, opts);
}
