// F6: per-trial step sizes: small batches all move about the same distance, large batches make
// both very large and very small moves.

import { ridgelineFigure } from '../report/figures.js';
import { histogram, linearEdges, quantile } from '../stats/descriptive.js';
import { fmt, spearman } from './util.js';
import { gradOf, type Finding, type RegimeKey } from './finding.js';
import type { Measurement, Verdict } from './types.js';

export const F6: Finding = {
  id: 'F6',
  title: 'Large batches make both very large and very small moves',
  claim:
    'Over many trials, the step sizes of small batches cluster tightly, while those of large batches spread out, with both unusually large and unusually small moves.',
  runs: () => ['regime-early', 'b1024'],
  gradStudies: ['early', 'late'],
  analyze(ctx) {
    const regimes: RegimeKey[] = ['early', 'late'];
    const spread = (r: RegimeKey) =>
      gradOf(ctx, r).points.map((p) => {
        const v = p.perTrial.sumNormMean;
        const med = quantile(v, 0.5);
        return { b: p.b, rel: (quantile(v, 0.95) - quantile(v, 0.05)) / med };
      });
    const rhos = regimes.map((r) => {
      const s = spread(r);
      return spearman(s.map((x) => x.b), s.map((x) => x.rel));
    });
    const verdict: Verdict = rhos.every((x) => x >= 0.7) ? 'reproduced' : rhos.some((x) => x >= 0.3) ? 'partly' : 'not reproduced';
    const measured: Measurement[] = regimes.flatMap((r, i) => {
      const s = spread(r);
      return [
        { label: `rank correlation of b and the relative 5-95% spread of |S|, ${r}`, value: rhos[i]! },
        { label: `relative 5-95% spread of |S| at b=${s[0]!.b}, ${r}`, value: s[0]!.rel },
        { label: `relative 5-95% spread of |S| at b=${s[s.length - 1]!.b}, ${r}`, value: s[s.length - 1]!.rel },
      ];
    });
    const ridge = (r: RegimeKey, scaled: boolean) => {
      const g = gradOf(ctx, r);
      const rows = g.points.map((p) => {
        const f = scaled ? p.scaled.mean.sumNorm.mean / p.mean.sumNorm.mean : 1;
        return { b: p.b, values: p.perTrial.sumNormMean.map((v) => v * f) };
      });
      const all = rows.flatMap((x) => x.values);
      const min = Math.min(...all);
      const max = Math.max(...all);
      const edges = scaled ? linearEdges(min, max, 40) : linearEdges(Math.log10(min), Math.log10(max), 40).map((e) => 10 ** e);
      // the computed end edges may round inside [min, max]: pin them, so no trial is left out
      edges[0] = min;
      edges[edges.length - 1] = max;
      return rows.map((x) => {
        const h = histogram(x.values, edges);
        return { label: `b=${x.b}`, edges: h.edges, counts: h.counts };
      });
    };
    return {
      verdict,
      reason:
        `Spearman's rank correlation between b and the relative spread (p95 - p5) / median of |S| over trials: early ${fmt(rhos[0]!, 2)}, late ${fmt(rhos[1]!, 2)}. ` +
        'Rule: reproduced when at least 0.7 in both regimes, partly when at least 0.3 in one.',
      measured,
      figures: regimes.flatMap((r) => [
        {
          id: `f6-${r}-scaled`,
          title: `Per-trial |S| rescaled to equal means, ${r} regime`,
          caption: 'Distribution over trials of the norm of the summed gradient, each batch size rescaled so that all have the same mean; one row per batch size.',
          vegaLite: ridgelineFigure({ rows: ridge(r, true), xTitle: '|S| rescaled' }),
        },
        {
          id: `f6-${r}-raw`,
          title: `Per-trial |S| as measured, ${r} regime`,
          caption: 'The same trials without rescaling (batch-mean loss), on a log axis.',
          vegaLite: ridgelineFigure({ rows: ridge(r, false), xTitle: '|S|', xScale: 'log' }),
        },
      ]),
      deviations: ctx.profile.name === 'full' ? [] : [`${gradOf(ctx, 'early').trials} trials per batch size instead of 1000`],
    };
  },
};
