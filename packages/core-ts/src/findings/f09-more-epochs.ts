// F9: batch 1024 trained for as many steps as batch 64 (16x the epochs) travels as far and
// reaches the same accuracy.

import { curvesFigure } from '../report/figures.js';
import { curve, lastEpoch, measurement, pct, fmt, threshold } from './util.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { Verdict } from './types.js';

export const F9: Finding = {
  id: 'F9',
  title: 'More epochs also compensate',
  claim: 'Batch 1024 at lr 0.01 trained for 16 times the epochs (the same number of steps as batch 64) moves as far from its initial weights as batch 64 and reaches its accuracy.',
  runs: () => ['b64', 'b1024x480'],
  analyze(ctx) {
    const a64 = lastEpoch(runOf(ctx, 'b64'), 'testAcc');
    const aLong = lastEpoch(runOf(ctx, 'b1024x480'), 'testAcc');
    const w64 = lastEpoch(runOf(ctx, 'b64'), 'weightDistance');
    const wLong = lastEpoch(runOf(ctx, 'b1024x480'), 'weightDistance');
    const bLong = lastEpoch(runOf(ctx, 'b1024x480'), 'biasDistance');
    const accOk = Math.abs(aLong.mean - a64.mean) <= threshold(aLong, a64, 0.005);
    const distOk = Math.abs(wLong.mean - w64.mean) <= 0.15 * w64.mean;
    const verdict: Verdict = accOk && distOk ? 'reproduced' : accOk || distOk ? 'partly' : 'not reproduced';
    const run = runOf(ctx, 'b1024x480');
    const steps = (r: typeof run) => r.spec.phases.reduce((a, p) => a + p.epochs * Math.ceil(r.trainCount / p.batchSize), 0);
    return {
      verdict,
      reason:
        `After ${steps(run)} steps, ${labelOf(ctx, 'b1024x480')} ends at ${pct(aLong.mean)} test accuracy and ${fmt(wLong.mean, 2)} from its initial weights; ` +
        `b64 after ${steps(runOf(ctx, 'b64'))} steps: ${pct(a64.mean)} and ${fmt(w64.mean, 2)}. Rule: reproduced when the accuracies agree within twice the pooled spread (at least 0.5 points) and the distances within 15%; partly when one does.`,
      measured: [
        measurement(`W distance, ${labelOf(ctx, 'b1024x480')}`, wLong, { seed: 6.63 }),
        measurement(`B distance, ${labelOf(ctx, 'b1024x480')}`, bLong, { seed: 0.11 }),
        measurement(`test accuracy, ${labelOf(ctx, 'b1024x480')}`, aLong, { seed: 0.98, unit: 'fraction' }),
        measurement(`W distance, ${labelOf(ctx, 'b64')}`, w64, { seed: 6.71 }),
        measurement(`test accuracy, ${labelOf(ctx, 'b64')}`, a64, { seed: 0.98, unit: 'fraction' }),
      ],
      figures: [
        {
          id: 'f9-distance-by-step',
          title: 'Distance from the initial weights against training steps',
          caption: 'Batch 64 and batch 1024 trained for the same number of steps; the x axis is the step count at the end of each epoch.',
          vegaLite: curvesFigure({
            series: (['b64', 'b1024x480'] as const).map((k) => {
              const r = runOf(ctx, k);
              const c = curve(r, 'weightDistance', labelOf(ctx, k), { initial: 0 });
              const perEpoch = Math.ceil(r.trainCount / r.spec.phases[0]!.batchSize);
              return { ...c, x: c.x.map((e) => e * perEpoch) };
            }),
            xTitle: 'SGD steps',
            yTitle: 'L2 distance from initial weights',
          }),
        },
      ],
      deviations: [],
    };
  },
};
