// Tests of the report layer: every figure builder's specification renders to SVG with all of
// its data bound; writeReport writes report.html, summary.md and findings.json; text is escaped;
// and, where Chromium is installed, the HTML loads in a headless browser without errors.
// The findings here are synthetic (made-up numbers of a realistic shape), not results.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FigureSpec, FindingResult, Verdict } from '../src/findings/types.js';
import {
  FIT_SAMPLES,
  barFigure,
  buildHtmlReport,
  buildMarkdownSummary,
  countMarks,
  curvesFigure,
  escapeHtml,
  facetCurvesFigure,
  formatNumber,
  heatmapFigure,
  histogramFigure,
  mdEscape,
  pointsWithErrorBars,
  renderFigure,
  renderSvg,
  ridgelineFigure,
  scopeSvgIds,
  writeReport,
  type CurveSeries,
  type HistogramRow,
  type ReportInput,
} from '../src/report/index.js';

// ---------------------------------------------------------------------------------------------
// Synthetic data

/** Deterministic uniform numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Standard normal numbers (Box-Muller). */
function normal(rnd: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

const INJECTION = '<script>alert(1)</script>';
const EPOCHS = Array.from({ length: 30 }, (_, i) => i + 1);
const BATCHES = [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512, 1024];

/** A mean curve a + (b - a) * exp(-t / tau) with a band of +-sd around it and a little noise. */
function decay(label: string, a: number, b: number, tau: number, sd: number, seed: number): CurveSeries {
  const z = normal(lcg(seed));
  const mean = EPOCHS.map((t) => a + (b - a) * Math.exp(-t / tau) + 0.1 * sd * z());
  return { label, x: EPOCHS, mean, lo: mean.map((m) => m - sd), hi: mean.map((m) => m + sd) };
}

function accuracyCurve(label: string, final: number, tau: number, sd: number, seed: number): CurveSeries {
  return decay(label, final, final - 12, tau, sd, seed);
}

/** A histogram of `draws` samples of `sample()` over `edges`. */
function histogram(label: string, edges: number[], draws: number, sample: () => number): HistogramRow {
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (let i = 0; i < draws; i++) {
    const v = sample();
    let k = 0;
    while (k < counts.length - 1 && v >= edges[k + 1]!) k++;
    if (v >= edges[0]! && v < edges[edges.length - 1]!) counts[k]!++;
  }
  return { label, edges, counts };
}

/** Edges spaced evenly in log|x| on both sides of 0: -max .. -min, 0, min .. max. */
function signedLogEdges(min: number, max: number, perSide: number): number[] {
  const pos = Array.from({ length: perSide }, (_, i) => min * Math.pow(max / min, i / (perSide - 1)));
  return [...pos.map((v) => -v).reverse(), 0, ...pos];
}

function fig(id: string, title: string, caption: string, vegaLite: Record<string, unknown>): FigureSpec {
  return { id, title, caption, vegaLite };
}

// Figure inputs, kept so the tests can count the data each builder was given.

const curvePanels = [
  { title: 'train loss', yTitle: 'NLL (mean over batch)', series: [decay('b64', 0.002, 0.45, 4, 0.001, 1), decay('b256', 0.02, 0.6, 6, 0.003, 2), decay('b1024', 0.11, 1.6, 7, 0.006, 3)], yScale: 'log' as const },
  { title: 'test loss', yTitle: 'NLL (mean over batch)', series: [decay('b64', 0.065, 0.3, 4, 0.004, 4), decay('b256', 0.08, 0.45, 6, 0.004, 5), decay('b1024', 0.13, 1.4, 7, 0.006, 6)] },
  { title: 'train accuracy', yTitle: 'accuracy (%)', series: [accuracyCurve('b64', 99.9, 4, 0.05, 7), accuracyCurve('b256', 99.2, 6, 0.1, 8), accuracyCurve('b1024', 96.5, 7, 0.2, 9)] },
  { title: 'test accuracy', yTitle: 'accuracy (%)', series: [accuracyCurve('b64', 98.1, 4, 0.1, 10), accuracyCurve('b256', 97.6, 6, 0.12, 11), accuracyCurve(INJECTION, 96.3, 7, 0.2, 12)] },
];

const normPoints = (() => {
  const z = normal(lcg(21));
  return [
    ...BATCHES.map((b) => ({ x: b, y: 0.021 * Math.pow(b, 0.5) * (1 + 0.03 * z()), err: 0.0045 * Math.pow(b, 0.75), group: 'early (after 2 epochs)' })),
    ...BATCHES.map((b) => ({ x: b, y: 0.006 * Math.pow(b, 0.47) * (1 + 0.03 * z()), err: 0.0016 * Math.pow(b, 0.72), group: 'late (after 30 epochs)' })),
  ];
})();
const normFits = [
  { group: 'early (after 2 epochs)', coefficient: 0.021, exponent: 0.5, label: 'slope 0.50 [0.48, 0.52], all b' },
  { group: 'early (after 2 epochs)', coefficient: 0.0205, exponent: 0.505, label: 'slope 0.51 [0.47, 0.54], b ≥ 16', xMin: 16 },
  { group: 'late (after 30 epochs)', coefficient: 0.006, exponent: 0.47, label: 'slope 0.47 [0.44, 0.50], all b' },
];

const ridgeRows: HistogramRow[] = (() => {
  const edges = Array.from({ length: 41 }, (_, i) => 1e-3 * Math.pow(10, (i / 40) * 3));
  return BATCHES.map((b, i) => {
    const z = normal(lcg(100 + i));
    const mu = Math.log(0.02 * Math.sqrt(b));
    const sigma = 0.08 + 0.05 * Math.log2(b);
    return histogram(`b${b}`, edges, 1000, () => Math.exp(mu + sigma * z()));
  });
})();

const rawHistGroups: HistogramRow[] = (() => {
  const edges = signedLogEdges(1e-7, 1e-1, 22);
  const make = (label: string, scale: number, tail: number, seed: number) => {
    const rnd = lcg(seed);
    const z = normal(rnd);
    // a Gaussian body plus a heavier Student-like tail for larger batches
    return histogram(label, edges, 60_000, () => scale * z() * (rnd() < tail ? 20 * Math.abs(z()) + 1 : 1));
  };
  return [make('b2', 4e-4, 0.001, 31), make('b64', 2e-3, 0.01, 32), make('b1024', 8e-3, 0.04, 33)];
})();

const barData = (() => {
  const rows: { label: string; value: number; err?: number; group?: string }[] = [];
  const cos: Record<string, number[]> = {
    'SGD b64': [0.988, 0.993, 0.928],
    'SGD b1024': [0.998, 0.998, 0.978],
    'SGD b1024 lr0.1': [0.991, 0.994, 0.936],
    Adam: [0.124, 0.359, 0.153],
  };
  for (const [group, vs] of Object.entries(cos)) vs.forEach((v, i) => rows.push({ label: `layer ${i + 1}`, value: v, err: 0.004 + 0.01 * (1 - v), group }));
  return rows;
})();

const gridBatches = ['64', '128', '256', '512', '1024'];
const gridLrs = ['0.001', '0.01', '0.1'];
const heatCells = gridLrs.flatMap((lr, j) =>
  gridBatches.map((b, i) => {
    const w = 6.9 * Math.pow(0.62, i) * Math.pow(2.4, j - 1);
    return { x: b, y: lr, value: w, text: w.toFixed(2) };
  }),
);

const distanceSeries: CurveSeries[] = [
  { label: 'SGD b64', x: EPOCHS, mean: EPOCHS.map((t) => 6.7 * Math.sqrt(t / 30)), lo: EPOCHS.map((t) => 6.6 * Math.sqrt(t / 30)), hi: EPOCHS.map((t) => 6.8 * Math.sqrt(t / 30)) },
  { label: 'SGD b1024', x: EPOCHS, mean: EPOCHS.map((t) => 2.1 * Math.sqrt(t / 30)) },
];

// Builders' specs, each with the number of data rows it was given (its annotations included).
const SPECS: { name: string; spec: Record<string, unknown>; given: number }[] = [
  { name: 'curves', spec: curvesFigure({ series: distanceSeries, xTitle: 'epoch', yTitle: 'L2 distance from init' }), given: 60 },
  {
    name: 'facet',
    spec: facetCurvesFigure({ panels: curvePanels, xTitle: 'epoch' }),
    given: curvePanels.reduce((n, p) => n + p.series.reduce((m, s) => m + s.x.length, 0), 0),
  },
  {
    name: 'points',
    spec: pointsWithErrorBars({ points: normPoints, fits: normFits, xTitle: 'batch size b', yTitle: 'mean |S| (mean-reduced)', xScale: 'log', yScale: 'log' }),
    given: normPoints.length + normFits.length * FIT_SAMPLES,
  },
  {
    name: 'ridgeline',
    spec: ridgelineFigure({ rows: ridgeRows, xTitle: '|S| per trial', xScale: 'log', rowTitle: 'batch size' }),
    given: ridgeRows.reduce((n, r) => n + r.counts.length, 0),
  },
  {
    name: 'histogram',
    spec: histogramFigure({ groups: rawHistGroups, xTitle: 'gradient value', yScale: 'log', xScale: 'symlog', highlight: { from: 1e-2, to: 1e-1, label: 'large values' } }),
    given: rawHistGroups.reduce((n, g) => n + g.counts.length, 0) + 1,
  },
  { name: 'bars', spec: barFigure({ bars: barData, yTitle: 'cosine(final, initial)', xTitle: 'layer' }), given: barData.length },
  { name: 'heatmap', spec: heatmapFigure({ cells: heatCells, xTitle: 'batch size', yTitle: 'learning rate', valueTitle: 'W: L2 distance' }), given: heatCells.length },
];

/** Rows in every distinct inline `data.values` array of a Vega-Lite spec. */
function inlineRows(spec: unknown): number {
  const seen = new Set<unknown>();
  let n = 0;
  const walk = (o: unknown): void => {
    if (Array.isArray(o)) return o.forEach(walk);
    if (o === null || typeof o !== 'object') return;
    const rec = o as Record<string, unknown>;
    const data = rec.data as { values?: unknown[] } | undefined;
    if (data && Array.isArray(data.values) && !seen.has(data.values)) {
      seen.add(data.values);
      n += data.values.length;
    }
    for (const [k, v] of Object.entries(rec)) if (k !== 'data') walk(v);
  };
  walk(spec);
  return n;
}

function specOf(name: string): Record<string, unknown> {
  return SPECS.find((s) => s.name === name)!.spec;
}

function finding(id: string, title: string, verdict: Verdict, figures: FigureSpec[], extra: Partial<FindingResult> = {}): FindingResult {
  return {
    id,
    title,
    claim: `Synthetic claim for ${id}: a made-up statement used to test the report layout.`,
    verdict,
    reason: `Synthetic rule for ${id}: compared two made-up numbers.`,
    measured: [],
    figures,
    profile: 'quick',
    deviations: [],
    ...extra,
  };
}

const FINDINGS: FindingResult[] = [
  finding('F1', 'Larger batches end at a lower test accuracy', 'reproduced', [fig('curves', 'Loss and accuracy per epoch', 'Mean over seeds with a band of one standard deviation; batch sizes 64, 256 and 1024 at lr 0.01.', specOf('facet'))], {
    measured: [
      { label: 'test accuracy, b64, last epoch', value: 98.07, spread: 0.11, seed: 98, unit: '%' },
      { label: 'test accuracy, b1024, last epoch', value: 96.31, spread: 0.18, seed: 96, unit: '%' },
      { label: `train accuracy, b64 ${INJECTION}`, value: 99.93, spread: 0.02, seed: 100, unit: '%' },
      { label: 'test loss, b1024, last epoch', value: 0.1291, spread: 0.004 },
    ],
    notes: [`A note with markup that must stay text: ${INJECTION} & "quotes"`],
    deviations: ['3 seeds instead of 1', 'Data: 12,000 training images instead of 60,000'],
  }),
  finding(
    'F4',
    'Gradient norms grow with batch size',
    'partly',
    [
      fig('norms', 'Mean norm of the summed gradient against batch size', 'Points are means over 1000 trials with bars of one standard deviation; dashed lines are power-law fits.', specOf('points')),
      fig('ridges', 'Per-trial norms by batch size', 'Each row is a density of the 1000 per-trial norms, scaled to the same peak height.', specOf('ridgeline')),
    ],
    {
      measured: [
        { label: 'power-law exponent, early, all b', value: 0.501, spread: 0.012, seed: 0.5 },
        { label: 'power-law exponent, late, b ≥ 16', value: 0.472, spread: 0.015, seed: 0.5 },
      ],
      notes: ['The sum-reduced statistic gives the square-root law; the mean-reduced one falls like 1/b.'],
    },
  ),
  finding('F7', 'Larger batches have heavier-tailed gradients', 'not reproduced', [fig('raw', 'Raw gradient values', 'Counts of the summed last-layer gradient entries in shared signed-log bins; the shaded bin is the one the study compares.', specOf('histogram'))], {
    measured: [
      { label: 'count in the highlighted bin, b1024', value: 8.4e4, seed: 1e5 },
      { label: 'count in the highlighted bin, b2', value: 2.1e-4, seed: 100 },
    ],
  }),
  finding(
    'F8',
    'Good solutions lie far from the initial weights',
    'reproduced',
    [
      fig('grid', 'Distance of the final weights from init over the batch x lr grid', 'L2 distance of the weights after 30 epochs, one cell per batch size and learning rate.', specOf('heatmap')),
      fig('cosines', 'Cosine of final and initial weights per layer', 'Bars are means over seeds with one standard deviation.', specOf('bars')),
      fig('distance', 'Distance from init per epoch', 'The distance grows sublinearly in epochs for a fixed batch size.', specOf('curves')),
    ],
    { measured: [{ label: 'W, b64 lr0.01', value: 6.712, spread: 0.021, seed: 6.71 }, { label: 'test accuracy, b64 lr0.01', value: Number.NaN, seed: 98, unit: '%' }] },
  ),
];

const INPUT: ReportInput = {
  title: 'bsx report: batch size and training dynamics (synthetic test data)',
  profile: 'quick',
  createdAt: '2025-01-02T03:04:05Z',
  machine: { cpu: 'Test CPU @ 3.0GHz', threads: 16, backend: 'cpu-avx2', gpu: 'none' },
  seedsPerRun: 3,
  findings: FINDINGS,
  citation: 'K. Shen (2018), "Effect of batch size on training dynamics", blog post; cited for its claims and numbers.',
  profileNote: 'a fifth of the training data and 3 seeds; shapes comparable to the study, absolute numbers not.',
};

// ---------------------------------------------------------------------------------------------

const tmpRoots: string[] = [];
function tmp(prefix = 'bsx-report-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

describe('figure builders', () => {
  for (const { name, spec, given } of SPECS) {
    it(`${name}: renders to SVG with all its data bound`, async () => {
      expect(inlineRows(spec)).toBe(given);
      const r = await renderFigure(fig(name, name, '', spec));
      expect(r.svg.startsWith('<svg')).toBe(true);
      expect(r.svg.length).toBeGreaterThan(2000);
      expect(r.dataPoints).toBe(given);
      expect(r.dataPoints).toBeGreaterThan(0);
      expect(r.markItems).toBeGreaterThan(0);
      expect(countMarks(r.svg)).toBeGreaterThan(0);
      expect(r.warnings).toEqual([]);
      // the spec is plain data: it survives a JSON round trip unchanged
      expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
    });
  }

  it('every facet panel draws its lines', async () => {
    const r = await renderFigure(fig('facet', 'facet', '', specOf('facet')));
    // every row is a point of a line and of a band (all series here have bands)
    expect(r.markItems).toBe(2 * SPECS.find((s) => s.name === 'facet')!.given);
  });

  it('a log count axis copes with empty bins (they become gaps in the outline)', async () => {
    const bins = rawHistGroups.reduce((n, g) => n + g.counts.length, 0);
    const empty = rawHistGroups.reduce((n, g) => n + g.counts.filter((c) => c === 0).length, 0);
    expect(empty).toBeGreaterThan(0);
    const r = await renderFigure(fig('histogram', '', '', specOf('histogram')));
    expect(r.warnings).toEqual([]);
    // two outline points per bin, plus the highlight's rect and label
    expect(r.markItems).toBe(2 * bins + 2);
    // every line path is finite: no NaN or Infinity coordinates reached the SVG
    expect(r.svg).not.toMatch(/NaN|Infinity/);
    // a gap starts a new sub-path: more 'M' commands than groups
    const moves = [...r.svg.matchAll(/<path[^>]*\bd="([^"]*)"/g)].map((m) => m[1]!).filter((d) => d.length > 200).reduce((n, d) => n + (d.match(/M/g) ?? []).length, 0);
    expect(moves).toBeGreaterThan(rawHistGroups.length);
  });

  it('an invalid spec fails with an error naming the figure', async () => {
    await expect(renderSvg({ mark: 'no-such-mark', data: { values: [] } }, 'broken-figure')).rejects.toThrow(/broken-figure/);
    await expect(renderFigure(fig('also-broken', '', '', { layer: 3 }))).rejects.toThrow(/also-broken/);
  });

  it('builders reject inconsistent input', () => {
    expect(() => curvesFigure({ series: [{ label: 'a', x: [1, 2], mean: [1] }], xTitle: 'x', yTitle: 'y' })).toThrow(/'a'/);
    expect(() => ridgelineFigure({ rows: [{ label: 'r', edges: [0, 1], counts: [1, 2] }], xTitle: 'x' })).toThrow(/edges/);
    expect(() => histogramFigure({ groups: [{ label: 'g', edges: [-1, 0, 1], counts: [1, 1] }], xTitle: 'x', yScale: 'log', xScale: 'log' })).toThrow(/symlog/);
  });

  it('scopes SVG ids so inlined figures do not share clip paths', () => {
    const svg = '<svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"></g></svg>';
    expect(scopeSvgIds(svg, 'figure-F1-a')).toBe('<svg><defs><clipPath id="figure-F1-a-clip1"><rect/></clipPath></defs><g clip-path="url(#figure-F1-a-clip1)"></g></svg>');
  });
});

describe('formatting and escaping', () => {
  it('formats numbers for people', () => {
    expect(formatNumber(98.07)).toBe('98.07');
    expect(formatNumber(6.7123)).toBe('6.712');
    expect(formatNumber(0.00021)).toBe('2.1e-4');
    expect(formatNumber(84000)).toBe('84000');
    expect(formatNumber(123456)).toBe('1.235e5');
    expect(formatNumber(Number.NaN)).toBe('n/a');
    expect(formatNumber(0)).toBe('0');
  });
  it('names the seed count of a value over a run of its own seeds, not of one over the suite\'s', async () => {
    const f = FINDINGS[0]!;
    const measured = [
      { label: 'W distance, Adam b64', value: 101.2, spread: 0.9, seeds: 5 },
      { label: 'steps to the target at b16', value: 927.3, seeds: 1 },
      { label: 'W distance, SGD b64', value: 2.708, spread: 0.0055, seeds: INPUT.seedsPerRun },
    ];
    const input = { ...INPUT, findings: [{ ...f, measured }] };
    const md = buildMarkdownSummary(input);
    expect(md).toContain('| W distance, Adam b64 | 101.2 ± 0.9 (5 seeds) |');
    expect(md).toContain('| steps to the target at b16 | 927.3 (1 seed) |');
    expect(md).toContain('| W distance, SGD b64 | 2.708 ± 0.0055 |');
    const html = await buildHtmlReport(input);
    expect(html).toContain('>101.2 ± 0.9 (5 seeds)<');
    expect(html).toContain('>2.708 ± 0.0055<');
  });
  it('escapes HTML and Markdown', () => {
    expect(escapeHtml(`${INJECTION}&"'`)).toBe('&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;');
    expect(mdEscape('a|b_c*<x>')).toBe('a\\|b\\_c\\*\\<x\\>');
  });
});

describe('writeReport', () => {
  let dir: string;
  let html: string;
  let md: string;
  beforeAll(async () => {
    // BSX_REPORT_KEEP=<dir> keeps the report (and the browser's screenshot) for a person to look at
    dir = process.env.BSX_REPORT_KEEP ?? join(tmp(), 'report');
    const paths = await writeReport(dir, INPUT);
    expect(paths).toEqual({ html: join(dir, 'report.html'), markdown: join(dir, 'summary.md'), json: join(dir, 'findings.json') });
    html = readFileSync(paths.html, 'utf8');
    md = readFileSync(paths.markdown, 'utf8');
  });

  it('writes the three files and nothing else', () => {
    for (const f of ['report.html', 'summary.md', 'findings.json']) expect(statSync(join(dir, f)).size).toBeGreaterThan(100);
  });

  it('the HTML has one inline SVG per figure, the verdict table and the footer', () => {
    const figures = FINDINGS.reduce((n, f) => n + f.figures.length, 0);
    expect((html.match(/<svg\b/g) ?? []).length).toBe(figures);
    expect((html.match(/<figure\b/g) ?? []).length).toBe(figures);
    const table = html.slice(html.indexOf('<table class="verdicts">'), html.indexOf('</table>', html.indexOf('<table class="verdicts">')));
    expect((table.match(/<tr>/g) ?? []).length).toBe(FINDINGS.length + 1);
    for (const f of FINDINGS) {
      expect(table).toContain(`href="#finding-${f.id}"`);
      expect(html).toContain(`<section class="finding" id="finding-${f.id}">`);
    }
    expect(table).toContain('<span class="badge v-yes">reproduced</span>');
    expect(table).toContain('<span class="badge v-partly">partly</span>');
    expect(table).toContain('<span class="badge v-no">not reproduced</span>');
    expect(table).toContain('98.07 ± 0.11%');
    expect(table).toContain('(study 98%)');
    expect(html).toContain('id="report-end"');
    expect(html).toContain(escapeHtml(INPUT.citation));
  });

  it('is self-contained: no scripts, no external resources, unique SVG ids', () => {
    expect(html).not.toMatch(/<script\b/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(["']?https?:/i);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('escapes text from findings and figure labels', () => {
    expect(html).not.toContain(INJECTION);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&amp; &quot;quotes&quot;');
    expect(md).not.toContain(INJECTION);
  });

  it('findings.json lists every finding with a valid verdict and the study numbers', () => {
    const json = JSON.parse(readFileSync(join(dir, 'findings.json'), 'utf8')) as Record<string, unknown>[];
    expect(json.map((e) => e.id)).toEqual(FINDINGS.map((f) => f.id));
    for (const e of json) {
      expect(['reproduced', 'partly', 'not reproduced']).toContain(e.verdict);
      expect(Object.keys(e).sort()).toEqual(['id', 'measured', 'profile', 'seed', 'title', 'verdict']);
      expect(e.profile).toBe('quick');
    }
    expect(json[0]!.seed).toEqual({ 'test accuracy, b64, last epoch': 98, 'test accuracy, b1024, last epoch': 96, [`train accuracy, b64 ${INJECTION}`]: 100 });
    // NaN (a diverged run) is written as null
    expect((json[3]!.measured as { value: unknown }[])[1]!.value).toBeNull();
  });

  it('the Markdown summary has the verdict table and the numbers beside the study', () => {
    expect(md).toContain('| id | finding | verdict | key numbers (bsx vs study) |');
    for (const f of FINDINGS) expect(md).toMatch(new RegExp(`^\\| ${f.id} \\| .* \\| .*${f.verdict}`, 'm'));
    expect(md).toContain('| test accuracy, b64, last epoch | 98.07 ± 0.11% | 98% |');
    expect(md).toContain('**Profile:** `quick`');
    expect(md).toContain(mdEscape(INPUT.citation));
    expect(buildMarkdownSummary(INPUT)).toBe(md);
  });

  it('an unrenderable figure fails the report naming it, or is shown as an error when asked', async () => {
    const bad: ReportInput = { ...INPUT, findings: [finding('F9', 'Broken', 'partly', [fig('oops', 'Oops', '', { mark: 'nope' })])] };
    await expect(buildHtmlReport(bad)).rejects.toThrow(/F9.*oops/);
    const page = await buildHtmlReport(bad, { onFigureError: 'inline' });
    expect(page).toContain('class="figure-error"');
  });

  const chromium = '/usr/bin/chromium';
  const haveChromium = existsSync(chromium);
  const browserTest = haveChromium ? 'loads in headless Chromium without errors' : 'loads in headless Chromium (skipped: /usr/bin/chromium is not installed)';
  it.skipIf(!haveChromium)(browserTest, () => {
    const shot = join(process.env.BSX_REPORT_KEEP ?? tmp(), 'report.png');
    mkdirSync(join(shot, '..'), { recursive: true });
    const url = pathToFileURL(join(dir, 'report.html')).href;
    // a fresh profile directory per call, and nothing that reaches the network
    const flags = (): string[] => [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${tmp('bsx-chromium-')}`,
    ];
    const a = spawnSync(chromium, [...flags(), '--enable-logging=stderr', '--v=0', `--screenshot=${shot}`, '--window-size=1280,4000', url], {
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(a.error).toBeUndefined();
    expect(existsSync(shot)).toBe(true);
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    const consoleErrors = (a.stderr ?? '').split('\n').filter((l) => /Uncaught|CONSOLE\(\d+\)|ERROR:CONSOLE|Failed to load resource/.test(l));
    expect(consoleErrors).toEqual([]);
    const b = spawnSync(chromium, [...flags(), '--dump-dom', url], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
    expect(b.error).toBeUndefined();
    const dom = b.stdout ?? '';
    expect(dom).toContain('id="report-end"');
    expect((dom.match(/<svg\b/g) ?? []).length).toBe(FINDINGS.reduce((n, f) => n + f.figures.length, 0));
    expect(dom).not.toMatch(/<script\b/i);
  });
});
