// F10: for a fixed number of steps SGD travels a bounded distance: distance from the initial
// weights grows ever more slowly with the epochs.

import { curvesFigure } from '../report/figures.js';
import { fitPowerLaw } from '../stats/regression.js';
import { curve, fmt } from './util.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { Verdict } from './types.js';

export const F10: Finding = {
  id: 'F10',
  title: 'SGD travels a bounded distance',
  claim: 'The distance of the weights from their initial values keeps growing under SGD, but ever more slowly: it is a concave, sublinear function of the epoch.',
  runs: () => ['b64', 'b1024'],
  analyze(ctx) {
    const fits = (['b64', 'b1024'] as const).map((k) => {
      const c = curve(runOf(ctx, k), 'weightDistance', labelOf(ctx, k));
      const fit = c.x.length >= 3 ? fitPowerLaw(c.x, c.mean) : undefined;
      // concavity: the second half of the run adds less distance than the first half
      const half = Math.floor(c.mean.length / 2);
      const firstHalf = c.mean[half - 1] ?? c.mean[0]!;
      const secondHalf = c.mean[c.mean.length - 1]! - firstHalf;
      return { k, c, fit, firstHalf, secondHalf };
    });
    const sub = fits.map((f) => (f.fit ? f.fit.exponentCi95[1] < 1 : false) && f.secondHalf < f.firstHalf);
    const verdict: Verdict = sub.every(Boolean) ? 'reproduced' : sub.some(Boolean) ? 'partly' : 'not reproduced';
    return {
      verdict,
      reason:
        fits
          .map(
            (f) =>
              `${labelOf(ctx, f.k)}: distance ~ epoch^${f.fit ? fmt(f.fit.exponent, 2) : '?'}` +
              `${f.fit ? ` [${fmt(f.fit.exponentCi95[0], 2)}, ${fmt(f.fit.exponentCi95[1], 2)}]` : ''}, first half of the epochs adds ${fmt(f.firstHalf, 2)}, the second half ${fmt(f.secondHalf, 2)}`,
          )
          .join('; ') + '. Rule: sublinear when the exponent\'s 95% interval lies below 1 and the second half adds less than the first; reproduced when it holds for both runs.',
      measured: fits.flatMap((f) =>
        f.fit
          ? [{ label: `growth exponent of the distance, ${labelOf(ctx, f.k)} (95% interval ${fmt(f.fit.exponentCi95[0], 2)} to ${fmt(f.fit.exponentCi95[1], 2)})`, value: f.fit.exponent }]
          : [],
      ),
      figures: [
        {
          id: 'f10-distance',
          title: 'Distance from the initial weights per epoch (SGD)',
          caption: 'L2 distance of all weight matrices from their initial values, mean over seeds with a band of one standard deviation.',
          vegaLite: curvesFigure({ series: fits.map((f) => f.c), xTitle: 'epoch', yTitle: 'L2 distance from initial weights' }),
        },
      ],
      deviations: [],
    };
  },
};
