// The finding suite: the twelve findings of the study, then bsx's own beyond it (F13 on), in
// order; docs/findings.md states each one.

import { F1 } from './f01-batch-size-accuracy.js';
import { F2 } from './f02-learning-rate.js';
import { F3 } from './f03-switching.js';
import { F4 } from './f04-gradient-norm.js';
import { F5 } from './f05-norm-spread.js';
import { F6 } from './f06-norm-histograms.js';
import { F7 } from './f07-value-tails.js';
import { F8 } from './f08-distance-grid.js';
import { F9 } from './f09-more-epochs.js';
import { F10 } from './f10-distance-bounded.js';
import { F11 } from './f11-adam.js';
import { F12 } from './f12-cosine.js';
import { F13 } from './f13-noise-model.js';
import { F14 } from './f14-frozen-control.js';
import { F15 } from './f15-critical-batch.js';
import { F16 } from './f16-adamw.js';
import type { Finding } from './finding.js';

export const FINDINGS: readonly Finding[] = [F1, F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13, F14, F15, F16];

export function findingById(id: string): Finding | undefined {
  return FINDINGS.find((f) => f.id.toLowerCase() === id.toLowerCase());
}

export * from './types.js';
export * from './profiles.js';
export * from './catalog.js';
export * from './finding.js';
export * from './suite.js';
export { tailShare } from './f07-value-tails.js';
export { spearman, threshold } from './util.js';
