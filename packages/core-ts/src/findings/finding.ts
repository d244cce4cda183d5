// The shape of a finding module: the runs and gradient studies it needs, and its analysis.

import type { GradStudyResult } from '../experiments/grad-study.js';
import type { StoredRunResult } from '../experiments/run.js';
import type { CatalogRun, SuiteRunKey } from './catalog.js';
import type { Profile } from './profiles.js';
import type { FindingResult } from './types.js';

export type RegimeKey = 'early' | 'late';

export interface AnalysisContext {
  profile: Profile;
  runs: ReadonlyMap<SuiteRunKey, StoredRunResult>;
  catalog: ReadonlyMap<SuiteRunKey, CatalogRun>;
  grad: ReadonlyMap<RegimeKey, GradStudyResult>;
}

export interface Finding {
  id: string;
  title: string;
  /** The study's claim in the project's words. */
  claim: string;
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
