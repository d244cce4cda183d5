// F15 (beyond the study): the critical batch size, measured directly. For each batch size of a
// grid, the learning rate is tuned over a few values (seeds as replicas), and the SGD steps to a
// target are counted from the per-epoch evaluations: the test accuracy the b64 baseline reaches
// at its last epoch, and its final training loss. steps(b) = S_min (1 + B_crit / b) is fitted
// and B_crit set against the gradient noise scale B_simple measured at the target (first steps
// from the b64 baseline's final weights). McCandlish, Kaplan, Amodei et al., "An Empirical Model
// of Large-Batch Training", 2018; Shallue et al., "Measuring the Effects of Data Parallelism on
// Neural Network Training", 2019; docs/findings.md, F15.

import { pointsLinesFigure } from '../report/figures.js';
import type { StoredRunResult } from '../experiments/run.js';
import {
  bestSteps,
  criticalBatchInterval,
  fitCriticalBatch,
  stepsToTarget,
  type BatchRuns,
  type CriticalBatchFit,
  type SeedCrossing,
} from '../stats/critical-batch.js';
import { criticalBatchGrid } from './beyond-runs.js';
import { criticalBatchCells, type CriticalBatchCell } from './catalog.js';
import { gradOf, runOf, type AnalysisContext, type Finding } from './finding.js';
import type { FigureSpec, Measurement, Verdict } from './types.js';
import { fmt, lastEpoch, pct } from './util.js';

/** B_crit agrees with B_simple when their ratio lies within [1 / F15_FACTOR, F15_FACTOR]. */
export const F15_FACTOR = 2;

export interface CriticalBatchTarget {
  name: 'test accuracy' | 'training loss';
  metric: 'testAcc' | 'trainLoss';
  direction: 'above' | 'below';
  value: number;
}

/** Per seed of a run: the steps at which its metric first reaches the target (undefined: never). */
export function runCrossings(run: StoredRunResult, t: CriticalBatchTarget): (SeedCrossing | undefined)[] {
  return run.seeds.map((s) => {
    let steps = 0;
    const xs: number[] = [];
    const ys: number[] = [];
    for (const e of s.epochs) {
      const phase = run.spec.phases[e.phase]!;
      steps += Math.ceil(run.trainCount / phase.batchSize);
      xs.push(steps);
      ys.push(e[t.metric]);
    }
    const c = stepsToTarget({ steps: xs, values: ys }, t.value, t.direction);
    return c ? { steps: c.steps, lo: c.lo, hi: c.hi } : undefined;
  });
}

export interface TargetResult {
  target: CriticalBatchTarget;
  runs: BatchRuns[];
  /** Per batch size that reached the target: the best learning rate and its steps (geometric mean over seeds, with the bracket). */
  best: { b: number; lr: number; steps: number; lo: number; hi: number }[];
  fit?: CriticalBatchFit & { ci95: [number, number] };
}

export function analyzeTarget(cells: CriticalBatchCell[], runOfKey: (k: CriticalBatchCell['key']) => StoredRunResult, t: CriticalBatchTarget, seed = 0): TargetResult {
  const bs = [...new Set(cells.map((c) => c.b))].sort((a, z) => a - z);
  const runs: BatchRuns[] = bs.map((b) => ({
    b,
    byLr: cells.filter((c) => c.b === b).map((c) => ({ lr: c.lr, seeds: runCrossings(runOfKey(c.key), t) })),
  }));
  const best: TargetResult['best'] = [];
  for (const r of runs) {
    const at = bestSteps(r);
    if (!at) continue;
    const seeds = r.byLr.find((x) => x.lr === at.lr)!.seeds as SeedCrossing[];
    const geo = (f: (s: SeedCrossing) => number) => Math.exp(seeds.reduce((a, s) => a + Math.log(Math.max(f(s), 1e-9)), 0) / seeds.length);
    best.push({ b: r.b, lr: at.lr, steps: at.steps, lo: geo((s) => Math.max(s.lo, s.hi / 2)), hi: geo((s) => s.hi) });
  }
  if (best.length < 3) return { target: t, runs, best };
  const fit = fitCriticalBatch(best.map((x) => ({ b: x.b, steps: x.steps })));
  return { target: t, runs, best, fit: { ...fit, ci95: criticalBatchInterval(runs, { seed }) } };
}

