// F14 (beyond the study): where the spread of a trial's step comes from. A trial averages its
// statistic over 1024/b steps; if the steps were independent draws, the relative spread of the
// trial's mean step norm would be one step's relative spread over sqrt(steps), i.e. it would
// grow like sqrt(b / 1024) times one step's. The control the study could not run: the same
// trials with the weights frozen (step lr 0: the same samples, no update), where the batch-sum
// S is the sum of the 1024 per-sample gradients whatever b, so |S| (batch-mean) falls exactly
// like 1/b and its relative spread cannot depend on b. Comparing frozen and moving trials on the
// statistics of F4-F6 tells which of the study's effects come from sampling alone and which
// from the model moving during a trial. docs/findings.md, F14.

import { pointsLinesFigure } from '../report/figures.js';
import type { GradStudyPoint, GradStudyResult } from '../experiments/grad-study.js';
import { mean, quantile, std } from '../stats/descriptive.js';
import { fitLine, fitPowerLaw } from '../stats/regression.js';
import { uniformAt } from '../rng/philox.js';
import { fitsOf, mainFit } from './f04-gradient-norm.js';
import { gradOf, type Finding, type RegimeKey } from './finding.js';
import type { FigureSpec, Measurement, Verdict } from './types.js';
import { fmt, spearman } from './util.js';

const REGIMES = ['early', 'late'] as const;

/** Relative spread (coefficient of variation) over trials. */
function cv(xs: readonly number[]): number {
  return std(xs) / mean(xs);
}

/** |g_1| of every trial: the norm of one step at the regime's weights. */
function firstStepNorms(p: GradStudyPoint): number[] {
  return p.perTrial.firstStepNorm2.map(Math.sqrt);
}

export interface SpreadCheck {
  /** b dividing the samples per trial, with more than one step. */
  b: number;
  steps: number;
  /** One step's relative spread over trials (from the first steps). */
  stepCv: number;
  /** The trial's mean step norm: measured relative spread, and the independent-steps prediction. */
  measured: number;
  predicted: number;
}

/**
 * The independent-steps prediction at each b dividing the samples per trial (with more than
 * one step): CV(mean step norm) = CV(one step's norm) / sqrt(steps) x sqrt((N - k) / (N - 1)),
 * the last factor for k samples drawn without replacement from N. Returns the checks and the
 * geometric mean over b of measured / predicted, with a 95% bootstrap interval that resamples
 * the trials of each b (a trial's first step and its mean step norm together).
 */
export function independentSteps(g: GradStudyResult, population: number, opts: { bootstrap?: number; seed?: number } = {}): { rows: SpreadCheck[]; ratio: number; ci95: [number, number] } {
  const k = g.samplesPerTrial;
  const fpc = population > 1 ? Math.sqrt(Math.max(0, population - k) / (population - 1)) : 1;
  const pts = g.points.filter((p) => k % p.b === 0 && p.steps > 1);
  const predict = (p: GradStudyPoint, stepCv: number) => (stepCv / Math.sqrt(p.steps)) * fpc;
  const rows: SpreadCheck[] = pts.map((p) => {
    const stepCv = cv(firstStepNorms(p));
    return { b: p.b, steps: p.steps, stepCv, measured: cv(p.perTrial.stepNormSum), predicted: predict(p, stepCv) };
  });
  if (rows.length === 0) return { rows, ratio: Number.NaN, ci95: [Number.NaN, Number.NaN] };
  const ratio = Math.exp(mean(rows.map((r) => Math.log(r.measured / r.predicted))));
  const reps = opts.bootstrap ?? 400;
  const boots: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let s = 0;
    pts.forEach((p, j) => {
      const n = p.trials;
      const first = firstStepNorms(p);
      const a: number[] = [];
      const m: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = Math.floor(uniformAt(opts.seed ?? 0, i, rep, 0x4200 + j, 0) * n);
        a.push(first[t]!);
        m.push(p.perTrial.stepNormSum[t]!);
      }
      s += Math.log(cv(m) / predict(p, cv(a)));
    });
    boots.push(Math.exp(s / pts.length));
  }
  return { rows, ratio, ci95: [quantile(boots, 0.025), quantile(boots, 0.975)] };
}

export interface FrozenControl {
  /** Exponent of frozen mean |S| (batch-mean) over b dividing the samples per trial, with its 95% interval. */
  exponent: number;
  exponentCi95: [number, number];
  /** Slope of the relative spread of frozen |S| against log2 b, with its 95% interval. */
  cvSlope: number;
  cvSlopeCi95: [number, number];
  meanCv: number;
}

