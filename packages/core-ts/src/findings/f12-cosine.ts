// F12: SGD barely rotates the initial weights (cosine near 1 in every layer, the middle layer
// least of all); Adam ends nearly unrelated to them.

import { barFigure } from '../report/figures.js';
import { fmt, lastCosine, measurement } from './util.js';
import { labelOf, runOf, type Finding } from './finding.js';
import type { SuiteRunKey } from './catalog.js';
import type { Measurement, Verdict } from './types.js';

const SEED: Partial<Record<SuiteRunKey, number[]>> = {
  b64: [0.988, 0.993, 0.928],
  b1024: [0.998, 0.998, 0.978],
  'b1024-lr0.1': [0.991, 0.994, 0.936],
  b1024x480: [0.989, 0.993, 0.93],
  'adam-b64': [0.124, 0.359, 0.153],
};
const SGD_RUNS: SuiteRunKey[] = ['b64', 'b1024', 'b1024-lr0.1', 'b1024x480'];

export const F12: Finding = {
  id: 'F12',
  title: 'SGD stays aligned with its initialisation, Adam does not',
  claim:
    'The cosine similarity between final and initial weights stays close to 1 in every layer under SGD, highest in the middle layer; under Adam it falls far below, as if the initial weights were forgotten.',
  runs: () => [...SGD_RUNS, 'adam-b64'],
  analyze(ctx) {
    const layers = 3;
    const cos = new Map([...SGD_RUNS, 'adam-b64' as SuiteRunKey].map((k) => [k, Array.from({ length: layers }, (_, l) => lastCosine(runOf(ctx, k), l))]));
    const sgdHigh = SGD_RUNS.every((k) => cos.get(k)!.every((c) => c.mean > 0.9));
    const adamLow = cos.get('adam-b64')!.reduce((a, c) => a + c.mean, 0) / layers < 0.5;
    const middleMost = SGD_RUNS.filter((k) => {
      const c = cos.get(k)!.map((x) => x.mean);
      return c[1]! >= c[0]! && c[1]! >= c[2]!;
    }).length;
    const checks = [sgdHigh, adamLow, middleMost > SGD_RUNS.length / 2];
    const n = checks.filter(Boolean).length;
    const verdict: Verdict = n === 3 ? 'reproduced' : n === 2 ? 'partly' : 'not reproduced';
    const measured: Measurement[] = [];
    const bars: { label: string; value: number; err?: number; group: string }[] = [];
    for (const [k, cs] of cos) {
      cs.forEach((c, l) => {
        measured.push(measurement(`cosine, layer ${l + 1}, ${labelOf(ctx, k)}`, c, SEED[k] ? { seed: SEED[k]![l]! } : {}));
        bars.push({ label: `layer ${l + 1}`, value: c.mean, ...(c.values.length > 1 ? { err: c.sd } : {}), group: labelOf(ctx, k) });
      });
    }
    return {
      verdict,
      reason:
        `SGD cosines ${sgdHigh ? 'all exceed' : 'do not all exceed'} 0.9; Adam's mean cosine is ${fmt(cos.get('adam-b64')!.reduce((a, c) => a + c.mean, 0) / layers, 3)}; ` +
        `the middle layer has the highest cosine in ${middleMost} of ${SGD_RUNS.length} SGD runs. Rule: reproduced when all three hold, partly when two do.`,
      measured,
      figures: [
        {
          id: 'f12-cosine',
          title: 'Cosine similarity of final and initial weights, per layer',
          caption: 'Per layer, the cosine of the angle between the final and the initial weight matrix (1: same direction); mean over seeds with one standard deviation.',
          vegaLite: barFigure({ bars, yTitle: 'cosine(final, initial)' }),
        },
      ],
      deviations: [],
    };
  },
};
