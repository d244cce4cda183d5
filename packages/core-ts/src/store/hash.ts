// Canonical JSON and spec hashes: one text per value (object keys sorted, no whitespace,
// numbers as JSON writes them), so that the hash of a run's key is the same whatever the key
// order of the object it came from and whichever process computes it. Values JSON cannot carry
// exactly (undefined, NaN, Infinity, functions, bigints, class instances) are rejected with the
// path of the offending value rather than silently dropped or changed.

import { createHash } from 'node:crypto';
import { BsxError } from '../errors.js';

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function keyPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** The canonical JSON text of `value`; throws BSX_INVALID_ARGUMENT naming the path of a value JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  const bad = (path: string, what: string): never => {
    throw new BsxError('BSX_INVALID_ARGUMENT', `canonicalJson: ${path} is ${what}, which JSON cannot represent exactly`);
  };
  const walk = (v: unknown, path: string): string => {
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) return bad(path, String(v));
        return JSON.stringify(v); // -0 becomes 0, as in JSON
      case 'undefined':
        return bad(path, 'undefined');
      case 'function':
        return bad(path, 'a function');
      case 'bigint':
        return bad(path, 'a bigint');
      case 'symbol':
        return bad(path, 'a symbol');
      case 'object': {
        if (v === null) return 'null';
        if (seen.has(v)) return bad(path, 'a circular reference');
        seen.add(v);
        let out: string;
        if (Array.isArray(v)) {
          const parts: string[] = [];
          for (let i = 0; i < v.length; i++) parts.push(walk(v[i], `${path}[${i}]`));
          out = `[${parts.join(',')}]`;
        } else {
          if (!isPlainObject(v)) return bad(path, `an instance of ${(v as object).constructor?.name ?? 'a class'}`);
          const rec = v as Record<string, unknown>;
          const keys = Object.keys(rec).sort();
          out = `{${keys.map((k) => `${JSON.stringify(k)}:${walk(rec[k], keyPath(path, k))}`).join(',')}}`;
        }
        seen.delete(v);
        return out;
      }
    }
    return bad(path, `of type ${typeof v}`);
  };
  return walk(value, '$');
}

/** First 16 hex digits (64 bits) of the SHA-256 of canonicalJson(value). */
export function specHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex').slice(0, 16);
}