export function frozenControl(g: GradStudyResult): FrozenControl | undefined {
  const pts = g.points.filter((p) => g.samplesPerTrial % p.b === 0);
  if (pts.length < 3) return undefined;
  const f = fitPowerLaw(pts.map((p) => p.b), pts.map((p) => p.mean.sumNorm.mean));
  const cvs = g.points.map((p) => cv(p.perTrial.sumNormMean));
  const line = fitLine(g.points.map((p) => Math.log2(p.b)), cvs);
  return { exponent: f.exponent, exponentCi95: f.exponentCi95, cvSlope: line.slope, cvSlopeCi95: line.slopeCi95, meanCv: mean(cvs) };
}

/** The control holds: |S| falls like 1/b (the interval covers -1) and its relative spread has no trend in b (the interval covers 0). */
export function controlHolds(c: FrozenControl): boolean {
  return c.exponentCi95[0] <= -1 && c.exponentCi95[1] >= -1 && c.cvSlopeCi95[0] <= 0 && c.cvSlopeCi95[1] >= 0;
}

/** Spearman's rank correlation of b with a per-b statistic (F5's and F6's measures). */
function rho(g: GradStudyResult, stat: (p: GradStudyPoint) => number): number {
  return spearman(g.points.map((p) => p.b), g.points.map(stat));
}

const relSpread = (p: GradStudyPoint) => {
  const v = p.perTrial.sumNormMean;
  return (quantile(v, 0.95) - quantile(v, 0.05)) / quantile(v, 0.5);
};

/** A power-law exponent over F4's fit range: present when its 95% interval lies above 0. */
function growth(stat: 'sumNorm' | 'stepNorm') {
  return (g: GradStudyResult) => {
    const f = fitsOf(g, stat, 'sum');
    if (!f) return undefined;
    const m = mainFit(f);
    return { value: m.exponent, present: m.exponentCi95[0] > 0 };
  };
}

/** Spearman's rho of b with a per-b statistic: present from 0.7 (F5's and F6's rule). */
function ranks(stat: (p: GradStudyPoint) => number) {
  return (g: GradStudyResult) => {
    const r = rho(g, stat);
    return { value: r, present: r >= 0.7 };
  };
}

/** The study's effects of F4-F6, each measured on a set of trials and judged present or not. */
export const EFFECTS: { id: string; what: string; measure: (g: GradStudyResult) => { value: number; present: boolean } | undefined; unit: string }[] = [
  { id: 'F4', what: 'batch-sum |S| grows with b (larger steps for the same samples)', measure: growth('sumNorm'), unit: 'exponent over b >= 16; present when its 95% interval is above 0' },
  { id: 'F4', what: 'batch-sum mean step norm grows with b', measure: growth('stepNorm'), unit: 'exponent over b >= 16; present when its 95% interval is above 0' },
  { id: 'F5', what: 'the relative spread of |S| grows with b', measure: ranks((p) => p.scaled.mean.sumNorm.std), unit: "Spearman's rho with b; present from 0.7" },
  { id: 'F6', what: 'the relative 5-95% spread of |S| grows with b', measure: ranks(relSpread), unit: "Spearman's rho with b; present from 0.7" },
];

