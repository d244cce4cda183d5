// F7: the individual values of the summed gradient have a heavier tail at larger batch sizes.
// Besides a scale-free measure of the tail (the verdict's), the study's own: raw counts beyond
// one threshold for every b, in the batch-mean and the batch-sum convention, to say which of
// the two gives its "about 1e5 values at b1024 against 1e2 at b2".

import { histogramFigure } from '../report/figures.js';
import type { GradStudyPoint } from '../experiments/grad-study.js';
import type { Histogram } from '../stats/descriptive.js';
import { fmt, spearman } from './util.js';
import { gradOf, type Finding, type RegimeKey } from './finding.js';
import type { Measurement, Verdict } from './types.js';

/** Standard deviation of a binned distribution (bin mid-points) and the share of values beyond k of them. */
export function tailShare(h: Histogram, k = 3): { sigma: number; share: number; total: number } {
  const mids = h.counts.map((_, i) => (h.edges[i]! + h.edges[i + 1]!) / 2);
  let n = 0;
  let s2 = 0;
  h.counts.forEach((c, i) => {
    n += c;
    s2 += c * mids[i]! ** 2;
  });
  const sigma = Math.sqrt(s2 / Math.max(1, n));
  let tail = h.underflow + h.overflow;
  h.counts.forEach((c, i) => {
    if (Math.abs(mids[i]!) > k * sigma) tail += c;
  });
  const total = n + h.underflow + h.overflow;
  return { sigma, share: total > 0 ? tail / total : 0, total };
}

/** Values at or beyond |threshold| (counted from whole bins). */
function countBeyond(h: Histogram, threshold: number): number {
  let c = h.underflow + h.overflow;
  h.counts.forEach((v, i) => {
    if (Math.min(Math.abs(h.edges[i]!), Math.abs(h.edges[i + 1]!)) >= threshold) c += v;
  });
  return c;
}

/** The study's highlighted bin: about 1e2 values at b = 2 and 1e5 at b = 1024, over 1000 trials. */
export const STUDY_TAIL = { smallB: 2, smallCount: 1e2, largeB: 1024, largeCount: 1e5, trials: 1000 } as const;

export interface StudyTailCount {
  red: 'mean' | 'sum';
  /** The threshold (a bin edge, the same for every b), or undefined when none leaves the small b at the study's count. */
  threshold?: number;
  small: { b: number; count: number };
  large: { b: number; count: number };
  /** The large b's count is within a factor of 10 of the study's 1e5 (and above the small b's). */
  reproduces: boolean;
}

/**
 * The study's own measure in one convention: the smallest bin edge beyond which the smallest
 * batch size (b = 2 where measured) holds no more than the study's 1e2 values per 1000 trials,
 * and the count beyond that same edge at the largest (b = 1024 where measured); counts are
 * scaled to 1000 trials.
 */
export function studyTailCount(points: readonly GradStudyPoint[], red: 'mean' | 'sum'): StudyTailCount {
  const small = points.find((p) => p.b === STUDY_TAIL.smallB) ?? points[0]!;
  const large = points.find((p) => p.b === STUDY_TAIL.largeB) ?? points[points.length - 1]!;
  const per = (p: GradStudyPoint) => STUDY_TAIL.trials / p.trials;
  const h = small.valueHist[red];
  const edges = [...new Set(h.edges.map(Math.abs))].filter((e) => e > 0).sort((a, z) => a - z);
  const threshold = edges.find((e) => countBeyond(h, e) * per(small) <= STUDY_TAIL.smallCount);
  if (threshold === undefined) {
    return { red, small: { b: small.b, count: countBeyond(h, Infinity) * per(small) }, large: { b: large.b, count: Number.NaN }, reproduces: false };
  }
  const cs = countBeyond(h, threshold) * per(small);
  const cl = countBeyond(large.valueHist[red], threshold) * per(large);
  return {
    red,
    threshold,
    small: { b: small.b, count: cs },
    large: { b: large.b, count: cl },
    reproduces: cl >= STUDY_TAIL.largeCount / 10 && cl <= STUDY_TAIL.largeCount * 10 && cl > cs,
  };
}

