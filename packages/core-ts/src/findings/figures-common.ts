// The figure most training findings share: train and test loss and accuracy per epoch for a
// set of runs (mean over seeds with a band of one standard deviation).

import { facetCurvesFigure } from '../report/figures.js';
import type { SuiteRunKey } from './catalog.js';
import { labelOf, runOf, type AnalysisContext } from './finding.js';
import type { FigureSpec } from './types.js';
import { curve } from './util.js';

export function curvesFigureSet(
  ctx: AnalysisContext,
  id: string,
  keys: SuiteRunKey[],
  opts: { lastN?: number; xTitle?: string } = {},
): FigureSpec[] {
  const panel = (metric: 'trainLoss' | 'testLoss' | 'trainAcc' | 'testAcc', title: string, yTitle: string) => ({
    title,
    yTitle,
    series: keys.map((k) => curve(runOf(ctx, k), metric, labelOf(ctx, k), opts.lastN !== undefined ? { lastN: opts.lastN } : {})),
    ...(metric.endsWith('Loss') ? { yScale: 'log' as const } : {}),
  });
  return [
    {
      id: `${id}-curves`,
      title: 'Loss and accuracy per epoch',
      caption: 'Mean over seeds with a band of one standard deviation; losses on a log scale; evaluated on the full training and test sets after every epoch.',
      vegaLite: facetCurvesFigure({
        panels: [
          panel('trainLoss', 'training loss', 'loss (NLL)'),
          panel('testLoss', 'test loss', 'loss (NLL)'),
          panel('trainAcc', 'training accuracy', 'accuracy'),
          panel('testAcc', 'test accuracy', 'accuracy'),
        ],
        xTitle: opts.xTitle ?? 'epoch',
      }),
    },
  ];
}
