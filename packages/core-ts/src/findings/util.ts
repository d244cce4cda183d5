// Shared analysis helpers of the findings: last-epoch values over seeds, curves with their
// spread, rank correlation, and the thresholds the verdict rules compare against.

import type { EpochMetrics } from '../experiments/train.js';
import type { StoredRunResult } from '../experiments/run.js';
import { mean, std } from '../stats/descriptive.js';
import type { Measurement } from './types.js';

export type MetricKey = 'trainLoss' | 'trainAcc' | 'testLoss' | 'testAcc' | 'weightDistance' | 'biasDistance' | 'weightNorm' | 'biasNorm';

export interface OverSeeds {
  mean: number;
  sd: number;
  values: number[];
}

export function overSeeds(values: number[]): OverSeeds {
  return { mean: mean(values), sd: std(values), values };
}

/** A metric at the last epoch of every seed of a run. */
export function lastEpoch(run: StoredRunResult, key: MetricKey): OverSeeds {
  return overSeeds(run.seeds.map((s) => s.epochs[s.epochs.length - 1]![key]));
}

/** Cosine of layer l at the last epoch, over seeds. */
export function lastCosine(run: StoredRunResult, layer: number): OverSeeds {
  return overSeeds(run.seeds.map((s) => s.epochs[s.epochs.length - 1]!.cosine[layer]!));
}

/**
 * The smallest difference a verdict counts as real: twice the pooled seed-to-seed standard
 * deviation of the two quantities, and never less than `floor` (one or two seeds give a poor
 * estimate of the spread).
 */
export function threshold(a: OverSeeds, b: OverSeeds, floor: number): number {
  const pooled = Math.sqrt((a.sd ** 2 + b.sd ** 2) / 2);
  return Math.max(2 * pooled, floor);
}

export interface CurveSeries {
  label: string;
  x: number[];
  mean: number[];
  lo: number[];
  hi: number[];
}

/** A metric per epoch: mean over seeds and a band of one standard deviation. */
export function curve(run: StoredRunResult, key: keyof EpochMetrics, label: string, opts: { lastN?: number; initial?: number } = {}): CurveSeries {
  const epochs = run.seeds[0]!.epochs.length;
  const from = opts.lastN !== undefined ? Math.max(0, epochs - opts.lastN) : 0;
  const x: number[] = [];
  const m: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  if (opts.initial !== undefined && from === 0) {
    x.push(0);
    m.push(opts.initial);
    lo.push(opts.initial);
    hi.push(opts.initial);
  }
  for (let e = from; e < epochs; e++) {
    const vals = run.seeds.map((s) => s.epochs[e]![key] as number);
    const mu = mean(vals);
    const sd = std(vals);
    x.push(opts.lastN !== undefined ? e - from + 1 : e + 1);
    m.push(mu);
    lo.push(mu - sd);
    hi.push(mu + sd);
  }
  return { label, x, mean: m, lo, hi };
}

/** Spearman's rank correlation (average ranks for ties). */
export function spearman(x: readonly number[], y: readonly number[]): number {
  const rank = (v: readonly number[]): number[] => {
    const idx = v.map((val, i) => [val, i] as const).sort((a, b) => a[0] - b[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
      for (let k = i; k <= j; k++) r[idx[k]![1]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i]! - mx) * (ry[i]! - my);
    sxx += (rx[i]! - mx) ** 2;
    syy += (ry[i]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

export function measurement(label: string, v: OverSeeds, extra: { seed?: number; unit?: string } = {}): Measurement {
  return { label, value: v.mean, ...(v.values.length > 1 ? { spread: v.sd } : {}), seeds: v.values.length, ...extra };
}

export const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
export const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