/** The targets at this suite: what the b64 baseline (lr 0.01) reaches at its last epoch, mean over its seeds. */
export function targetsOf(ctx: AnalysisContext): CriticalBatchTarget[] {
  const base = runOf(ctx, 'b64');
  return [
    { name: 'test accuracy', metric: 'testAcc', direction: 'above', value: lastEpoch(base, 'testAcc').mean },
    { name: 'training loss', metric: 'trainLoss', direction: 'below', value: lastEpoch(base, 'trainLoss').mean },
  ];
}

const within = (ratio: number) => ratio >= 1 / F15_FACTOR && ratio <= F15_FACTOR;

export const F15: Finding = {
  id: 'F15',
  title: 'The critical batch size, measured directly',
  claim:
    'Counting the SGD steps each batch size needs to reach a target, each at its best learning rate, the steps fall like 1/b (perfect scaling) for small batches and level off for large ones: steps(b) = S_min (1 + B_crit / b). The knee B_crit is predicted, within a factor of 2, by the gradient noise scale B_simple measured at the target.',
  beyond: true,
  runs: (p) => ['b64', 'regime-early', 'b1024', ...criticalBatchCells(p).map((c) => c.key)],
  gradStudies: ['early', 'late', 'target'],
  analyze(ctx) {
    const cells = criticalBatchCells(ctx.profile);
    const grid = criticalBatchGrid(ctx.profile);
    const results = targetsOf(ctx).map((t, i) => analyzeTarget(cells, (k) => runOf(ctx, k), t, i));
    // the grid's cells run their own seed count (one at quick): the steps are over those seeds
    const gridSeeds = cells.length > 0 ? runOf(ctx, cells[0]!.key).seeds.length : 0;
    const atTarget = gradOf(ctx, 'target').noiseScale;
    const bSimple = atTarget?.bSimple ?? Number.NaN;
    const measured: Measurement[] = [];
    const notes: string[] = [];
    const holds = results.map((r) => (r.fit && Number.isFinite(bSimple) ? within(r.fit.bCrit / bSimple) : false));
    for (const r of results) {
      const t = r.target;
      measured.push({
        label: `target: ${t.name} of b64 lr0.01 at its last epoch`,
        value: t.value,
        ...(t.metric === 'testAcc' ? { unit: 'fraction' } : {}),
      });
      for (const x of r.best) measured.push({ label: `${t.name}: steps to the target at b${x.b} (best lr ${x.lr}; bracket ${fmt(x.lo, 0)}-${fmt(x.hi, 0)})`, value: x.steps, seeds: gridSeeds });
      if (r.fit) {
        measured.push(
          { label: `${t.name}: B_crit (95% interval ${fmt(r.fit.ci95[0], 1)} to ${fmt(r.fit.ci95[1], 1)})`, value: r.fit.bCrit, key: true },
          { label: `${t.name}: S_min, the fewest steps`, value: r.fit.sMin },
          { label: `${t.name}: B_crit / B_simple at the target`, value: r.fit.bCrit / bSimple },
        );
      }
      const missing = r.runs.filter((x) => !r.best.some((y) => y.b === x.b)).map((x) => `b${x.b}`);
      if (missing.length > 0) notes.push(`${t.name}: no learning rate reached the target within its epochs at ${missing.join(', ')}; those batch sizes are left out of the fit.`);
    }
    if (atTarget) {
      measured.push({ label: `B_simple at the target (first steps at the end of b64 lr0.01; 95% interval ${fmt(atTarget.ci95[0], 1)} to ${fmt(atTarget.ci95[1], 1)})`, value: atTarget.bSimple, key: true });
    }
    // along the way: the noise scale early in training, at the target, and late
    const along: { where: string; b: number }[] = [];
    for (const r of ['early', 'late'] as const) {
      const ns = ctx.grad.get(r)?.noiseScale;
      if (!ns) continue;
      measured.push({ label: `B_simple, ${r} regime, for comparison (95% interval ${fmt(ns.ci95[0], 1)} to ${fmt(ns.ci95[1], 1)})`, value: ns.bSimple });
      along.push({ where: `the ${r} regime`, b: ns.bSimple });
    }
    if (atTarget) along.push({ where: 'the target', b: bSimple });
    along.sort((a, z) => a.b - z.b);
    const fitted = results.filter((r) => r.fit);
    if (along.length > 1 && fitted.length > 0) {
      const bc = Math.exp(fitted.reduce((a, r) => a + Math.log(r.fit!.bCrit), 0) / fitted.length);
      const nearest = along.reduce((a, x) => (Math.abs(Math.log(x.b / bc)) < Math.abs(Math.log(a.b / bc)) ? x : a));
      notes.push(
        `B_simple grows as training goes on: ${along.map((x) => `${fmt(x.b, 0)} at ${x.where}`).join(', ')}. The measured knee (${fmt(bc, 0)}${fitted.length > 1 ? ', geometric mean over the targets' : ''}) lies nearest the value at ${nearest.where} (${fmt(bc / nearest.b, 2)} x).`,
      );
    }
    const n = holds.filter(Boolean).length;
    const verdict: Verdict = n === results.length ? 'reproduced' : n > 0 ? 'partly' : 'not reproduced';
    const describe = (r: TargetResult, ok: boolean) =>
      r.fit
        ? `${r.target.name} (${r.target.metric === 'testAcc' ? pct(r.target.value) : fmt(r.target.value, 4)}): B_crit ${fmt(r.fit.bCrit, 1)} [${fmt(r.fit.ci95[0], 1)}, ${fmt(r.fit.ci95[1], 1)}], S_min ${fmt(r.fit.sMin, 0)} steps, ${fmt(r.fit.bCrit / bSimple, 2)} x B_simple (${ok ? 'within' : 'outside'} a factor of ${F15_FACTOR})`
        : `${r.target.name}: only ${r.best.length} batch sizes reached the target, too few to fit`;
    notes.push(`How the grid is scaled at this profile: ${grid.note}. Steps are counted at the evaluations after each epoch and interpolated between them; the interval of B_crit redraws each count within its bracket and resamples the seeds.`);
    const figures: FigureSpec[] = results
      .filter((r) => r.best.length > 0)
      .map((r) => {
        const bs = r.best.map((x) => x.b);
        const x = Array.from({ length: 61 }, (_, i) => Math.exp(Math.log(Math.min(...bs) / 2) + ((Math.log(Math.max(...bs) * 2) - Math.log(Math.min(...bs) / 2)) * i) / 60));
        const first = r.best[0]!;
        return {
          id: `f15-${r.target.metric}`,
          title: `SGD steps to the ${r.target.name} target against batch size`,
          caption:
            `Steps to reach ${r.target.metric === 'testAcc' ? pct(r.target.value) : fmt(r.target.value, 4)} (${r.target.name} of b64 lr0.01 at its last epoch) at the best learning rate of each batch size, with the bracket between evaluations; ` +
            'dashed: perfect scaling (steps ~ 1/b) through the smallest batch size; solid: the fit S_min (1 + B_crit / b); vertical lines: B_crit and B_simple at the target. Log-log axes.',
          vegaLite: pointsLinesFigure({
            points: [
              ...r.runs.flatMap((q) =>
                q.byLr.flatMap((c) => {
                  const ok = c.seeds.filter((s): s is SeedCrossing => s !== undefined);
                  return ok.length === c.seeds.length && ok.length > 0
                    ? [{ x: q.b, y: Math.exp(ok.reduce((a, s) => a + Math.log(s.steps), 0) / ok.length), group: `lr ${c.lr}` }]
                    : [];
                }),
              ),
              ...r.best.map((q) => ({ x: q.b, y: q.steps, lo: q.lo, hi: q.hi, group: 'best learning rate' })),
            ],
            lines: [
              { label: 'perfect scaling', x, y: x.map((b) => (first.steps * first.b) / b), dashed: true },
              ...(r.fit ? [{ label: 'S_min (1 + B_crit / b)', x, y: x.map((b) => r.fit!.sMin * (1 + r.fit!.bCrit / b)) }] : []),
            ],
            rules: [
              ...(r.fit ? [{ x: r.fit.bCrit, label: `B_crit ${fmt(r.fit.bCrit, 0)}` }] : []),
              ...(Number.isFinite(bSimple) ? [{ x: bSimple, label: `B_simple ${fmt(bSimple, 0)}` }] : []),
            ],
            xTitle: 'batch size b',
            yTitle: 'SGD steps to the target',
          }),
        };
      });
    return {
      verdict,
      reason:
        `${results.map((r, i) => describe(r, holds[i]!)).join('; ')}; B_simple at the target ${atTarget ? `${fmt(bSimple, 1)} [${fmt(atTarget.ci95[0], 1)}, ${fmt(atTarget.ci95[1], 1)}]` : 'not measured'}. ` +
        `Rule: the noise scale predicts the knee for a target when B_crit / B_simple lies within [1/${F15_FACTOR}, ${F15_FACTOR}] (three or more batch sizes must reach the target); reproduced when it does for both targets, partly for one.`,
      measured,
      figures,
      deviations: ctx.profile.name === 'full' ? [] : [`the grid: ${grid.note}`],
      notes,
    };
  },
};
