// What a finding is made of: the runs it needs (as data), its analysis, its verdict and its
// figures. A finding never trains by itself: it asks the run store (through the suite).

import type { GradStudyResult, RegimeName } from '../experiments/grad-study.js';
import type { StoredRunResult } from '../experiments/run.js';
import type { TrainSpec } from '../experiments/train.js';

export type Verdict = 'reproduced' | 'partly' | 'not reproduced';

export type ProfileName = 'smoke' | 'quick' | 'full';

/** One measured quantity beside the study's value for it. */
export interface Measurement {
  /** What it is, e.g. 'test accuracy, b64, last epoch'. */
  label: string;
  /** Mean over seeds (or the single value). */
  value: number;
  /** Sample standard deviation over seeds, when there are several. */
  spread?: number;
  /** The seeds the value is over, when a run of its own count (e.g. Adam's three) gives it. */
  seeds?: number;
  /** The study's number, when it gives one. */
  seed?: number;
  unit?: string;
  /** One of the few numbers the verdict table shows for its finding (see keyMeasurements). */
  key?: boolean;
}

/** A figure as a Vega-Lite specification with its data inline (rendered to SVG by the report). */
export interface FigureSpec {
  id: string;
  title: string;
  /** One or two sentences: what the figure shows, in the project's words. */
  caption: string;
  vegaLite: Record<string, unknown>;
}

export interface FindingResult {
  id: string;
  title: string;
  /** The study's claim, stated in the project's own words (beyond the study: bsx's own claim). */
  claim: string;
  /** A finding beyond the study: the claim is bsx's, and the verdict says whether it holds. */
  beyond?: boolean;
  verdict: Verdict;
  /** Why the verdict: the rule and the numbers it compared. */
  reason: string;
  measured: Measurement[];
  figures: FigureSpec[];
  profile: ProfileName;
  /** What this profile changed from the study's setup, if anything. */
  deviations: string[];
  /** Free-form notes (e.g. which gradient statistic gives the sqrt(b) law). */
  notes?: string[];
}

/** A named training run a finding needs. */
export interface RunRequest {
  key: string;
  spec: TrainSpec;
  /** Human label for figures, e.g. 'b64 lr0.01'. */
  label: string;
}

/** A gradient study a finding needs. */
export interface GradStudyRequest {
  key: string;
  regime: RegimeName;
  batchSizes: number[];
  trials: number;
}

/** What the suite hands a finding's analysis: every run and study it asked for, by key. */
export interface SuiteResults {
  runs: Map<string, StoredRunResult>;
  gradStudies: Map<string, GradStudyResult>;
}
