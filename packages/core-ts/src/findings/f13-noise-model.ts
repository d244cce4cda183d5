// F13 (beyond the study): the size of a step follows the noise model of the gradient. With |G|^2
// and tr(Sigma) estimated from the trials' first steps (the estimate behind B_simple), the
// root-mean-square norm of a batch-sum step, sqrt(b^2 |G|^2 + b tr(Sigma) (N - b) / (N - 1)),
// is predicted at every b and set against what the trials measure: the first steps' RMS norm
// (does the law have the right form?), the mean step norm with the weights frozen (the same
// weights at every step, as the model assumes; below the RMS by E|g| <= sqrt(E|g|^2)) and
// moving (F4's trials). Its local exponent is 1/2 below B_simple and 1 above; docs/findings.md,
// F13, and McCandlish et al. 2018.

import { pointsLinesFigure } from '../report/figures.js';
import type { GradStudyResult } from '../experiments/grad-study.js';
import { crossoverBatch, localExponent, predictedStepNorm, type NoiseModel } from '../stats/noise-model.js';
import { fitPowerLaw } from '../stats/regression.js';
import { fitsOf, mainFit } from './f04-gradient-norm.js';
import { gradOf, type Finding, type RegimeKey } from './finding.js';
import type { FigureSpec, Measurement, Verdict } from './types.js';
import { fmt } from './util.js';
import { mean, std } from '../stats/descriptive.js';

/** The law fits a batch size when its RMS step is within this many standard errors of the measured one... */
export const F13_CURVE_SE = 3;
/** ...or within this fraction of it. */
export const F13_CURVE_FLOOR = 0.01;
/** The smallest half-width of the band around the measured exponent that counts as agreement. */
export const F13_EXPONENT_TOLERANCE = 0.05;

const REGIMES = ['early', 'late'] as const;

export interface NoiseModelCheck {
  regime: 'early' | 'late';
  model: NoiseModel;
  bSimple: number;
  bSimpleCi95: [number, number];
  /** Where the local exponent of the batch-sum step crosses 3/4 (with its interval). */
  crossover: number;
  crossoverCi95: [number, number];
  /**
   * Per batch size: the prediction; the first steps' RMS batch-sum norm with its relative
   * standard error; the frozen and the moving trials' mean batch-sum step norm.
   */
  rows: { b: number; predicted: number; rms: number; rmsSe: number; frozen?: number; moving: number }[];
  /** Batch sizes where the law misses the RMS norm by more than its band (F13_CURVE_SE standard errors, at least F13_CURVE_FLOOR). */
  misses: number[];
  /** max over b of |rms / predicted - 1|. */
  worstMiss: number;
  /** max over b of 1 - frozen / predicted (the mean below the RMS), when there are frozen trials. */
  frozenGap?: number;
  /** The exponent of the prediction over F4's fit range, and the moving trials' fitted one. */
  predictedExponent: number;
  movingExponent: number;
  movingExponentCi95: [number, number];
  range: [number, number];
}

