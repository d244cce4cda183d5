// The report of a sweep, built from whatever the results folder holds (the units of every shard
// that finished; what is missing is listed): an HTML page (tables of the final metrics, heatmaps
// over the grid, curves per axis, gradient statistics per batch size with power-law fits and
// B_simple; every figure a Vega-Lite specification rendered to inline SVG, as the suite's
// report) and two tidy CSV files that pandas and polars read as they are: runs.csv, one row per
// run x seed x epoch, and trials.csv, one row per trial statistic.
// References: Wickham, "Tidy data" (J. Stat. Softw. 2014); RFC 4180 (CSV).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatOptimizer } from '../engine/optimizers.js';
import type { GradStudyPoint } from '../experiments/grad-study.js';
import { readRunResult, type StoredRunResult } from '../experiments/run.js';
import { escapeHtml } from '../report/html.js';
import { facetCurvesFigure, heatmapFigure, pointsWithErrorBars, type CurveSeries } from '../report/figures.js';
import { renderVegaLite, scopeSvgIds } from '../report/render.js';
import { mean, std } from '../stats/descriptive.js';
import { estimateNoiseScale, type NoiseScaleEstimate } from '../stats/noise-scale.js';
import { fitPowerLaw, type PowerLawFit } from '../stats/regression.js';
import { writeFileAtomic } from '../store/atomic.js';
import { RunStore, formatCsvNumber } from '../store/run-store.js';
import { loadStudyData, readGradPoints, sweepUnits, type GradUnit, type SweepData, type SweepUnit } from './sweep.js';
import type { Study, StudyMetric, StudyRun } from './study.js';

export interface SweepReportOptions {
  out: string;
  data?: SweepData;
  /** What the header says about the machine and the program (optional). */
  madeBy?: string;
}

export interface SweepReportFiles {
  html: string;
  runsCsv: string;
  trialsCsv: string;
}

export interface SweepReport {
  files: SweepReportFiles;
  /** Runs of the grid whose results are in (of study.runs). */
  runsDone: number;
  runsTotal: number;
  pointsDone: number;
  pointsTotal: number;
  /** The units that are not done, with a label each. */
  missing: { id: string; label: string }[];
}

const METRIC_LABEL: Record<StudyMetric, string> = {
  trainLoss: 'train loss',
  trainAcc: 'train accuracy',
  testLoss: 'test loss',
  testAcc: 'test accuracy',
  weightDistance: 'W distance from init',
  biasDistance: 'b distance from init',
  weightNorm: 'W norm',
  biasNorm: 'b norm',
  cosine: 'cosine to init',
};

const CSV_NAME: Record<Exclude<StudyMetric, 'cosine'>, string> = {
  trainLoss: 'train_loss',
  trainAcc: 'train_acc',
  testLoss: 'test_loss',
  testAcc: 'test_acc',
  weightDistance: 'weight_distance',
  biasDistance: 'bias_distance',
  weightNorm: 'weight_norm',
  biasNorm: 'bias_norm',
};

/** A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
function field(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return formatCsvNumber(v);
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(header: string[], rows: (string | number | boolean | undefined)[][]): string {
  return [header.join(','), ...rows.map((r) => r.map(field).join(','))].join('\n') + '\n';
}

function scheduleText(r: StudyRun): string {
  return r.spec.phases.map((p) => `${p.batchSize}x${p.epochs}`).join(',');
}

/** runs.csv: one row per run x seed x epoch, the kept statistics as columns. */
export function runsCsv(study: Study, results: ReadonlyMap<string, StoredRunResult>): string {
  const scalar = study.keep.filter((k): k is Exclude<StudyMetric, 'cosine'> => k !== 'cosine');
  const layers = study.widths.length - 1;
  const cos = study.keep.includes('cosine') ? Array.from({ length: layers }, (_, l) => `cosine_l${l + 1}`) : [];
  const header = ['study', 'run', 'schedule', 'batch_size', 'base_lr', 'lr', 'lr_scaling', 'optimizer', 'seed', 'epoch', 'phase', ...scalar.map((k) => CSV_NAME[k]), ...cos, 'diverged'];
  const rows: (string | number | boolean | undefined)[][] = [];
  const scaling = study.lrScaling.rule === 'none' ? 'none' : `${study.lrScaling.rule} from b${study.lrScaling.baseBatchSize}`;
  for (const r of study.runs) {
    const res = results.get(r.id);
    if (!res) continue;
    for (const s of res.seeds) {
      for (const e of s.epochs) {
        const ph = r.spec.phases[e.phase]!;
        rows.push([
          study.name,
          r.id,
          scheduleText(r),
          ph.batchSize,
          r.baseLr,
          ph.lr,
          scaling,
          formatOptimizer(r.optimizer),
          s.seed,
          e.epoch,
          e.phase,
          ...scalar.map((k) => e[k]),
          ...(cos.length > 0 ? e.cosine : []),
          e.diverged,
        ]);
      }
    }
  }
  return csv(header, rows);
}

