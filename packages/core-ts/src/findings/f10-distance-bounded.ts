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
      // concavity: distance added per epoch in the second half of the run is less than in the
      // first half (rates per epoch, so that an odd number of epochs compares fairly)
      const E = c.mean.length;
      const half = Math.max(1, Math.floor(E / 2));
      const atHalf = c.mean[half - 1]!;
      const firstHalf = atHalf / half;
      const secondHalf = E > half ? (c.mean[E - 1]! - atHalf) / (E - half) : Number.NaN;
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
              `${f.fit ? ` [${fmt(f.fit.exponentCi95[0], 2)}, ${fmt(f.fit.exponentCi95[1], 2)}]` : ''}, the first half of the epochs adds ${fmt(f.firstHalf, 3)} per epoch, the second half ${fmt(f.secondHalf, 3)}`,
          )
          .join('; ') + '. Rule: sublinear when the exponent\'s 95% interval lies below 1 and the second half adds less per epoch than the first; reproduced when it holds for both runs.',
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