export const F7: Finding = {
  id: 'F7',
  title: 'Larger batches give heavier-tailed gradient values',
  claim: 'Counting the individual entries of the summed gradient into shared bins, large batches produce far more extreme values than small ones: the distribution has a heavier tail.',
  runs: () => ['regime-early', 'b1024'],
  gradStudies: ['early', 'late'],
  analyze(ctx) {
    const regimes: RegimeKey[] = ['early', 'late'];
    const shares = regimes.map((r) => gradOf(ctx, r).points.map((p) => ({ b: p.b, ...tailShare(p.valueHist.mean) })));
    const rhos = shares.map((s) => spearman(s.map((x) => x.b), s.map((x) => x.share)));
    const verdict: Verdict = rhos.every((x) => x >= 0.7) ? 'reproduced' : rhos.some((x) => x >= 0.3) ? 'partly' : 'not reproduced';
    // the study's own measure: raw counts beyond one threshold for every b, both conventions
    const early = gradOf(ctx, 'early').points;
    const raw = (['mean', 'sum'] as const).map((red) => studyTailCount(early, red));
    const thrOf = (red: 'mean' | 'sum') => raw.find((x) => x.red === red)!.threshold;
    const measured: Measurement[] = [];
    regimes.forEach((r, i) => {
      measured.push({ label: `rank correlation of b and the share of values beyond 3 sigma, ${r}`, value: rhos[i]!, key: true });
      const s = shares[i]!;
      measured.push({ label: `share beyond 3 sigma at b=${s[0]!.b}, ${r}`, value: s[0]!.share });
      measured.push({ label: `share beyond 3 sigma at b=${s[s.length - 1]!.b}, ${r}`, value: s[s.length - 1]!.share });
    });
    for (const x of raw) {
      if (x.threshold === undefined) continue;
      measured.push(
        { label: `values of S beyond ${x.threshold.toPrecision(3)} at b=${x.small.b}, batch-${x.red} loss, early, per 1000 trials`, value: x.small.count, seed: STUDY_TAIL.smallCount },
        { label: `values of S beyond ${x.threshold.toPrecision(3)} at b=${x.large.b}, batch-${x.red} loss, early, per 1000 trials`, value: x.large.count, seed: STUDY_TAIL.largeCount, ...(x.red === 'sum' ? { key: true } : {}) },
      );
    }
    const rawText = raw
      .map((x) =>
        x.threshold === undefined
          ? `batch-${x.red} loss: no bin edge leaves b=${x.small.b} at the study's count`
          : `batch-${x.red} loss: beyond ${x.threshold.toPrecision(3)}, ${fmt(x.small.count, 0)} at b=${x.small.b} and ${fmt(x.large.count, 0)} at b=${x.large.b} (${x.reproduces ? 'reproduces' : 'does not reproduce'} the study's 1e5)`,
      )
      .join('; ');
    const which = raw.filter((x) => x.reproduces).map((x) => `the batch-${x.red} convention`);
    const pick = (pts: GradStudyPoint[]) => {
      const want = [1, 8, 64, 1024];
      const chosen = pts.filter((p) => want.includes(p.b));
      return chosen.length >= 2 ? chosen : [pts[0]!, pts[pts.length - 1]!];
    };
    const fig = (red: 'mean' | 'sum') => ({
      id: `f7-values-${red}`,
      title: `Values of the summed gradient, early regime, batch-${red} loss`,
      caption: `Counts of the entries of S over all trials in shared bins (log count axis, signed log value axis).${thrOf(red) !== undefined ? ` The shaded region holds values beyond ${thrOf(red)!.toPrecision(3)}, where b=${raw[0]!.small.b} has the study's count (1e2 per 1000 trials).` : ''}`,
      vegaLite: histogramFigure({
        groups: pick(early).map((p) => ({ label: `b=${p.b}`, edges: p.valueHist[red].edges, counts: p.valueHist[red].counts })),
        xTitle: 'value of an entry of S',
        yScale: 'log',
        ...(thrOf(red) !== undefined ? { highlight: { from: thrOf(red)!, to: Math.max(...early.map((p) => p.valueHist[red].edges[p.valueHist[red].edges.length - 1]!)), label: 'tail' } } : {}),
      }),
    });
    return {
      verdict,
      reason:
        `Share of entries beyond three of their own standard deviations, against b (a scale-free measure of the tail): rank correlation early ${fmt(rhos[0]!, 2)}, late ${fmt(rhos[1]!, 2)}. ` +
        `The study's own measure, raw counts beyond one threshold for every b (set where b=${raw[0]!.small.b} holds the study's 1e2 values per 1000 trials), early regime: ${rawText}; ${which.length > 0 ? `${which.join(' and ')} gives the study's counts` : 'neither convention gives the study\'s counts'}. ` +
        'Rule: reproduced when the rank correlation is at least 0.7 in both regimes, partly when at least 0.3 in one.',
      measured,
      figures: [fig('sum'), fig('mean')],
      deviations: ctx.profile.name === 'full' ? [] : [`${gradOf(ctx, 'early').trials} trials per batch size instead of 1000`],
      notes: [
        "The study reports about 1e5 values at b=1024 against about 1e2 at b=2 in its highlighted bin, without giving the bin; bsx sets the threshold where b=2 has the study's count and reads the count at b=1024 beyond the same threshold, in each convention (scaled to 1000 trials).",
      ],
    };
  },
};