const TRIAL_STATS: [string, keyof GradStudyPoint['perTrial']][] = [
  ['sum_norm_mean', 'sumNormMean'],
  ['step_norm_mean', 'stepNormMean'],
  ['sum_norm_sum', 'sumNormSum'],
  ['step_norm_sum', 'stepNormSum'],
  ['first_step_norm2', 'firstStepNorm2'],
];

/** trials.csv: one row per trial statistic (study, gradient study, layer, batch size, trial, statistic, value). */
export function trialsCsv(study: Study, units: readonly GradUnit[], points: ReadonlyMap<string, GradStudyPoint>): string {
  const rows: (string | number)[][] = [];
  for (const u of units) {
    const p = points.get(u.id);
    if (!p) continue;
    for (let t = 0; t < p.trials; t++) {
      for (const [name, key] of TRIAL_STATS) rows.push([study.name, u.grad.name, u.layer, u.b, t, name, p.perTrial[key][t]!]);
    }
  }
  return csv(['study', 'grad_study', 'layer', 'batch_size', 'trial', 'statistic', 'value'], rows);
}

// ---------------------------------------------------------------------------
// HTML

const CSS = `
:root { --ink: #1d2329; --muted: #5b6570; --line: #d8dee4; --soft: #f5f7f9; --accent: #1f6fb4; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink); font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 28px 8px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 10px; }
h2 { font-size: 21px; margin: 26px 0 10px; border-top: 1px solid var(--line); padding-top: 18px; }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 12px 0 0; font-size: 14px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0 4px; }
th, td { text-align: left; vertical-align: top; padding: 5px 9px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.missing { background: #fff3c4; border: 1px solid #ecd27a; border-radius: 6px; padding: 8px 12px; }
.complete { background: #dcf5e3; border: 1px solid #9fd8b0; border-radius: 6px; padding: 8px 12px; }
figure { margin: 18px 0 8px; padding: 12px; border: 1px solid var(--line); border-radius: 6px; break-inside: avoid; }
figure .chart { overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 14px; color: var(--muted); margin-top: 8px; }
figcaption strong { color: var(--ink); }
footer { border-top: 2px solid var(--line); margin-top: 26px; padding: 14px 0 28px; font-size: 13.5px; color: var(--muted); }
`;

interface Figure {
  id: string;
  title: string;
  caption: string;
  vegaLite: Record<string, unknown>;
}

