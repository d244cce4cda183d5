// F16 (beyond the study): the study's advice on Adam, tested. The study sees Adam's weights
// travel far from their initialisation and generalise worse, and advises weight decay with
// Adam. bsx trains Adam, AdamW at three decoupled weight decays (p <- p (1 - lr wd) each step,
// Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019) and SGD, all at b64 and
// lr 0.01, and asks whether the decay brings the weights back towards the sphere of their
// initial norm and the test accuracy up to SGD's. docs/findings.md, F16.

import { barFigure, curvesFigure } from '../report/figures.js';
import type { StoredRunResult } from '../experiments/run.js';
import { ADAMW_DECAYS } from './beyond-runs.js';
import type { SuiteRunKey } from './catalog.js';
import { runOf, type Finding } from './finding.js';
import type { Measurement, ProfileName, Verdict } from './types.js';
import { curve, fmt, lastCosine, lastEpoch, measurement, pct, threshold, type OverSeeds } from './util.js';

/** Weights count as back on the initial sphere when their norm is within this fraction of the initial norm. */
export const F16_SPHERE = 0.2;

const adamwKey = (wd: number): SuiteRunKey => `adamw-b64-wd${wd}`;

/** Initial weight norm of a run (mean over its seeds). */
function initialNorm(run: StoredRunResult): number {
  return run.seeds.reduce((a, s) => a + s.initial.weightNorm, 0) / run.seeds.length;
}

/** Whether the study's number lies within two standard deviations of bsx's mean over seeds, and the range over seeds. */
export function studyInSpread(v: OverSeeds, study: number): { inside: boolean; min: number; max: number } {
  return { inside: v.values.length > 1 && Math.abs(study - v.mean) <= 2 * v.sd, min: Math.min(...v.values), max: Math.max(...v.values) };
}

/** A sentence on Adam's spread over seeds and where the study's numbers fall (F11, F16). */
export function adamSpreadNote(adam: StoredRunResult, profile: ProfileName): string {
  const items: [string, OverSeeds, number][] = [
    ['W distance', lastEpoch(adam, 'weightDistance'), 254.3],
    ['W norm', lastEpoch(adam, 'weightNorm'), 258],
    ['B distance', lastEpoch(adam, 'biasDistance'), 18.3],
  ];
  const parts = items.map(([name, v, study]) => {
    const s = studyInSpread(v, study);
    return `${name} ${fmt(v.mean, 1)} ± ${fmt(v.sd, 1)} (seeds ${v.values.map((x) => fmt(x, 1)).join(', ')}): the study's ${study} is ${s.inside ? 'inside' : 'outside'} mean ± 2 sd`;
  });
  const scale = profile === 'full' ? '' : ` At the ${profile} profile the runs are shorter than the study's, so only the full profile compares like with like.`;
  return `Adam over ${adam.seeds.length} seeds: ${parts.join('; ')}. Adam's runs spread from seed to seed, so the study's single run is compared with that spread, not with one seed.${scale}`;
}