/** The noise model of one regime set against its trials, or undefined without a noise-scale estimate or a fit. */
export function checkNoiseModel(regime: 'early' | 'late', moving: GradStudyResult, frozen?: GradStudyResult): NoiseModelCheck | undefined {
  const ns = moving.noiseScale;
  const fits = fitsOf(moving, 'stepNorm', 'sum');
  if (!ns || !fits) return undefined;
  const model: NoiseModel = { gradNorm2: ns.gradNorm2, traceCov: ns.traceCov, ...(ns.populationSize !== undefined ? { populationSize: ns.populationSize } : {}) };
  const rows = moving.points.map((p) => {
    const f = frozen?.points.find((q) => q.b === p.b);
    // RMS of the first step, sqrt(mean |g_1|^2) x b; its relative standard error is half that of the mean square
    const sq = p.perTrial.firstStepNorm2;
    const m2 = mean(sq);
    const rmsSe = sq.length > 1 ? std(sq) / m2 / Math.sqrt(sq.length) / 2 : Number.POSITIVE_INFINITY;
    return { b: p.b, predicted: predictedStepNorm(model, p.b, 'sum'), rms: p.b * Math.sqrt(m2), rmsSe, moving: p.sum.stepNorm.mean, ...(f ? { frozen: f.sum.stepNorm.mean } : {}) };
  });
  const miss = (r: (typeof rows)[number]) => Math.abs(r.rms / r.predicted - 1);
  const misses = rows.filter((r) => miss(r) > Math.max(F13_CURVE_SE * r.rmsSe, F13_CURVE_FLOOR)).map((r) => r.b);
  const withFrozen = rows.filter((r) => r.frozen !== undefined);
  const m = mainFit(fits);
  const inRange = rows.filter((r) => r.b >= m.range[0] && r.b <= m.range[1]);
  const predictedExponent = inRange.length >= 2 ? fitPowerLaw(inRange.map((r) => r.b), inRange.map((r) => r.predicted)).exponent : Number.NaN;
  // the crossover from B_simple's interval: b* = B N / (N - 1 - B) grows with B
  const at = (B: number) => crossoverBatch({ gradNorm2: 1, traceCov: B, ...(model.populationSize !== undefined ? { populationSize: model.populationSize } : {}) });
  return {
    regime,
    model,
    bSimple: ns.bSimple,
    bSimpleCi95: ns.ci95,
    crossover: crossoverBatch(model),
    crossoverCi95: [at(ns.ci95[0]), at(ns.ci95[1])],
    rows,
    misses,
    worstMiss: Math.max(...rows.map(miss)),
    ...(withFrozen.length > 0 ? { frozenGap: Math.max(...withFrozen.map((r) => 1 - r.frozen! / r.predicted)) } : {}),
    predictedExponent,
    movingExponent: m.exponent,
    movingExponentCi95: m.exponentCi95,
    range: m.range,
  };
}

/** The prediction's exponent agrees with the measured one: inside its 95% interval widened to at least +-tolerance. */
export function exponentAgrees(c: NoiseModelCheck): boolean {
  const half = Math.max((c.movingExponentCi95[1] - c.movingExponentCi95[0]) / 2, F13_EXPONENT_TOLERANCE);
  return Math.abs(c.predictedExponent - c.movingExponent) <= half;
}