async function figureHtml(f: Figure): Promise<string> {
  const id = `figure-${f.id.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  const r = await renderVegaLite(f.vegaLite, f.id);
  return `<figure id="${id}"><div class="chart">${scopeSvgIds(r.svg, id)}</div><figcaption><strong>${escapeHtml(f.title)}.</strong> ${escapeHtml(f.caption)}</figcaption></figure>`;
}

const fmt = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : String(Number(x.toPrecision(4)))) : String(x));

function lastOf(res: StoredRunResult, k: Exclude<StudyMetric, 'cosine'>): number[] {
  return res.seeds.map((s) => s.epochs[s.epochs.length - 1]![k]);
}

/** The axes of the grid with more than one value: name, the run's value of it, a label of a value. */
function axesOf(study: Study): { name: string; of: (r: StudyRun) => string }[] {
  const axes: { name: string; of: (r: StudyRun) => string }[] = [
    study.runs[0]!.batchSize !== undefined ? { name: 'batch size', of: (r) => `b${r.batchSize}` } : { name: 'schedule', of: (r) => scheduleText(r) },
    { name: study.lrScaling.rule === 'none' ? 'learning rate' : `base learning rate (${study.lrScaling.rule} from b${study.lrScaling.baseBatchSize})`, of: (r) => `lr ${r.baseLr}` },
    { name: 'optimiser', of: (r) => formatOptimizer(r.optimizer) },
  ];
  return axes.filter((a) => new Set(study.runs.map(a.of)).size > 1);
}

function curve(res: StoredRunResult, k: Exclude<StudyMetric, 'cosine'>, label: string): CurveSeries {
  const n = Math.min(...res.seeds.map((s) => s.epochs.length));
  const x: number[] = [];
  const m: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  for (let e = 0; e < n; e++) {
    const vals = res.seeds.map((s) => s.epochs[e]![k] as number);
    const mu = mean(vals);
    const sd = vals.length > 1 ? std(vals) : 0;
    x.push(e + 1);
    m.push(mu);
    lo.push(mu - sd);
    hi.push(mu + sd);
  }
  return { label, x, mean: m, lo, hi };
}

interface GradSummary {
  name: string;
  layer: number;
  points: { b: number; p: GradStudyPoint }[];
  fits?: { sumMean?: PowerLawFit; sumSum?: PowerLawFit; stepMean?: PowerLawFit };
  noise?: NoiseScaleEstimate;
  missing: number[];
}

function gradSummaries(study: Study, units: readonly GradUnit[], points: ReadonlyMap<string, GradStudyPoint>, trainCount: number): GradSummary[] {
  const out: GradSummary[] = [];
  for (const g of study.grad) {
    for (const layer of g.layers) {
      const mine = units.filter((u) => u.grad.name === g.name && u.layer === layer);
      const have = mine.filter((u) => points.has(u.id)).map((u) => ({ b: u.b, p: points.get(u.id)! })).sort((a, z) => a.b - z.b);
      const s: GradSummary = { name: g.name, layer, points: have, missing: mine.filter((u) => !points.has(u.id)).map((u) => u.b) };
      const fit = (pick: (p: GradStudyPoint) => number): PowerLawFit | undefined => {
        const ok = have.filter((x) => pick(x.p) > 0);
        return ok.length >= 3 ? fitPowerLaw(ok.map((x) => x.b), ok.map((x) => pick(x.p))) : undefined;
      };
      if (have.length >= 3) {
        const sumMean = fit((p) => p.mean.sumNorm.mean);
        const sumSum = fit((p) => p.sum.sumNorm.mean);
        const stepMean = fit((p) => p.mean.stepNorm.mean);
        s.fits = { ...(sumMean ? { sumMean } : {}), ...(sumSum ? { sumSum } : {}), ...(stepMean ? { stepMean } : {}) };
      }
      if (have.length >= 2) {
        try {
          s.noise = estimateNoiseScale(have.map((x) => ({ b: x.b, norm2: x.p.perTrial.firstStepNorm2 })), { populationSize: trainCount, seed: g.seed });
        } catch {
          // batch sizes that do not separate: no estimate
        }
      }
      out.push(s);
    }
  }
  return out;
}

/** Builds report.html, runs.csv and trials.csv of a sweep from what the results folder holds. */
export async function sweepReport(study: Study, opts: SweepReportOptions): Promise<SweepReport> {
  const data = opts.data ?? (await loadStudyData(study, opts.out));
  const store = new RunStore(opts.out);
  const units: SweepUnit[] = sweepUnits(study, { trainCount: data.train.count, testCount: data.test.count });
  const results = new Map<string, StoredRunResult>();
  for (const r of study.runs) {
    const res = await readRunResult(store, r.spec, data.identity, data.train.count);
    if (res) results.set(r.id, res);
  }
  const gradUnits = units.filter((u): u is GradUnit => u.kind === 'grad');
  const points = await readGradPoints(study, opts.out, data);
  const missing: { id: string; label: string }[] = [];
  for (const u of units) {
    if (u.kind === 'train') {
      for (const r of u.runs) if (!results.has(r.id)) missing.push({ id: r.id, label: `run ${r.label}` });
    } else if (!points.has(u.id)) missing.push({ id: u.id, label: `gradient study ${u.label}` });
  }

  const runsText = runsCsv(study, results);
  const trialsText = trialsCsv(study, gradUnits, points);
  const html = await buildHtml(study, data, results, gradUnits, points, missing, opts.madeBy);
  await mkdir(opts.out, { recursive: true });
  const files: SweepReportFiles = {
    html: join(opts.out, `${study.name}-report.html`),
    runsCsv: join(opts.out, `${study.name}-runs.csv`),
    trialsCsv: join(opts.out, `${study.name}-trials.csv`),
  };
  await writeFileAtomic(files.runsCsv, runsText);
  await writeFileAtomic(files.trialsCsv, trialsText);
  await writeFileAtomic(files.html, html);
  return { files, runsDone: results.size, runsTotal: study.runs.length, pointsDone: points.size, pointsTotal: gradUnits.length, missing };
}

async function buildHtml(
  study: Study,
  data: SweepData,
  results: ReadonlyMap<string, StoredRunResult>,
  gradUnits: readonly GradUnit[],
  points: ReadonlyMap<string, GradStudyPoint>,
  missing: { id: string; label: string }[],
  madeBy: string | undefined,
): Promise<string> {
  const parts: string[] = [];
  const scalar = study.keep.filter((k): k is Exclude<StudyMetric, 'cosine'> => k !== 'cosine');
  const primary: Exclude<StudyMetric, 'cosine'> | undefined = (['testAcc', 'testLoss', 'trainLoss', 'trainAcc'] as const).find((k) => scalar.includes(k)) ?? scalar[0];
  const dataText = `${study.data.set ?? data.dir} (${data.train.count} training, ${data.test.count} test images)`;
  parts.push(`<header><h1>bsx sweep: ${escapeHtml(study.name)}</h1>${study.description ? `<p>${escapeHtml(study.description)}</p>` : ''}`);
  parts.push('<dl class="meta">');
  parts.push(`<dt>data</dt><dd>${escapeHtml(dataText)}</dd>`);
  parts.push(`<dt>model</dt><dd>${escapeHtml(study.widths.join('-'))}</dd>`);
  parts.push(`<dt>grid</dt><dd>${study.runs.length} runs x ${study.seeds.length} seed${study.seeds.length === 1 ? '' : 's'} (${escapeHtml(study.seeds.join(', '))})</dd>`);
  if (study.lrScaling.rule !== 'none') parts.push(`<dt>learning rates</dt><dd>scaled ${escapeHtml(study.lrScaling.rule)}ly with the batch size from b${study.lrScaling.baseBatchSize}</dd>`);
  parts.push(`<dt>gradient studies</dt><dd>${study.grad.length}</dd>`);
  parts.push(`<dt>study</dt><dd>${escapeHtml(study.file ?? '')} (hash ${escapeHtml(study.hash)})</dd>`);
  if (madeBy) parts.push(`<dt>made by</dt><dd>${escapeHtml(madeBy)}</dd>`);
  parts.push(`<dt>made</dt><dd>${escapeHtml(new Date().toISOString())}</dd>`);
  parts.push('</dl></header>');
  parts.push('<section id="completeness">');
  if (missing.length === 0) {
    parts.push(`<p class="complete">Complete: all ${study.runs.length} runs and ${gradUnits.length} gradient points are in.</p>`);
  } else {
    parts.push(
      `<div class="missing"><p><strong>Incomplete:</strong> ${results.size} of ${study.runs.length} runs and ${points.size} of ${gradUnits.length} gradient points are in; ` +
        `missing (run <code>bsx sweep run</code> again, or resubmit the array, to finish them):</p><ul>${missing.map((m) => `<li>${escapeHtml(m.label)}</li>`).join('')}</ul></div>`,
    );
  }
  parts.push('</section>');

  // final metrics
  parts.push('<section id="final"><h2>Final metrics</h2>');
  const head = scalar.map((k) => `<th class="num">${escapeHtml(METRIC_LABEL[k])}</th>`).join('');
  const rows = study.runs.map((r) => {
    const res = results.get(r.id);
    const cells = scalar
      .map((k) => {
        if (!res) return '<td class="num">missing</td>';
        const v = lastOf(res, k);
        return `<td class="num">${escapeHtml(fmt(mean(v)))}${v.length > 1 ? ` ± ${escapeHtml(fmt(std(v)))}` : ''}</td>`;
      })
      .join('');
    const div = res ? res.seeds.filter((s) => s.divergedAtEpoch !== undefined).length : 0;
    return `<tr><td>${escapeHtml(r.label)}${div > 0 ? ` <em>(${div} seed${div > 1 ? 's' : ''} diverged)</em>` : ''}</td>${cells}</tr>`;
  });
  parts.push(`<p>After the last epoch, mean ± standard deviation over ${study.seeds.length} seed${study.seeds.length === 1 ? '' : 's'}.</p>`);
  parts.push(`<table><thead><tr><th>run</th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`);
  parts.push('</section>');

  const figures: Figure[] = [];
  const axes = axesOf(study);
  // heatmaps over the first two axes
  if (axes.length >= 1 && primary !== undefined) {
    const [ax, ay] = [axes[0]!, axes[1]];
    for (const k of [primary, ...(scalar.includes('weightDistance') && primary !== 'weightDistance' ? (['weightDistance'] as const) : [])]) {
      const rest = axes.slice(2);
      const groups = new Map<string, StudyRun[]>();
      for (const r of study.runs) {
        const g = rest.map((a) => a.of(r)).join(', ');
        groups.set(g, [...(groups.get(g) ?? []), r]);
      }
      for (const [g, runs] of groups) {
        const cells = runs
          .filter((r) => results.has(r.id))
          .map((r) => ({ x: ax.of(r), y: ay ? ay.of(r) : METRIC_LABEL[k], value: mean(lastOf(results.get(r.id)!, k)) }));
        if (cells.length === 0) continue;
        figures.push({
          id: `heat-${k}-${g}`,
          title: `${METRIC_LABEL[k]} after the last epoch over the grid${g ? ` (${g})` : ''}`,
          caption: `Each cell is a run of the grid, mean over seeds; ${ax.name} across${ay ? `, ${ay.name} down` : ''}. Runs that have not finished are left out.`,
          vegaLite: heatmapFigure({ cells, xTitle: ax.name, yTitle: ay ? ay.name : '', valueTitle: METRIC_LABEL[k] }),
        });
      }
    }
  }
  // curves per axis: one line per value of the axis, one panel per combination of the others
  if (primary !== undefined) {
    const curveAxes = axes.length > 0 ? axes : [{ name: 'run', of: (r: StudyRun) => r.label }];
    for (const a of curveAxes) {
      const others = axes.filter((o) => o !== a);
      const panels = new Map<string, CurveSeries[]>();
      for (const r of study.runs) {
        const res = results.get(r.id);
        if (!res) continue;
        const title = others.map((o) => o.of(r)).join(', ') || METRIC_LABEL[primary];
        panels.set(title, [...(panels.get(title) ?? []), curve(res, primary, a.of(r))]);
      }
      if (panels.size === 0) continue;
      const list = [...panels.entries()].slice(0, 8).map(([title, series]) => ({ title, yTitle: METRIC_LABEL[primary], series }));
      figures.push({
        id: `curves-${a.name}`,
        title: `${METRIC_LABEL[primary]} per epoch, by ${a.name}`,
        caption: `One line per ${a.name}, mean over seeds with a band of one standard deviation${others.length > 0 ? `; one panel per ${others.map((o) => o.name).join(' and ')}` : ''}${panels.size > 8 ? ' (the first 8 panels)' : ''}.`,
        vegaLite: facetCurvesFigure({ panels: list, xTitle: 'epoch', columns: list.length > 1 ? 2 : 1 }),
      });
    }
  }
  if (figures.length > 0) {
    parts.push('<section id="grid"><h2>Over the grid</h2>');
    for (const f of figures) parts.push(await figureHtml(f));
    parts.push('</section>');
  }

  // gradient studies
  const grads = gradSummaries(study, gradUnits, points, data.train.count);
  if (grads.length > 0) {
    parts.push('<section id="gradients"><h2>Gradient statistics</h2>');
    for (const g of grads) {
      const unit = gradUnits.find((u) => u.grad.name === g.name && u.layer === g.layer)!;
      parts.push(`<h3>${escapeHtml(g.name)}, layer ${g.layer}</h3>`);
      parts.push(`<p>${unit.grad.trials} trials per batch size from ${escapeHtml(unit.model.label)}; each trial steps through ${unit.grad.samplesPerTrial} training samples with plain SGD at lr ${unit.grad.lr}. |S| is the norm of the summed weight gradient of the layer over a trial's steps; the step norm the mean norm of one step's gradient (batch-mean loss, and batch-sum loss: b times it).</p>`);
      if (g.missing.length > 0) parts.push(`<p class="missing">Batch sizes not yet in: ${g.missing.join(', ')}.</p>`);
      const trs = g.points.map(
        ({ b, p }) =>
          `<tr><td class="num">${b}</td><td class="num">${p.steps}</td><td class="num">${fmt(p.mean.sumNorm.mean)} ± ${fmt(p.mean.sumNorm.std)}</td><td class="num">${fmt(p.mean.stepNorm.mean)} ± ${fmt(p.mean.stepNorm.std)}</td><td class="num">${fmt(p.sum.sumNorm.mean)}</td><td class="num">${fmt(p.firstStepNorm2.mean)}</td></tr>`,
      );
      parts.push(
        `<table><thead><tr><th class="num">b</th><th class="num">steps</th><th class="num">|S| (batch-mean)</th><th class="num">step norm (batch-mean)</th><th class="num">|S| (batch-sum)</th><th class="num">|g<sub>1</sub>|<sup>2</sup></th></tr></thead><tbody>${trs.join('')}</tbody></table>`,
      );
      const fitText = (name: string, f: PowerLawFit | undefined): string =>
        f ? `<li>${escapeHtml(name)}: exponent ${fmt(f.exponent)} [${fmt(f.exponentCi95[0])}, ${fmt(f.exponentCi95[1])}] (95%), R² ${fmt(f.r2)}, over b ${f.range[0]}-${f.range[1]}</li>` : '';
      const items = [
        fitText('mean |S| ~ b^k, batch-mean loss', g.fits?.sumMean),
        fitText('mean |S| ~ b^k, batch-sum loss', g.fits?.sumSum),
        fitText('mean step norm ~ b^k, batch-mean loss', g.fits?.stepMean),
        g.noise ? `<li>gradient noise scale B<sub>simple</sub> = ${fmt(g.noise.bSimple)} [${fmt(g.noise.ci95[0])}, ${fmt(g.noise.ci95[1])}] (95% bootstrap; |G|² ${fmt(g.noise.gradNorm2)}, tr Σ ${fmt(g.noise.traceCov)})</li>` : '',
      ].filter((x) => x !== '');
      if (items.length > 0) parts.push(`<ul>${items.join('')}</ul>`);
      if (g.points.length > 0) {
        const pts = g.points.flatMap(({ b, p }) => [
          { x: b, y: p.mean.sumNorm.mean, err: p.mean.sumNorm.std, group: '|S|, batch-mean loss' },
          { x: b, y: p.sum.sumNorm.mean, err: p.sum.sumNorm.std, group: '|S|, batch-sum loss' },
        ]);
        const fits = [
          ...(g.fits?.sumMean ? [{ group: '|S|, batch-mean loss', coefficient: g.fits.sumMean.coefficient, exponent: g.fits.sumMean.exponent, label: `k = ${fmt(g.fits.sumMean.exponent)}` }] : []),
          ...(g.fits?.sumSum ? [{ group: '|S|, batch-sum loss', coefficient: g.fits.sumSum.coefficient, exponent: g.fits.sumSum.exponent, label: `k = ${fmt(g.fits.sumSum.exponent)}` }] : []),
        ];
        parts.push(
          await figureHtml({
            id: `grad-${g.name}-L${g.layer}`,
            title: `${g.name}: norm of the summed gradient of layer ${g.layer} against batch size`,
            caption: 'Mean over trials with one standard deviation, per batch size; lines are power-law fits over the batch sizes in (three or more).',
            vegaLite: pointsWithErrorBars({ points: pts, fits, xTitle: 'batch size b', yTitle: `|S|, layer ${g.layer}`, xScale: 'log', yScale: 'log' }),
          }),
        );
      }
    }
    parts.push('</section>');
  }

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bsx sweep: ${escapeHtml(study.name)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${parts.join('\n')}
<footer id="report-end"><p>Made by bsx from the results folder: ${escapeHtml(study.name)}-runs.csv (one row per run, seed and epoch) and ${escapeHtml(study.name)}-trials.csv (one row per trial statistic) beside this file hold the numbers.</p></footer>
</main>
</body>
</html>
`;
}

