// F1: a larger batch size ends at a lower test (and train) accuracy after the same epochs.

import { curvesFigureSet } from './figures-common.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { SuiteRunKey } from './catalog.js';
import { fmt, lastEpoch, measurement, pct, threshold } from './util.js';
import type { Measurement, Verdict } from './types.js';

const SEED_TEST: Partial<Record<SuiteRunKey, number>> = { b2: 0.99, b64: 0.98, b1024: 0.96 };
const SEED_TRAIN: Partial<Record<SuiteRunKey, number>> = { b64: 1.0 };

export const F1: Finding = {
  id: 'F1',
  title: 'Larger batches reach lower accuracy',
  claim:
    'Trained for the same number of epochs at the same learning rate, the model trained with larger batches ends with lower test accuracy, and lower training accuracy too.',
  runs: (p) => (p.includeB2 ? ['b2', 'b64', 'b256', 'b1024'] : ['b64', 'b256', 'b1024']),
  analyze(ctx) {
    const keys = F1.runs(ctx.profile);
    const test = new Map(keys.map((k) => [k, lastEpoch(runOf(ctx, k), 'testAcc')]));
    const train = new Map(keys.map((k) => [k, lastEpoch(runOf(ctx, k), 'trainAcc')]));
    const measured: Measurement[] = [];
    for (const k of keys) {
      measured.push(measurement(`test accuracy, ${labelOf(ctx, k)}`, test.get(k)!, { ...(SEED_TEST[k] !== undefined ? { seed: SEED_TEST[k] } : {}), unit: 'fraction' }));
    }
    for (const k of keys) {
      measured.push(measurement(`train accuracy, ${labelOf(ctx, k)}`, train.get(k)!, { ...(SEED_TRAIN[k] !== undefined ? { seed: SEED_TRAIN[k] } : {}), unit: 'fraction' }));
    }
    const a64 = test.get('b64')!;
    const a1024 = test.get('b1024')!;
    const gap = a64.mean - a1024.mean;
    const thr = threshold(a64, a1024, 0.002);
    const order: SuiteRunKey[] = ['b64', 'b256', 'b1024'];
    let monotone = true;
    for (let i = 1; i < order.length; i++) {
      const prev = test.get(order[i - 1]!)!;
      const cur = test.get(order[i]!)!;
      if (cur.mean > prev.mean + threshold(prev, cur, 0.002)) monotone = false;
    }
    const trainGap = train.get('b64')!.mean - train.get('b1024')!.mean;
    let verdict: Verdict;
    if (gap > thr && monotone) verdict = 'reproduced';
    else if (gap > thr || (gap > 0 && monotone)) verdict = 'partly';
    else verdict = 'not reproduced';
    const reason =
      `Final test accuracy: b64 ${pct(a64.mean)}, b256 ${pct(test.get('b256')!.mean)}, b1024 ${pct(a1024.mean)}; ` +
      `the b64-b1024 gap is ${pct(gap)} against a threshold of ${pct(thr)} (twice the pooled seed-to-seed spread, at least 0.2 points)` +
      `${monotone ? '; accuracy does not rise with batch size anywhere' : '; the order is not monotone in batch size'}. ` +
      `Training accuracy gap b64-b1024: ${pct(trainGap)}. Rule: reproduced when the gap exceeds the threshold and accuracy falls monotonically with batch size; partly when only one holds.`;
    return {
      verdict,
      reason,
      measured,
      figures: curvesFigureSet(ctx, 'f1', keys),
      deviations: ctx.profile.includeB2 ? [] : ['batch size 2 was not trained at this profile'],
      notes: [`b2 is ${ctx.profile.includeB2 ? 'included' : 'left out'}; its final test accuracy ${ctx.profile.includeB2 ? fmt(test.get('b2')!.mean, 4) : 'was not measured'}.`],
    };
  },
};