export const F13: Finding = {
  id: 'F13',
  title: 'The noise model of the step',
  claim:
    "The batch-sum gradient of b samples has an expected squared norm of b^2 |G|^2 + b tr(Sigma) (times the finite-population factor), so its norm grows like sqrt(b) while b is well below B_simple = tr(Sigma) / |G|^2 and like b well above. With |G|^2 and tr(Sigma) measured from the trials' first steps, this law gives the size of a step at every batch size and the growth of F4's mean step norm, and the study's sqrt(b) is its noise-dominated side.",
  beyond: true,
  runs: () => ['regime-early', 'b1024'],
  gradStudies: ['early', 'late', 'early-frozen', 'late-frozen'],
  analyze(ctx) {
    const checks = REGIMES.map((r) => checkNoiseModel(r, gradOf(ctx, r), ctx.grad.get(`${r}-frozen` as RegimeKey)));
    const measured: Measurement[] = [];
    const notes: string[] = [];
    checks.forEach((c, i) => {
      const r = REGIMES[i]!;
      if (!c) {
        notes.push(`${r}: too few batch sizes for a noise-scale estimate and a fit.`);
        return;
      }
      const ns = gradOf(ctx, r).noiseScale!;
      measured.push(
        { label: `B_simple, ${r} (95% interval ${fmt(c.bSimpleCi95[0], 1)} to ${fmt(c.bSimpleCi95[1], 1)})`, value: c.bSimple, key: true },
        { label: `|G|^2, ${r} (95% interval ${fmt(ns.gradNorm2Ci95[0], 4)} to ${fmt(ns.gradNorm2Ci95[1], 4)})`, value: ns.gradNorm2 },
        { label: `tr(Sigma), ${r} (95% interval ${fmt(ns.traceCovCi95[0], 2)} to ${fmt(ns.traceCovCi95[1], 2)})`, value: ns.traceCov },
        { label: `b where the step's local exponent crosses 3/4, ${r} (95% interval ${fmt(c.crossoverCi95[0], 1)} to ${fmt(c.crossoverCi95[1], 1)})`, value: c.crossover },
        { label: `largest relative miss of the law on the first steps' RMS norm, ${r}${c.misses.length > 0 ? ` (outside the band at b ${c.misses.join(', ')})` : ' (inside the band at every b)'}`, value: c.worstMiss },
        ...(c.frozenGap !== undefined ? [{ label: `largest shortfall of the frozen trials' mean step norm below the RMS law (E|g| <= sqrt(E|g|^2)), ${r}`, value: c.frozenGap }] : []),
        { label: `exponent of the predicted batch-sum step norm over b ${c.range[0]}-${c.range[1]}, ${r}`, value: c.predictedExponent },
        {
          label: `exponent of the measured (moving) batch-sum step norm over b ${c.range[0]}-${c.range[1]}, ${r} (95% interval ${fmt(c.movingExponentCi95[0], 3)} to ${fmt(c.movingExponentCi95[1], 3)})`,
          value: c.movingExponent,
          seed: 0.5,
          ...(r === 'early' ? { key: true } : {}),
        },
      );
    });
    const ok = checks.filter((c): c is NoiseModelCheck => c !== undefined);
    const curveOk = ok.length === REGIMES.length && ok.every((c) => c.misses.length === 0);
    const expOk = ok.length === REGIMES.length && ok.every(exponentAgrees);
    const verdict: Verdict = curveOk && expOk ? 'reproduced' : curveOk || expOk ? 'partly' : 'not reproduced';
    const per = ok.map(
      (c) =>
        `${c.regime}: B_simple ${fmt(c.bSimple, 1)} [${fmt(c.bSimpleCi95[0], 1)}, ${fmt(c.bSimpleCi95[1], 1)}], the law within ${fmt(100 * c.worstMiss, 1)}% of the first steps' RMS norm (${c.misses.length === 0 ? 'inside the band at every b' : `outside it at b ${c.misses.join(', ')}`}); ` +
        `over b ${c.range[0]}-${c.range[1]} the predicted exponent is ${fmt(c.predictedExponent, 3)}, the moving trials' ${fmt(c.movingExponent, 3)} [${fmt(c.movingExponentCi95[0], 3)}, ${fmt(c.movingExponentCi95[1], 3)}]`,
    );
    // the plain answer: is the study's sqrt(b) the noise-dominated side of the model?
    const answer = ok.map((c) => {
      const below = c.range[1] < c.crossover;
      const side = below
        ? `the whole range lies below the crossover (b ${fmt(c.crossover, 0)}), on the noise-dominated side where the step grows like sqrt(b)`
        : c.range[0] >= c.crossover
          ? `the whole range lies above the crossover (b ${fmt(c.crossover, 0)}), where the step grows like b`
          : `the range straddles the crossover (b ${fmt(c.crossover, 0)}): sqrt(b) below it, towards b above it, ${fmt(c.predictedExponent, 2)} on average`;
      return `${c.regime}: ${side}; the trials ${exponentAgrees(c) ? 'follow' : 'do not follow'} the prediction`;
    });
    if (ok.length > 0) {
      notes.unshift(
        `Does the noise model explain the study's sqrt(b)? ${answer.join('; ')}. ` +
          (expOk
            ? "Yes: the study's sqrt(b) is the sampling noise of a step of b samples, visible while b is below B_simple; it bends towards b beyond."
            : 'Only in part: the moving trials depart from the prediction, so the model moving during a trial adds to (or takes from) what sampling explains (F14).'),
      );
    }
    const figures: FigureSpec[] = [];
    for (const c of ok) {
      const bs = c.rows.map((r) => r.b);
      const dense = Array.from({ length: 61 }, (_, i) => Math.exp(Math.log(Math.min(...bs)) + ((Math.log(Math.max(...bs)) - Math.log(Math.min(...bs))) * i) / 60));
      const first = c.rows.map((r) => ({ x: r.b, y: r.rms, lo: r.rms * (1 - F13_CURVE_SE * r.rmsSe), hi: r.rms * (1 + F13_CURVE_SE * r.rmsSe), group: 'first step, RMS (the fit\'s input)' }));
      figures.push({
        id: `f13-${c.regime}-curve`,
        title: `Predicted and measured step norm against batch size, ${c.regime} regime`,
        caption:
          `The noise model's root-mean-square norm of a batch-sum step (line), with |G|^2 and tr(Sigma) from the first steps; points: the first step's RMS norm (bars: ${F13_CURVE_SE} standard errors), and the mean step norm of the trials with the weights frozen and moving (F4). ` +
          `Dashed: sqrt(b) and b through the prediction at b = ${Math.min(...bs)} and ${Math.max(...bs)}; the vertical line is B_simple.`,
        vegaLite: pointsLinesFigure({
          points: [
            ...c.rows.filter((r) => r.frozen !== undefined).map((r) => ({ x: r.b, y: r.frozen!, group: 'frozen trials' })),
            ...c.rows.map((r) => ({ x: r.b, y: r.moving, group: 'moving trials (F4)' })),
            ...first,
          ],
          lines: [
            { label: 'noise model', x: dense, y: dense.map((b) => predictedStepNorm(c.model, b, 'sum')) },
            { label: 'sqrt(b)', x: dense, y: dense.map((b) => predictedStepNorm(c.model, Math.min(...bs), 'sum') * Math.sqrt(b / Math.min(...bs))), dashed: true },
            { label: 'b', x: dense, y: dense.map((b) => (predictedStepNorm(c.model, Math.max(...bs), 'sum') * b) / Math.max(...bs)), dashed: true },
          ],
          rules: [{ x: c.bSimple, label: `B_simple ${fmt(c.bSimple, 0)}` }],
          xTitle: 'batch size b',
          yTitle: 'norm of a batch-sum step of the last layer',
        }),
      });
    }
    if (ok.length > 0) {
      const slopes = (pts: { b: number; y: number }[]) =>
        pts.slice(1).map((q, i) => ({ x: Math.sqrt(q.b * pts[i]!.b), y: Math.log(q.y / pts[i]!.y) / Math.log(q.b / pts[i]!.b) }));
      figures.push({
        id: 'f13-local-exponent',
        title: "Local exponent of the step norm against batch size",
        caption:
          "d log|step| / d log b of the noise model (lines: 1/2 where noise dominates, 1 where the mean gradient does, 3/4 at the crossover), and between neighbouring batch sizes of the frozen and the moving trials (points).",
        vegaLite: pointsLinesFigure({
          points: ok.flatMap((c) => [
            ...slopes(c.rows.filter((r) => r.frozen !== undefined).map((r) => ({ b: r.b, y: r.frozen! }))).map((p) => ({ ...p, group: `${c.regime}, frozen trials` })),
            ...slopes(c.rows.map((r) => ({ b: r.b, y: r.moving }))).map((p) => ({ ...p, group: `${c.regime}, moving trials` })),
          ]),
          lines: ok.map((c) => {
            const bs = c.rows.map((r) => r.b);
            const x = Array.from({ length: 61 }, (_, i) => Math.exp(Math.log(Math.min(...bs)) + ((Math.log(Math.max(...bs)) - Math.log(Math.min(...bs))) * i) / 60));
            return { label: `${c.regime}, noise model`, x, y: x.map((b) => localExponent(c.model, b)) };
          }),
          xTitle: 'batch size b',
          yTitle: 'local exponent',
          yScale: 'linear',
        }),
      });
    }
    return {
      verdict,
      reason:
        `${per.join('. ')}. ` +
        `Rule: reproduced when, in both regimes, the law is within ${F13_CURVE_SE} standard errors (at least ${100 * F13_CURVE_FLOOR}%) of the first steps' RMS norm at every b, and its exponent over F4's fit range lies within the moving trials' 95% interval (widened to at least +-${F13_EXPONENT_TOLERANCE}); partly when one of the two holds.`,
      measured,
      figures,
      deviations: ctx.profile.name === 'full' ? [] : [`${gradOf(ctx, 'early').trials} trials per batch size instead of 1000`],
      notes,
    };
  },
};
