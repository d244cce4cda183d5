// F11: Adam moves far from the initial weights (linearly in the epochs) and generalises worse
// than SGD. Adam runs over at least three seeds (they spread), and the note says whether the
// study's numbers fall inside that spread.

import { curvesFigure } from '../report/figures.js';
import { fitPowerLaw } from '../stats/regression.js';
import { curve, fmt, lastEpoch, measurement, pct, threshold } from './util.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { SuiteRunKey } from './catalog.js';
import { adamSpreadNote } from './f16-adamw.js';
import type { Verdict } from './types.js';

const SGD_NORM_SEED: Partial<Record<SuiteRunKey, number>> = { b64: 44.9, b1024: 44.1, 'b1024-lr0.1': 44.7, b1024x480: 44.9 };

export const F11: Finding = {
  id: 'F11',
  title: 'Adam travels far and generalises worse',
  claim:
    'With the same learning rate and batch size, Adam ends far from its initial weights (its distance grows about linearly with the epochs) and reaches a lower test accuracy than SGD; SGD leaves the norm of the weights almost unchanged.',
  runs: () => ['adam-b64', 'b64', 'b1024', 'b1024-lr0.1', 'b1024x480'],
  analyze(ctx) {
    const adam = runOf(ctx, 'adam-b64');
    const sgd = runOf(ctx, 'b64');
    const wA = lastEpoch(adam, 'weightDistance');
    const wS = lastEpoch(sgd, 'weightDistance');
    const aA = lastEpoch(adam, 'testAcc');
    const aS = lastEpoch(sgd, 'testAcc');
    const c = curve(adam, 'weightDistance', 'Adam');
    const fit = c.x.length >= 3 ? fitPowerLaw(c.x, c.mean) : undefined;
    const far = wA.mean > 5 * wS.mean;
    const worse = aS.mean - aA.mean > threshold(aS, aA, 0.002);
    const linear = fit ? fit.exponent >= 0.7 : false;
    const n = [far, worse, linear].filter(Boolean).length;
    const verdict: Verdict = n === 3 ? 'reproduced' : n >= 1 && far ? 'partly' : 'not reproduced';
    const normKeys: SuiteRunKey[] = ['b64', 'b1024', 'b1024-lr0.1', 'b1024x480'];
    return {
      verdict,
      reason:
        `Adam ends ${fmt(wA.mean, 1)} from its initial weights against ${fmt(wS.mean, 2)} for SGD (${far ? 'more' : 'less'} than 5x), ` +
        `at ${pct(aA.mean)} test accuracy against ${pct(aS.mean)} (${worse ? 'significantly worse' : 'not significantly worse'}); ` +
        `its distance grows like epoch^${fit ? fmt(fit.exponent, 2) : '?'}. Rule: reproduced when Adam travels over 5x as far, is significantly less accurate and its distance grows at least like epoch^0.7; partly when it travels far but not all the rest holds.`,
      measured: [
        measurement('W distance, Adam b64', wA, { seed: 254.3 }),
        measurement('B distance, Adam b64', lastEpoch(adam, 'biasDistance'), { seed: 18.3 }),
        measurement('test accuracy, Adam b64', aA, { seed: 0.95, unit: 'fraction' }),
        measurement('W norm, Adam b64', lastEpoch(adam, 'weightNorm'), { seed: 258 }),
        measurement('W distance, SGD b64', wS, { seed: 6.71 }),
        measurement('test accuracy, SGD b64', aS, { seed: 0.98, unit: 'fraction' }),
        ...normKeys.map((k) => measurement(`W norm, SGD ${labelOf(ctx, k)}`, lastEpoch(runOf(ctx, k), 'weightNorm'), SGD_NORM_SEED[k] !== undefined ? { seed: SGD_NORM_SEED[k] } : {})),
      ],
      figures: [
        {
          id: 'f11-distance',
          title: 'Distance from the initial weights per epoch: Adam and SGD',
          caption: 'L2 distance of all weight matrices from their initial values (log scale), batch 64, lr 0.01.',
          vegaLite: curvesFigure({
            series: [c, curve(sgd, 'weightDistance', 'SGD')],
            xTitle: 'epoch',
            yTitle: 'L2 distance from initial weights',
            yScale: 'log',
          }),
        },
        {
          id: 'f11-norm',
          title: 'Norm of the weights per epoch: Adam and SGD',
          caption: 'L2 norm of all weight matrices (distance from the origin); it starts at about 44 for the Xavier initialisation.',
          vegaLite: curvesFigure({
            series: [curve(adam, 'weightNorm', 'Adam'), curve(sgd, 'weightNorm', 'SGD')],
            xTitle: 'epoch',
            yTitle: 'L2 norm of the weights',
            yScale: 'log',
          }),
        },
      ],
      deviations: [],
      notes: [adamSpreadNote(adam, ctx.profile.name)],
    };
  },
};
