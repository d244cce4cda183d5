// The phase syntax of the command line: `BATCHxEPOCHS@LR[:OPTIMIZER]`, comma-separated, e.g.
// `1024x1@0.01,64x30@0.01` (one epoch of batch 1024, then 30 of batch 64),
// `64x30@0.01:adam`, or `64x2@0.01:sgd(momentum=0.9,nesterov)` (hyperparameters in
// parentheses, see engine/optimizers.ts). The optimiser defaults to sgd.

import { formatOptimizer, parseOptimizer } from '../engine/optimizers.js';
import { BsxError } from '../errors.js';
import type { Phase } from './train.js';

const PHASE_RE = /^(\d+)x(\d+)@([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?::(.+))?$/;

/** Splits on the commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts;
}

export function parsePhases(text: string): Phase[] {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new BsxError('BSX_INVALID_ARGUMENT', 'phases: empty; expected e.g. "1024x1@0.01,64x30@0.01"');
  }
  return splitTopLevel(text).map((part, i) => {
    const p = part.trim();
    const m = PHASE_RE.exec(p);
    if (!m) {
      throw new BsxError(
        'BSX_INVALID_ARGUMENT',
        `phases[${i}]: '${p}' is not BATCHxEPOCHS@LR[:OPTIMIZER] (e.g. 64x30@0.01, 64x30@0.01:adam or 64x2@0.01:sgd(momentum=0.9,nesterov))`,
      );
    }
    const batchSize = Number(m[1]);
    const epochs = Number(m[2]);
    const lr = Number(m[3]);
    if (batchSize < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].batchSize: must be >= 1, got ${batchSize}`);
    if (epochs < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].epochs: must be >= 1, got ${epochs}`);
    if (!Number.isFinite(lr) || lr <= 0) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].lr: must be a number > 0, got '${m[3]}'`);
    const optimizer = parseOptimizer(m[4] ?? 'sgd', `phases[${i}].optimizer`);
    return { batchSize, epochs, lr, optimizer };
  });
}

export function formatPhases(phases: readonly Phase[]): string {
  return phases
    .map((p) => {
      const o = formatOptimizer(p.optimizer);
      return `${p.batchSize}x${p.epochs}@${p.lr}${o === 'sgd' ? '' : `:${o}`}`;
    })
    .join(',');
}