export const F14: Finding = {
  id: 'F14',
  title: 'Where the spread comes from: frozen weights against moving ones',
  claim:
    "A trial's spread is sampling: its steps behave as independent draws, so the relative spread of its mean step norm is one step's relative spread over sqrt(1024/b), growing like sqrt(b/1024). With the weights frozen (the same samples, no update), |S| times b is the norm of the sum of the 1024 per-sample gradients whatever b: |S| falls exactly like 1/b and its relative spread does not depend on b. Set against the moving trials, this tells which of the study's effects (F4-F6) come from sampling and which from the model moving during a trial.",
  beyond: true,
  runs: () => ['regime-early', 'b1024'],
  gradStudies: ['early', 'late', 'early-frozen', 'late-frozen'],
  analyze(ctx) {
    const measured: Measurement[] = [];
    const notes: string[] = [];
    const population = (g: GradStudyResult) => g.noiseScale?.populationSize ?? Number.POSITIVE_INFINITY;
    const per = REGIMES.map((r) => {
      const mv = gradOf(ctx, r);
      const fz = gradOf(ctx, `${r}-frozen` as RegimeKey);
      const control = frozenControl(fz);
      const indFrozen = independentSteps(fz, population(mv));
      const indMoving = independentSteps(mv, population(mv));
      const covers = (x: { ci95: [number, number] }) => x.ci95[0] <= 1 && x.ci95[1] >= 1;
      return { r, mv, fz, control, indFrozen, indMoving, p1p2: control !== undefined && controlHolds(control), p3: covers(indFrozen), p4: covers(indMoving) };
    });
    for (const x of per) {
      measured.push(
        {
          label: `frozen trials: measured / independent-steps spread of the mean step norm, ${x.r} (95% interval ${fmt(x.indFrozen.ci95[0], 3)} to ${fmt(x.indFrozen.ci95[1], 3)})`,
          value: x.indFrozen.ratio,
          ...(x.r === 'early' ? { key: true } : {}),
        },
        {
          label: `moving trials: measured / independent-steps spread of the mean step norm, ${x.r} (95% interval ${fmt(x.indMoving.ci95[0], 3)} to ${fmt(x.indMoving.ci95[1], 3)})`,
          value: x.indMoving.ratio,
          ...(x.r === 'early' ? { key: true } : {}),
        },
      );
      if (x.control) {
        measured.push(
          {
            label: `frozen trials: exponent of |S| (batch-mean) against b, ${x.r} (95% interval ${fmt(x.control.exponentCi95[0], 4)} to ${fmt(x.control.exponentCi95[1], 4)})`,
            value: x.control.exponent,
            ...(x.r === 'early' ? { key: true } : {}),
          },
          {
            label: `frozen trials: change of the relative spread of |S| per doubling of b, ${x.r} (95% interval ${fmt(x.control.cvSlopeCi95[0], 4)} to ${fmt(x.control.cvSlopeCi95[1], 4)}; mean spread ${fmt(x.control.meanCv, 4)})`,
            value: x.control.cvSlope,
          },
        );
      }
    }
    // the study's two open questions, answered from these trials
    const fmtRatio = (x: { ratio: number }) => fmt(x.ratio, 2);
    const sumSpread = (g: GradStudyResult) => EFFECTS[2]!.measure(g);
    notes.push(
      `The study's open questions. The law linking b to the spread: with frozen weights a trial's mean step norm has one step's relative spread over sqrt(1024/b), i.e. it grows like sqrt(b/1024) times one step's ` +
        `(measured / predicted ${per.map((x) => `${x.r} ${fmtRatio(x.indFrozen)}`).join(', ')}); with moving weights the spread is larger (${per.map((x) => `${x.r} x${fmtRatio(x.indMoving)}`).join(', ')} the prediction). ` +
        `Why the spread grows with b: for the mean step norm, because a trial averages 1024/b steps (sampling); for |S| (F5, F6), ${per.some((x) => sumSpread(x.mv)?.present && !sumSpread(x.fz)?.present) ? 'because the model moves during a trial: with frozen weights its relative spread is the same at every b' : 'the trials here show no growth with moving weights that frozen weights lack'}.`,
    );
    // which of the study's effects come from sampling, which from the model moving
    for (const e of EFFECTS) {
      for (const x of per) {
        const m = e.measure(x.mv);
        const f = e.measure(x.fz);
        if (m === undefined || f === undefined) continue;
        measured.push({ label: `${e.id}, ${e.what}: moving, ${x.r} (${e.unit})`, value: m.value }, { label: `${e.id}, ${e.what}: frozen, ${x.r} (${e.unit})`, value: f.value });
      }
      const attribution = per
        .map((x) => {
          const m = e.measure(x.mv);
          const f = e.measure(x.fz);
          if (m === undefined || f === undefined) return `${x.r}: not measured`;
          const inM = m.present;
          const inF = f.present;
          const source = inM && inF ? 'sampling alone (present with frozen weights too)' : inM ? 'the model moving during the trial (absent with frozen weights)' : inF ? 'sampling, but the moving model hides it' : 'absent in both';
          return `${x.r}: ${fmt(m.value, 2)} moving, ${fmt(f.value, 2)} frozen — ${source}`;
        })
        .join('; ');
      notes.push(`${e.id} (${e.what}): ${attribution}.`);
    }
    const all = (k: 'p1p2' | 'p3' | 'p4') => per.every((x) => x[k]);
    const some = per.some((x) => x.p3 || x.p4);
    const verdict: Verdict = all('p1p2') && all('p3') && all('p4') ? 'reproduced' : all('p1p2') && some ? 'partly' : 'not reproduced';
    const said = (ok: boolean) => (ok ? 'holds' : 'does not hold');
    const reason =
      `With frozen weights, |S| falls like 1/b and its relative spread is flat in b: ${said(all('p1p2'))} (${per.map((x) => `${x.r}: exponent ${x.control ? fmt(x.control.exponent, 4) : '?'}, spread slope ${x.control ? fmt(x.control.cvSlope, 4) : '?'}`).join('; ')}). ` +
      `Independent steps predict the spread of the mean step norm (measured / predicted, geometric mean over b dividing 1024): with frozen weights ${per.map((x) => `${x.r} ${fmt(x.indFrozen.ratio, 3)} [${fmt(x.indFrozen.ci95[0], 3)}, ${fmt(x.indFrozen.ci95[1], 3)}] (${said(x.p3)})`).join(', ')}; ` +
      `with moving weights ${per.map((x) => `${x.r} ${fmt(x.indMoving.ratio, 3)} [${fmt(x.indMoving.ci95[0], 3)}, ${fmt(x.indMoving.ci95[1], 3)}] (${said(x.p4)})`).join(', ')}. ` +
      'Rule: a prediction holds when its 95% interval covers it (exponent -1, slope 0, ratio 1); reproduced when the frozen control holds in both regimes and independent steps predict the spread with frozen and with moving weights in both; partly when the control holds and independent steps predict the spread in at least one regime, frozen or moving; not reproduced otherwise.';
    const figures: FigureSpec[] = [];
    figures.push({
      id: 'f14-sum-norm',
      title: '|S| times b with frozen and moving weights',
      caption:
        'Mean over trials of |S| (batch-mean loss) times b, i.e. of the batch-sum |S|, with one standard deviation: with frozen weights it is the norm of the sum of the 1024 per-sample gradients, the same for every b; with moving weights it is not.',
      vegaLite: pointsLinesFigure({
        points: per.flatMap((x) =>
          (['moving', 'frozen'] as const).flatMap((w) =>
            (w === 'moving' ? x.mv : x.fz).points.map((p) => ({ x: p.b, y: p.sum.sumNorm.mean, lo: p.sum.sumNorm.mean - p.sum.sumNorm.std, hi: p.sum.sumNorm.mean + p.sum.sumNorm.std, group: `${x.r}, ${w}` })),
          ),
        ),
        xTitle: 'batch size b',
        yTitle: '|S| x b (batch-sum |S|)',
      }),
    });
    figures.push({
      id: 'f14-spread',
      title: 'Relative spread of the mean step norm: measured and independent steps',
      caption:
        "Relative spread over trials of a trial's mean step norm (points), and the independent-steps prediction from one step's spread (the first steps'), CV(one step) / sqrt(1024/b) x sqrt((N - 1024) / (N - 1)) (dashed), for b dividing 1024 with more than one step.",
      vegaLite: pointsLinesFigure({
        points: per.flatMap((x) => [
          ...x.indFrozen.rows.map((q) => ({ x: q.b, y: q.measured, group: `${x.r}, frozen` })),
          ...x.indMoving.rows.map((q) => ({ x: q.b, y: q.measured, group: `${x.r}, moving` })),
        ]),
        // frozen and moving trials share their first steps, hence the prediction
        lines: per.map((x) => ({ label: `${x.r}, independent steps`, x: x.indFrozen.rows.map((q) => q.b), y: x.indFrozen.rows.map((q) => q.predicted), dashed: true })),
        xTitle: 'batch size b',
        yTitle: 'relative spread over trials',
      }),
    });
    figures.push({
      id: 'f14-sum-spread',
      title: 'Relative spread of |S| with frozen and moving weights',
      caption: "Relative spread over trials of |S| (standard deviation over mean, F5's measure): flat in b with frozen weights.",
      vegaLite: pointsLinesFigure({
        points: per.flatMap((x) =>
          (['moving', 'frozen'] as const).flatMap((w) => (w === 'moving' ? x.mv : x.fz).points.map((p) => ({ x: p.b, y: cv(p.perTrial.sumNormMean), group: `${x.r}, ${w}` }))),
        ),
        xTitle: 'batch size b',
        yTitle: 'relative spread of |S|',
      }),
    });
    return {
      verdict,
      reason,
      measured,
      figures,
      deviations: ctx.profile.name === 'full' ? [] : [`${gradOf(ctx, 'early').trials} trials per batch size instead of 1000`],
      notes,
    };
  },
};
