// F8: good solutions lie far from the initial weights; large batches at a small learning rate
// do not travel far enough in the same epochs.

import { heatmapFigure } from '../report/figures.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { SuiteRunKey } from './catalog.js';
import { fmt, lastEpoch, measurement, pct, spearman, threshold } from './util.js';
import type { Measurement, Verdict } from './types.js';

const GRID: { key: SuiteRunKey; b: number; lr: number }[] = [
  { key: 'b64', b: 64, lr: 0.01 },
  { key: 'b256', b: 256, lr: 0.01 },
  { key: 'b1024', b: 1024, lr: 0.01 },
  { key: 'b64-lr0.1', b: 64, lr: 0.1 },
  { key: 'b256-lr0.1', b: 256, lr: 0.1 },
  { key: 'b1024-lr0.1', b: 1024, lr: 0.1 },
];

export const F8: Finding = {
  id: 'F8',
  title: 'Good solutions lie far from the initial weights',
  claim:
    'Across batch sizes and learning rates, the runs that end with the best test accuracy have moved farthest from their initial weights (about 6 in L2 distance); batch 1024 at lr 0.01 stays closer and does worse.',
  runs: () => GRID.map((g) => g.key),
  analyze(ctx) {
    const rows = GRID.map((g) => {
      const run = runOf(ctx, g.key);
      return { ...g, W: lastEpoch(run, 'weightDistance'), B: lastEpoch(run, 'biasDistance'), A: lastEpoch(run, 'testAcc') };
    });
    const r64 = rows[0]!;
    const r1024 = rows[2]!;
    const shorter = r64.W.mean - r1024.W.mean > threshold(r64.W, r1024.W, 0.01 * r64.W.mean);
    const worse = r64.A.mean - r1024.A.mean > threshold(r64.A, r1024.A, 0.002);
    const rho = spearman(rows.map((r) => r.W.mean), rows.map((r) => r.A.mean));
    const checks = [shorter && worse, rho >= 0.6];
    const n = checks.filter(Boolean).length;
    const verdict: Verdict = n === 2 ? 'reproduced' : n === 1 ? 'partly' : 'not reproduced';
    const measured: Measurement[] = [];
    for (const r of rows) {
      const isRef = r.key === 'b64';
      measured.push(measurement(`W distance, ${labelOf(ctx, r.key)}`, r.W, isRef ? { seed: 6.71 } : {}));
      measured.push(measurement(`B distance, ${labelOf(ctx, r.key)}`, r.B, isRef ? { seed: 0.11 } : {}));
      measured.push(measurement(`test accuracy, ${labelOf(ctx, r.key)}`, r.A, isRef ? { seed: 0.98, unit: 'fraction' } : { unit: 'fraction' }));
    }
    const cells = rows.flatMap((r) => [
      { x: `lr ${r.lr}`, y: `b${r.b}`, value: r.A.mean, text: `W ${fmt(r.W.mean, 2)} B ${fmt(r.B.mean, 2)} A ${pct(r.A.mean)}` },
    ]);
    return {
      verdict,
      reason:
        `b1024 at lr 0.01 ends ${fmt(r1024.W.mean, 2)} from its initial weights against ${fmt(r64.W.mean, 2)} for b64 ` +
        `(${shorter ? 'significantly' : 'not significantly'} shorter) and ${pct(r64.A.mean - r1024.A.mean)} less accurate (${worse ? 'significant' : 'not significant'}); ` +
        `over the grid, Spearman's rank correlation of distance and test accuracy is ${fmt(rho, 2)}. ` +
        'Rule: reproduced when b1024/lr 0.01 is both nearer and worse than b64 and the correlation is at least 0.6; partly when one holds.',
      measured,
      figures: [
        {
          id: 'f8-grid',
          title: 'Distance travelled and test accuracy, batch size x learning rate',
          caption: 'Each cell: L2 distance of the final weights (W) and biases (B) from their initial values, and the final test accuracy (A), mean over seeds; the colour is the accuracy.',
          vegaLite: heatmapFigure({ cells, xTitle: 'learning rate', yTitle: 'batch size', valueTitle: 'test accuracy' }),
        },
      ],
      deviations: [],
      notes: ['The study shows the grid as an image without stating its learning rates; bsx uses 0.01 and 0.1 for batch 64, 256 and 1024.'],
    };
  },
};