export const F16: Finding = {
  id: 'F16',
  title: "The study's advice on Adam: decoupled weight decay",
  claim:
    "The study advises weight decay with Adam, whose weights travel far from their initialisation. With decoupled weight decay (AdamW), Adam's weights return towards the sphere of their initial norm, and its test accuracy comes up to SGD's.",
  beyond: true,
  runs: () => ['b64', 'adam-b64', ...ADAMW_DECAYS.map(adamwKey)],
  analyze(ctx) {
    const sgd = runOf(ctx, 'b64');
    const adam = runOf(ctx, 'adam-b64');
    const w0 = initialNorm(sgd);
    const aS = lastEpoch(sgd, 'testAcc');
    const rows = [
      { key: 'b64' as SuiteRunKey, name: 'SGD' },
      { key: 'adam-b64' as SuiteRunKey, name: 'Adam' },
      ...ADAMW_DECAYS.map((wd) => ({ key: adamwKey(wd), name: `AdamW wd ${wd}` })),
    ].map((r) => {
      const run = runOf(ctx, r.key);
      const norm = lastEpoch(run, 'weightNorm');
      const acc = lastEpoch(run, 'testAcc');
      return {
        ...r,
        run,
        norm,
        dist: lastEpoch(run, 'weightDistance'),
        acc,
        cos: [0, 1, 2].map((l) => lastCosine(run, l)),
        onSphere: Math.abs(norm.mean - w0) <= F16_SPHERE * w0,
        asGood: aS.mean - acc.mean <= threshold(aS, acc, 0.002),
      };
    });
    const adamRow = rows.find((r) => r.key === 'adam-b64')!;
    const adamw = rows.filter((r) => r.key.startsWith('adamw'));
    const both = adamw.filter((r) => r.onSphere && r.asGood);
    const any = adamw.filter((r) => r.onSphere || r.asGood);
    // "back towards" the sphere: nearer to it than Adam
    const nearer = adamw.filter((r) => Math.abs(r.norm.mean - w0) < Math.abs(adamRow.norm.mean - w0));
    const verdict: Verdict = both.length > 0 ? 'reproduced' : any.length > 0 || nearer.length > 0 ? 'partly' : 'not reproduced';
    const measured: Measurement[] = [];
    // the verdict table shows the decay nearest the initial sphere, and Adam's norm
    const nearest = adamw.reduce((a, r) => (Math.abs(r.norm.mean - w0) < Math.abs(a.norm.mean - w0) ? r : a));
    for (const r of rows) {
      const key = r === nearest || r === adamRow;
      const study = r.key === 'adam-b64' ? { w: 254.3, n: 258, a: 0.95 } : r.key === 'b64' ? { w: 6.71, n: 44.9, a: 0.98 } : undefined;
      measured.push(
        { ...measurement(`W norm, ${r.name}`, r.norm, study ? { seed: study.n } : {}), ...(key ? { key: true } : {}) },
        measurement(`W distance from init, ${r.name}`, r.dist, study ? { seed: study.w } : {}),
        { ...measurement(`test accuracy, ${r.name}`, r.acc, { ...(study ? { seed: study.a } : {}), unit: 'fraction' }), ...(r === nearest ? { key: true } : {}) },
        ...r.cos.map((c, l) => measurement(`cosine with init, layer ${l + 1}, ${r.name}`, c)),
      );
    }
    measured.push({ label: 'initial W norm', value: w0, seed: 43.95 });
    const describe = (r: (typeof rows)[number]) =>
      `${r.name}: norm ${fmt(r.norm.mean, 1)} (${r.onSphere ? 'on' : 'off'} the sphere), ${pct(r.acc.mean)} (${r.asGood ? 'as accurate as' : 'less accurate than'} SGD)`;
    return {
      verdict,
      reason:
        `Initial weight norm ${fmt(w0, 2)}; SGD ends at norm ${fmt(rows[0]!.norm.mean, 1)} and ${pct(aS.mean)}; Adam at norm ${fmt(adamRow.norm.mean, 1)} and ${pct(adamRow.acc.mean)}. ${adamw.map(describe).join('; ')}. ` +
        `Rule: reproduced when some decay brings the weight norm within ${100 * F16_SPHERE}% of the initial norm and the test accuracy within the seed-to-seed threshold of SGD's (twice the pooled spread, at least 0.2 points); partly when a decay does one of the two, or only brings the norm nearer the sphere than Adam's.`,
      measured,
      figures: [
        {
          id: 'f16-norm',
          title: 'Norm of the weights per epoch: SGD, Adam and AdamW',
          caption: `L2 norm of all weight matrices (distance from the origin), mean over seeds with one standard deviation; the initial norm is ${fmt(w0, 2)}.`,
          vegaLite: curvesFigure({
            series: rows.map((r) => curve(r.run, 'weightNorm', r.name, { initial: initialNorm(r.run) })),
            xTitle: 'epoch',
            yTitle: 'L2 norm of the weights',
            yScale: 'log',
          }),
        },
        {
          id: 'f16-accuracy',
          title: 'Test accuracy per epoch: SGD, Adam and AdamW',
          caption: 'Mean over seeds with a band of one standard deviation; all at b64 and lr 0.01.',
          vegaLite: curvesFigure({ series: rows.map((r) => curve(r.run, 'testAcc', r.name)), xTitle: 'epoch', yTitle: 'test accuracy' }),
        },
        {
          id: 'f16-cosine',
          title: 'Cosine of final and initial weights, per layer',
          caption: 'Per layer, the cosine of the angle between the final and the initial weight matrix; mean over seeds with one standard deviation.',
          vegaLite: barFigure({
            bars: rows.flatMap((r) => r.cos.map((c, l) => ({ label: `layer ${l + 1}`, value: c.mean, ...(c.values.length > 1 ? { err: c.sd } : {}), group: r.name }))),
            yTitle: 'cosine(final, initial)',
          }),
        },
      ],
      deviations: [],
      notes: [adamSpreadNote(adam, ctx.profile.name)],
    };
  },
};
