// F5: with every batch size scaled to the same mean step (mu_1024 / mu_b), larger batches vary
// more from trial to trial.

import { pointsWithErrorBars } from '../report/figures.js';
import { fmt, spearman } from './util.js';
import { gradOf, type Finding, type RegimeKey } from './finding.js';
import type { Measurement, Verdict } from './types.js';

export const F5: Finding = {
  id: 'F5',
  title: 'Larger batches vary more for the same mean step',
  claim:
    'When each batch size is rescaled so that all make the same mean step, the spread of the step across trials grows with the batch size: large batches are the less predictable ones.',
  runs: () => ['regime-early', 'b1024'],
  gradStudies: ['early', 'late'],
  analyze(ctx) {
    const regimes: RegimeKey[] = ['early', 'late'];
    const rhos = regimes.map((r) => {
      const pts = gradOf(ctx, r).points;
      return spearman(pts.map((p) => p.b), pts.map((p) => p.scaled.mean.sumNorm.std));
    });
    const stepRhos = regimes.map((r) => {
      const pts = gradOf(ctx, r).points;
      return spearman(pts.map((p) => p.b), pts.map((p) => p.scaled.mean.stepNorm.std));
    });
    const verdict: Verdict = rhos.every((x) => x >= 0.7) ? 'reproduced' : rhos.some((x) => x >= 0.3) ? 'partly' : 'not reproduced';
    const measured: Measurement[] = [];
    regimes.forEach((r, i) => {
      const pts = gradOf(ctx, r).points;
      measured.push({ label: `rank correlation of b and the scaled std of |S|, ${r}`, value: rhos[i]! });
      measured.push({ label: `rank correlation of b and the scaled std of the step norm, ${r}`, value: stepRhos[i]! });
      const first = pts[0]!;
      const last = pts[pts.length - 1]!;
      measured.push({ label: `scaled std of |S| at b=${first.b}, ${r}`, value: first.scaled.mean.sumNorm.std });
      measured.push({ label: `scaled std of |S| at b=${last.b}, ${r}`, value: last.scaled.mean.sumNorm.std });
    });
    return {
      verdict,
      reason:
        `Spearman's rank correlation between b and the trial-to-trial standard deviation of the rescaled |S|: early ${fmt(rhos[0]!, 2)}, late ${fmt(rhos[1]!, 2)} ` +
        `(of the rescaled mean step norm: ${fmt(stepRhos[0]!, 2)}, ${fmt(stepRhos[1]!, 2)}). Rescaling by mu_ref/mu_b makes the batch-mean and batch-sum conventions identical. ` +
        'Rule: reproduced when the correlation is at least 0.7 in both regimes; partly when at least 0.3 in one.',
      measured,
      figures: [
        {
          id: 'f5-scaled-std',
          title: 'Trial-to-trial spread of the rescaled norm against batch size',
          caption: `Standard deviation over trials of |S| and of the mean step norm after rescaling every batch size to the mean of b = ${gradOf(ctx, 'early').referenceB}.`,
          vegaLite: pointsWithErrorBars({
            points: regimes.flatMap((r) =>
              gradOf(ctx, r).points.flatMap((p) => [
                { x: p.b, y: p.scaled.mean.sumNorm.std, group: `${r}: |S|` },
                { x: p.b, y: p.scaled.mean.stepNorm.std, group: `${r}: mean step norm` },
              ]),
            ),
            xTitle: 'batch size b',
            yTitle: 'std over trials (rescaled)',
            xScale: 'log',
            yScale: 'log',
          }),
        },
      ],
      deviations: ctx.profile.name === 'full' ? [] : [`${gradOf(ctx, 'early').trials} trials per batch size instead of 1000`],
    };
  },
};
