// The phase syntax of the command line: `BATCHxEPOCHS@LR[:OPTIMIZER]`, comma-separated, e.g.
// `1024x1@0.01,64x30@0.01` (one epoch of batch 1024, then 30 of batch 64) or `64x30@0.01:adam`.
// The optimiser defaults to sgd.

import { BsxError } from '../errors.js';
import type { Phase } from './train.js';

const PHASE_RE = /^(\d+)x(\d+)@([0-9.eE+-]+)(?::([a-z]+))?$/;

export function parsePhases(text: string): Phase[] {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new BsxError('BSX_INVALID_ARGUMENT', 'phases: empty; expected e.g. "1024x1@0.01,64x30@0.01"');
  }
  return text.split(',').map((part, i) => {
    const p = part.trim();
    const m = PHASE_RE.exec(p);
    if (!m) {
      throw new BsxError(
        'BSX_INVALID_ARGUMENT',
        `phases[${i}]: '${p}' is not BATCHxEPOCHS@LR[:sgd|adam] (e.g. 64x30@0.01 or 64x30@0.01:adam)`,
      );
    }
    const batchSize = Number(m[1]);
    const epochs = Number(m[2]);
    const lr = Number(m[3]);
    const optimizer = m[4] ?? 'sgd';
    if (batchSize < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].batchSize: must be >= 1, got ${batchSize}`);
    if (epochs < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].epochs: must be >= 1, got ${epochs}`);
    if (!Number.isFinite(lr) || lr <= 0) throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].lr: must be a number > 0, got '${m[3]}'`);
    if (optimizer !== 'sgd' && optimizer !== 'adam') {
      throw new BsxError('BSX_INVALID_ARGUMENT', `phases[${i}].optimizer: must be sgd or adam, got '${optimizer}'`);
    }
    return { batchSize, epochs, lr, optimizer };
  });
}

export function formatPhases(phases: readonly Phase[]): string {
  return phases.map((p) => `${p.batchSize}x${p.epochs}@${p.lr}${p.optimizer === 'sgd' ? '' : `:${p.optimizer}`}`).join(',');
}
