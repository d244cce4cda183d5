// The engine's optimisers, read from its table at run time (describe() of the native engine):
// names, hyperparameters with defaults and ranges, state slots. An optimiser is given as a
// name (`'sgd'`) or an object (`{ name: 'sgd', momentum: 0.9, nesterov: true }`); its
// canonical form keeps only the hyperparameters that differ from their defaults, so that a
// run's identity does not change when a default is spelt out. The text form of the command
// line and of --phases is `sgd(momentum=0.9,nesterov)`.

import type { NativeOptimizerDescriptor } from '@bsx/core-native';
import { BsxError } from '../errors.js';
import { binding } from './binding.js';

export type OptimizerDescriptor = NativeOptimizerDescriptor;
export type HyperparameterValue = number | boolean;

/** An optimiser: its name, or its name with hyperparameters. */
export type OptimizerSpec = string | OptimizerOptions;

export interface OptimizerOptions {
  name: string;
  [hyperparameter: string]: string | HyperparameterValue;
}

/** Every hyperparameter of an optimiser, defaults filled in. */
export interface ResolvedOptimizer {
  name: string;
  hyper: Record<string, HyperparameterValue>;
}

let table: readonly OptimizerDescriptor[] | undefined;

/** The optimisers the engine offers. */
export function optimizers(): readonly OptimizerDescriptor[] {
  table ??= Object.freeze(binding().describe().optimizers);
  return table;
}

/** The descriptor of the optimiser `name` (BSX_INVALID_ARGUMENT naming the known ones otherwise). */
export function optimizerDescriptor(name: string, where = 'optimizer'): OptimizerDescriptor {
  const d = optimizers().find((o) => o.name === name);
  if (!d) {
    throw new BsxError(
      'BSX_INVALID_ARGUMENT',
      `${where}: unknown optimizer '${String(name)}' (known: ${optimizers().map((o) => o.name).join(', ')})`,
    );
  }
  return d;
}

function invalid(where: string, err: unknown): never {
  const msg = (err as Error).message ?? String(err);
  // the engine names the function it was called as; the caller's `where` says more
  throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: ${msg.replace(/^validateOptimizer: /, '')}`, { cause: err });
}

/** Checks an optimiser (by the engine's own rules) and returns every hyperparameter. */
export function resolveOptimizer(spec: OptimizerSpec, where = 'optimizer'): ResolvedOptimizer {
  const opts = typeof spec === 'string' ? { name: spec } : spec;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: must be an optimizer name or { name, ...hyperparameters }, got ${String(spec)}`);
  }
  if (typeof opts.name !== 'string') {
    throw new BsxError('BSX_INVALID_ARGUMENT', `${where}.name: must be a string, got ${String(opts.name)}`);
  }
  optimizerDescriptor(opts.name, where);
  let full: Record<string, string | number | boolean>;
  try {
    full = binding().validateOptimizer({ ...opts });
  } catch (err) {
    invalid(where, err);
  }
  const { name, ...hyper } = full;
  return { name: name as string, hyper: hyper as Record<string, HyperparameterValue> };
}

/** The canonical form: the name alone when every hyperparameter has its default. */
export function normalizeOptimizer(spec: OptimizerSpec, where = 'optimizer'): OptimizerSpec {
  const r = resolveOptimizer(spec, where);
  const d = optimizerDescriptor(r.name, where);
  const out: OptimizerOptions = { name: r.name };
  let changed = false;
  for (const h of d.hyperparameters) {
    const v = r.hyper[h.name];
    if (v !== undefined && v !== h.default) {
      out[h.name] = v;
      changed = true;
    }
  }
  return changed ? out : r.name;
}

export function optimizerName(spec: OptimizerSpec): string {
  return typeof spec === 'string' ? spec : spec.name;
}

/** Whether two optimisers are the same (after normalisation). */
export function sameOptimizer(a: OptimizerSpec, b: OptimizerSpec): boolean {
  return formatOptimizer(normalizeOptimizer(a)) === formatOptimizer(normalizeOptimizer(b));
}

/** `sgd`, `sgd(momentum=0.9,nesterov)`, `adamw(weightDecay=0.1)`: the non-default hyperparameters in table order. */
export function formatOptimizer(spec: OptimizerSpec): string {
  if (typeof spec === 'string') return spec;
  const d = optimizers().find((o) => o.name === spec.name);
  const order = d ? d.hyperparameters.map((h) => h.name) : [];
  const keys = Object.keys(spec)
    .filter((k) => k !== 'name')
    .sort((a, b) => order.indexOf(a) - order.indexOf(b));
  if (keys.length === 0) return spec.name;
  const parts = keys.map((k) => {
    const v = spec[k];
    return v === true ? k : `${k}=${String(v)}`;
  });
  return `${spec.name}(${parts.join(',')})`;
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses `NAME` or `NAME(key=value,flag,...)`: a bare key sets a boolean hyperparameter to
 * true, `key=true|false` sets it explicitly; numbers in decimal or exponent notation.
 */
export function parseOptimizer(text: string, where = 'optimizer'): OptimizerSpec {
  const m = /^\s*([A-Za-z][\w-]*)\s*(?:\((.*)\))?\s*$/.exec(text);
  if (!m) {
    throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: '${text}' is not NAME or NAME(key=value,...), e.g. sgd(momentum=0.9,nesterov)`);
  }
  const name = m[1]!;
  const d = optimizerDescriptor(name, where);
  const spec: OptimizerOptions = { name };
  const body = m[2]?.trim() ?? '';
  if (body !== '') {
    for (const part of body.split(',')) {
      const [rawKey, ...rest] = part.split('=');
      const key = rawKey!.trim();
      const h = d.hyperparameters.find((x) => x.name === key);
      if (!h) {
        throw new BsxError(
          'BSX_INVALID_ARGUMENT',
          `${where}: ${name} has no hyperparameter '${key}' (its hyperparameters: ${d.hyperparameters.map((x) => x.name).join(', ')})`,
        );
      }
      if (key in spec) throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: ${key} is given twice`);
      const raw = rest.join('=').trim();
      if (h.type === 'boolean') {
        if (rest.length === 0 || raw === 'true') spec[key] = true;
        else if (raw === 'false') spec[key] = false;
        else throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: ${key} is a flag: write '${key}', '${key}=true' or '${key}=false', got '${part.trim()}'`);
      } else {
        if (!NUMBER_RE.test(raw)) {
          throw new BsxError('BSX_INVALID_ARGUMENT', `${where}: ${key} must be a number (e.g. ${key}=${h.default}), got '${part.trim()}'`);
        }
        spec[key] = Number(raw);
      }
    }
  }
  return normalizeOptimizer(spec, where);
}

/** The state slots of an optimiser (their names in checkpoints and getTensor). */
export function optimizerStateSlots(spec: OptimizerSpec): readonly string[] {
  return optimizerDescriptor(optimizerName(spec)).state;
}
