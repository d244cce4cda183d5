// F2: a ten times larger learning rate gives back the accuracy that batch 1024 lost.

import { curvesFigureSet } from './figures-common.js';
import { labelOf, runOf, type Finding } from './finding.js';
import { lastEpoch, measurement, pct, threshold } from './util.js';
import type { Verdict } from './types.js';

export const F2: Finding = {
  id: 'F2',
  title: 'A larger learning rate recovers the accuracy',
  claim: 'Raising the learning rate from 0.01 to 0.1 at batch size 1024 brings the test accuracy back to that of batch size 64 at 0.01.',
  runs: () => ['b64', 'b1024', 'b1024-lr0.1'],
  analyze(ctx) {
    const a64 = lastEpoch(runOf(ctx, 'b64'), 'testAcc');
    const a1024 = lastEpoch(runOf(ctx, 'b1024'), 'testAcc');
    const aHi = lastEpoch(runOf(ctx, 'b1024-lr0.1'), 'testAcc');
    const gap = a64.mean - a1024.mean;
    const recovered = aHi.mean - a1024.mean;
    const thrGap = threshold(a64, a1024, 0.002);
    const thrRec = threshold(aHi, a1024, 0.002);
    const share = gap > 0 ? recovered / gap : Number.NaN;
    let verdict: Verdict;
    if (gap <= thrGap) verdict = 'not reproduced';
    else if (recovered > thrRec && share >= 0.75) verdict = 'reproduced';
    else if (recovered > thrRec) verdict = 'partly';
    else verdict = 'not reproduced';
    return {
      verdict,
      reason:
        `b1024 at lr 0.01 ends ${pct(gap)} below b64 (threshold ${pct(thrGap)}); at lr 0.1 it gains ${pct(recovered)} (threshold ${pct(thrRec)}), ` +
        `${Number.isFinite(share) ? `${(100 * share).toFixed(0)}% of the gap` : 'with no gap to recover'}. ` +
        'Rule: reproduced when a real gap exists and the larger rate recovers at least 75% of it; partly when it recovers a real but smaller part.',
      measured: [
        measurement(`test accuracy, ${labelOf(ctx, 'b64')}`, a64, { seed: 0.98, unit: 'fraction' }),
        measurement(`test accuracy, ${labelOf(ctx, 'b1024')}`, a1024, { seed: 0.96, unit: 'fraction' }),
        measurement(`test accuracy, ${labelOf(ctx, 'b1024-lr0.1')}`, aHi, { seed: 0.98, unit: 'fraction' }),
      ],
      figures: curvesFigureSet(ctx, 'f2', ['b64', 'b1024', 'b1024-lr0.1']),
      deviations: [],
    };
  },
};
