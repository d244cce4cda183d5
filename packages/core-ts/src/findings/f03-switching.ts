// F3: starting with large batches does not trap the model; switching later to small batches or
// a larger learning rate reaches the small-batch accuracy.

import { curvesFigureSet } from './figures-common.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { SuiteRunKey } from './catalog.js';
import { lastEpoch, measurement, pct, threshold } from './util.js';
import type { Verdict } from './types.js';

const SWITCHES: SuiteRunKey[] = ['b1024x1-b64', 'b1024x30-b64', 'b1024x30-lr0.1'];

export const F3: Finding = {
  id: 'F3',
  title: 'A large-batch start does not trap the model',
  claim:
    'After training with batch 1024, switching to batch 64 or to a ten times larger learning rate still reaches the test accuracy of training with batch 64 throughout; training longer at batch 1024 does not.',
  runs: () => ['b64', 'b1024x60', ...SWITCHES],
  analyze(ctx) {
    const ref = lastEpoch(runOf(ctx, 'b64'), 'testAcc');
    const control = lastEpoch(runOf(ctx, 'b1024x60'), 'testAcc');
    const results = SWITCHES.map((k) => ({ k, acc: lastEpoch(runOf(ctx, k), 'testAcc') }));
    const reach = results.map(({ k, acc }) => ({ k, ok: acc.mean >= ref.mean - threshold(acc, ref, 0.003), beats: acc.mean - control.mean > threshold(acc, control, 0.002) }));
    const nOk = reach.filter((r) => r.ok).length;
    const nBeat = reach.filter((r) => r.beats).length;
    let verdict: Verdict;
    if (nOk === SWITCHES.length) verdict = 'reproduced';
    else if (nOk > 0) verdict = 'partly';
    else verdict = 'not reproduced';
    const E30 = ctx.profile.epochs30;
    return {
      verdict,
      reason:
        `Against b64 (${pct(ref.mean)}): ${results.map(({ k, acc }) => `${labelOf(ctx, k)} ${pct(acc.mean)}`).join(', ')}; ` +
        `${nOk} of ${SWITCHES.length} switches end within the threshold (twice the pooled spread, at least 0.3 points) of b64, ` +
        `${nBeat} beat the control of b1024 trained as long (${pct(control.mean)}). Rule: reproduced when every switch reaches b64's accuracy, partly when some do.`,
      measured: [
        measurement(`test accuracy, ${labelOf(ctx, 'b64')}`, ref, { seed: 0.98, unit: 'fraction' }),
        measurement(`test accuracy, ${labelOf(ctx, 'b1024x60')}`, control, { unit: 'fraction' }),
        ...results.map(({ k, acc }) => measurement(`test accuracy, ${labelOf(ctx, k)}`, acc, { seed: 0.98, unit: 'fraction' })),
      ],
      figures: curvesFigureSet(ctx, 'f3', ['b64', 'b1024x60', ...SWITCHES], { lastN: E30, xTitle: `epoch (the last ${E30} of each run)` }),
      deviations: [],
      notes: [`As in the study, the curves show the last ${E30} epochs of each run.`],
    };
  },
};
