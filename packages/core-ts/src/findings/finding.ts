// The shape of a finding module: the runs and gradient studies it needs, and its analysis.

import type { GradStudyResult } from '../experiments/grad-study.js';
import type { StoredRunResult } from '../experiments/run.js';
import type { CatalogRun, SuiteRunKey } from './catalog.js';
import type { Profile } from './profiles.js';
import type { FindingResult } from './types.js';

/**
 * The gradient studies of the suite: the trials of the early and late regimes (F4-F7, F13),
 * the same trials with the weights frozen (F14), and first steps at the end of the b64 baseline
 * (the noise scale at F15's target).
 */
export type RegimeKey = 'early' | 'late' | 'early-frozen' | 'late-frozen' | 'target';

export interface GradStudyDef {
  /** The run whose final weights (its first seed's) the trials start from. */
  run: SuiteRunKey;
  /** The regime the trials draw their samples for: a regime's frozen trials see the moving trials' samples. */
  regime: 'early' | 'late' | 'target';
  /** Counter word of the trial draws (RegimeModel.code). */
  code: number;
  /** Learning rate of the trial steps: the study's 0.01, or 0 for frozen weights. */
  lr: number;
  /** Batch sizes (default: the profile's). */
  batchSizes?: (p: Profile) => number[];
  /** For the plan, e.g. 'early regime, frozen weights'. */
  label: string;
}

export const GRAD_STUDIES: Readonly<Record<RegimeKey, GradStudyDef>> = {
  early: { run: 'regime-early', regime: 'early', code: 1, lr: 0.01, label: 'early regime' },
  late: { run: 'b1024', regime: 'late', code: 2, lr: 0.01, label: 'late regime' },
  'early-frozen': { run: 'regime-early', regime: 'early', code: 1, lr: 0, label: 'early regime, frozen weights' },
  'late-frozen': { run: 'b1024', regime: 'late', code: 2, lr: 0, label: 'late regime, frozen weights' },
  target: {
    run: 'b64',
    regime: 'target',
    code: 3,
    lr: 0,
    // first steps are all the noise scale needs: every other power of two of the profile's sizes
    batchSizes: (p) => p.batchSizes.filter((b) => Number.isInteger(Math.log2(b) / 2)),
    label: 'first steps at the end of b64 lr0.01',
  },
};

/** The batch sizes of a gradient study at a profile. */
export function gradStudyBatchSizes(key: RegimeKey, p: Profile): number[] {
  return GRAD_STUDIES[key].batchSizes?.(p) ?? p.batchSizes;
}

export interface AnalysisContext {
  profile: Profile;
  runs: ReadonlyMap<SuiteRunKey, StoredRunResult>;
  catalog: ReadonlyMap<SuiteRunKey, CatalogRun>;
  grad: ReadonlyMap<RegimeKey, GradStudyResult>;
}

export interface Finding {
  id: string;
  title: string;
  /** The study's claim in the project's words (for a finding beyond the study: bsx's own). */
  claim: string;
  /** A finding beyond the study (F13 on): bsx's own question, reported in its own section. */
  beyond?: boolean;
  runs(p: Profile): SuiteRunKey[];
  gradStudies?: RegimeKey[];
  analyze(ctx: AnalysisContext): Omit<FindingResult, 'id' | 'title' | 'claim' | 'profile'>;
}

export function runOf(ctx: AnalysisContext, key: SuiteRunKey): StoredRunResult {
  const r = ctx.runs.get(key);
  if (!r) throw new Error(`finding analysis: run ${key} is missing`);
  return r;
}

export function labelOf(ctx: AnalysisContext, key: SuiteRunKey): string {
  return ctx.catalog.get(key)?.label ?? key;
}

export function gradOf(ctx: AnalysisContext, regime: RegimeKey): GradStudyResult {
  const g = ctx.grad.get(regime);
  if (!g) throw new Error(`finding analysis: the ${regime} gradient study is missing`);
  return g;
}
