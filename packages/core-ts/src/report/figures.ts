// Figure builders for the report: each returns a Vega-Lite specification (a plain object with
// its data inline as `data: {values: [...]}`) in one house style: ~560 px wide, labelled axes,
// readable fonts and a fixed palette. Rendering to SVG lives in render.ts.
// Reference: the Vega-Lite documentation (vega.github.io/vega-lite), version 6 schema.

export type Spec = Record<string, unknown>;
export type AxisScale = 'linear' | 'log';

/** Width of a single-panel figure's plot area, in pixels. */
export const FIGURE_WIDTH = 560;
/** Height of a single-panel figure's plot area, in pixels. */
export const FIGURE_HEIGHT = 300;
/** Points sampled along each power-law fit line drawn by `pointsWithErrorBars`. */
export const FIT_SAMPLES = 48;

/**
 * Categorical palette shared by every figure: series keep the colour of their position, so
 * the first series of every figure has the same colour. Chosen to stay distinct for readers
 * with the common colour-vision deficiencies (blue/orange/green/vermilion first).
 */
export const PALETTE = [
  '#1f6fb4', // blue
  '#e69f00', // orange
  '#009e73', // green
  '#d55e00', // vermilion
  '#7b4fa0', // purple
  '#56b4e9', // sky
  '#cc79a7', // pink
  '#6b6b6b', // grey
  '#a6761d', // ochre
  '#1b9e9e', // teal
];

/** Sequential scheme for many ordered groups (e.g. fifteen batch sizes). */
const SEQUENTIAL_SCHEME = 'viridis';

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** The shared look: fonts, axes, legends, titles. */
function config(): Spec {
  return {
    font: FONT,
    background: 'white',
    padding: 8,
    view: { stroke: '#bdbdbd', strokeWidth: 1 },
    title: { fontSize: 15, fontWeight: 600, anchor: 'start', offset: 10, color: '#222' },
    axis: {
      labelFontSize: 12,
      titleFontSize: 13,
      titleFontWeight: 500,
      titleColor: '#333',
      labelColor: '#333',
      gridColor: '#ececec',
      domainColor: '#888',
      tickColor: '#888',
      labelOverlap: true,
      titlePadding: 8,
    },
    // a fixed minimum width of the y axis keeps the panels of a grid aligned
    axisY: { minExtent: 44 },
    legend: {
      labelFontSize: 12,
      titleFontSize: 12,
      titleFontWeight: 600,
      symbolSize: 90,
      labelLimit: 260,
      orient: 'right',
    },
    header: { labelFontSize: 13, titleFontSize: 13 },
    concat: { spacing: 28 },
    line: { strokeWidth: 2 },
  };
}

/** A top-level specification: schema, config and optional title around `body`. */
function topLevel(body: Spec, title?: string): Spec {
  const spec: Spec = { $schema: SCHEMA, ...body, config: config() };
  if (title !== undefined && title !== '') spec.title = title;
  return spec;
}

/** Non-finite numbers become null so the data stays valid JSON and Vega treats them as missing. */
function num(v: number | undefined): number | null {
  return v === undefined || !Number.isFinite(v) ? null : v;
}

/** Distinct values in first-seen order. */
function distinct(values: string[]): string[] {
  return [...new Set(values)];
}

/** A colour scale over `domain` (in that order): the palette, or a sequential scheme beyond ten. */
function colorScale(domain: string[]): Spec {
  if (domain.length <= PALETTE.length) return { domain, range: PALETTE.slice(0, Math.max(1, domain.length)) };
  return { domain, scheme: SEQUENTIAL_SCHEME };
}

/** A Vega expression string literal (JSON string syntax is valid Vega expression syntax). */
function exprString(s: string): string {
  return JSON.stringify(s);
}

/**
 * A log scale and axis fitted to `values` (non-positive and non-finite ones ignored): the domain
 * is the data range widened by `pad` (a factor) on each side, and the tick values are 1-2-5 per
 * decade when the range is short, every decade when longer, every other decade beyond 8.
 */
export function logScaleAxis(values: number[], pad = 1.15): { scale: Spec; axis: Spec } {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  if (pos.length === 0) return { scale: { type: 'log' }, axis: { format: '~g' } };
  const lo = Math.min(...pos) / pad;
  const hi = Math.max(...pos) * pad;
  const k0 = Math.floor(Math.log10(lo));
  const k1 = Math.ceil(Math.log10(hi));
  const decades = k1 - k0;
  const mantissas = decades <= 2 ? [1, 2, 5] : decades <= 4 ? [1, 3] : [1];
  const every = decades > 8 ? Math.ceil(decades / 6) : 1;
  const ticks: number[] = [];
  for (let k = k0; k <= k1; k++) {
    if ((k1 - k) % every !== 0) continue;
    for (const m of mantissas) {
      const v = Number((m * 10 ** k).toPrecision(3));
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return { scale: { type: 'log', domain: [lo, hi], nice: false }, axis: { values: ticks, format: '~g' } };
}

function checkLengths(what: string, name: string, ref: number, arrays: Record<string, number[] | undefined>): void {
  for (const [k, a] of Object.entries(arrays)) {
    if (a !== undefined && a.length !== ref) {
      throw new Error(`${what}: series '${name}' has ${ref} x values but ${a.length} ${k} values`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Curves (loss, accuracy, distance against epoch)

export interface CurveSeries {
  label: string;
  x: number[];
  mean: number[];
  /** Lower edge of the shaded band (e.g. mean - sd over seeds). */
  lo?: number[];
  /** Upper edge of the shaded band. */
  hi?: number[];
}

export interface CurvesOptions {
  series: CurveSeries[];
  xTitle: string;
  yTitle: string;
  yScale?: AxisScale;
  yDomain?: [number, number];
  title?: string;
}

interface CurveRow {
  series: string;
  x: number | null;
  mean: number | null;
  lo: number | null;
  hi: number | null;
}

function curveRows(what: string, series: CurveSeries[]): CurveRow[] {
  const rows: CurveRow[] = [];
  for (const s of series) {
    checkLengths(what, s.label, s.x.length, { mean: s.mean, lo: s.lo, hi: s.hi });
    for (let i = 0; i < s.x.length; i++) {
      rows.push({ series: s.label, x: num(s.x[i]), mean: num(s.mean[i]), lo: num(s.lo?.[i]), hi: num(s.hi?.[i]) });
    }
  }
  return rows;
}

/** The layers of one curves panel: a band per series (where lo/hi exist), then the lines. */
function curveLayers(opts: {
  rows: CurveRow[];
  domain: string[];
  xTitle: string;
  yTitle: string;
  yScale: AxisScale;
  yDomain?: [number, number];
  withBands: boolean;
}): Spec[] {
  let yScaleSpec: Spec = { type: 'linear', zero: false };
  let yAxis: Spec = {};
  if (opts.yScale === 'log') {
    const vals = opts.yDomain ?? opts.rows.flatMap((r) => [r.mean, r.lo, r.hi]).filter((v): v is number => v !== null);
    ({ scale: yScaleSpec, axis: yAxis } = logScaleAxis(vals, opts.yDomain ? 1 : 1.15));
  }
  if (opts.yDomain) yScaleSpec.domain = opts.yDomain;
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: colorScale(opts.domain),
    legend: { symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 },
  };
  const x = { field: 'x', type: 'quantitative', title: opts.xTitle, scale: { zero: false, nice: false } };
  const layers: Spec[] = [];
  if (opts.withBands) {
    const positive = opts.yScale === 'log' ? ' && datum.lo > 0' : '';
    layers.push({
      transform: [{ filter: `isValid(datum.lo) && isValid(datum.hi)${positive}` }],
      mark: { type: 'area', opacity: 0.18, clip: true },
      encoding: {
        x,
        y: { field: 'lo', type: 'quantitative', title: opts.yTitle, scale: yScaleSpec, axis: yAxis },
        y2: { field: 'hi' },
        color,
      },
    });
  }
  layers.push({
    mark: { type: 'line', clip: true, interpolate: 'linear' },
    encoding: {
      x,
      y: { field: 'mean', type: 'quantitative', title: opts.yTitle, scale: yScaleSpec, axis: yAxis },
      color,
    },
  });
  return layers;
}

/**
 * One line per series against x, with a shaded band from lo to hi where given (e.g. the spread
 * over seeds). For loss or accuracy against epoch, or distance from the initial weights.
 */
export function curvesFigure(opts: CurvesOptions): Spec {
  const rows = curveRows('curvesFigure', opts.series);
  const domain = distinct(opts.series.map((s) => s.label));
  return topLevel(
    {
      width: FIGURE_WIDTH,
      height: FIGURE_HEIGHT,
      data: { values: rows },
      layer: curveLayers({
        rows,
        domain,
        xTitle: opts.xTitle,
        yTitle: opts.yTitle,
        yScale: opts.yScale ?? 'linear',
        yDomain: opts.yDomain,
        withBands: opts.series.some((s) => s.lo !== undefined && s.hi !== undefined),
      }),
    },
    opts.title,
  );
}

export interface CurvesPanel {
  title: string;
  yTitle: string;
  series: CurveSeries[];
  yScale?: AxisScale;
  yDomain?: [number, number];
}

export interface FacetCurvesOptions {
  panels: CurvesPanel[];
  xTitle: string;
  /** Panels per row (default 2). */
  columns?: number;
  title?: string;
}

/**
 * Small multiples of `curvesFigure`: one panel per entry (e.g. train loss, test loss, train
 * accuracy, test accuracy), in a grid of `columns` columns, one shared colour legend.
 */
export function facetCurvesFigure(opts: FacetCurvesOptions): Spec {
  if (opts.panels.length === 0) throw new Error('facetCurvesFigure: no panels');
  const columns = Math.max(1, Math.min(opts.columns ?? 2, opts.panels.length));
  const spacing = 28;
  // panels of a 2-column grid get ~300 px each: narrower ones crowd their tick labels
  const width = columns === 1 ? FIGURE_WIDTH : Math.max(220, Math.round((FIGURE_WIDTH + 70 - spacing * (columns - 1)) / columns));
  const height = columns === 1 ? FIGURE_HEIGHT : 200;
  const domain = distinct(opts.panels.flatMap((p) => p.series.map((s) => s.label)));
  const panels = opts.panels.map((p) => {
    const rows = curveRows(`facetCurvesFigure panel '${p.title}'`, p.series);
    return {
      title: { text: p.title, fontSize: 13, fontWeight: 600, anchor: 'start', frame: 'group' },
      width,
      height,
      data: { values: rows },
      layer: curveLayers({
        rows,
        domain,
        xTitle: opts.xTitle,
        yTitle: p.yTitle,
        yScale: p.yScale ?? 'linear',
        yDomain: p.yDomain,
        withBands: p.series.some((s) => s.lo !== undefined && s.hi !== undefined),
      }),
    };
  });
  return topLevel(
    {
      columns,
      concat: panels,
      spacing,
      resolve: { scale: { color: 'shared', y: 'independent', x: 'independent' } },
    },
    opts.title,
  );
}

// ---------------------------------------------------------------------------------------------
// Points with error bars and power-law fits (gradient norm against batch size)

export interface ErrorBarPoint {
  x: number;
  y: number;
  /** Half-length of the error bar (drawn from y - err to y + err). */
  err?: number;
  group: string;
}

export interface PowerLawFit {
  /** The points' group the fit belongs to (it takes that group's colour). */
  group: string;
  coefficient: number;
  exponent: number;
  /** Shown in the legend beside the group, e.g. 'slope 0.49 [0.46, 0.52]'. */
  label: string;
  /** Range to draw the fit over; defaults to the group's x range. */
  xMin?: number;
  xMax?: number;
}

export interface PointsOptions {
  points: ErrorBarPoint[];
  xTitle: string;
  yTitle: string;
  xScale?: AxisScale;
  yScale?: AxisScale;
  /** Power laws y = coefficient * x^exponent, drawn as lines sampled over the x range. */
  fits?: PowerLawFit[];
  /**
   * Tick values of a log x axis. Default: the powers of two in the range when every x is an
   * integer (batch sizes), else 1-2-5 or decade ticks.
   */
  xTicks?: number[];
  title?: string;
}

/** `n` samples from a to b, evenly spaced in log space when `log` (a, b > 0), else linearly. */
function sampleRange(a: number, b: number, n: number, log: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = n === 1 ? 0 : i / (n - 1);
    out.push(log ? Math.exp(Math.log(a) + t * (Math.log(b) - Math.log(a))) : a + t * (b - a));
  }
  return out;
}

/**
 * Points with +-err bars per group, optionally on log axes (the default), with power-law fits
 * drawn in the group's colour (a group's first fit dashed, its second dotted, its third
 * dash-dot); each fit's label is added to its group's legend entry, naming its dash style. On a log
 * y axis a bar whose lower end would reach zero or below is drawn down to the plot's floor.
 */
export function pointsWithErrorBars(opts: PointsOptions): Spec {
  const xLog = (opts.xScale ?? 'log') === 'log';
  const yLog = (opts.yScale ?? 'log') === 'log';
  const fits = opts.fits ?? [];
  const groups = distinct([...opts.points.map((p) => p.group), ...fits.map((f) => f.group)]);
  const rows: Spec[] = opts.points.map((p) => {
    const err = p.err !== undefined && Number.isFinite(p.err) ? Math.abs(p.err) : undefined;
    let lo = err === undefined ? null : p.y - err;
    if (lo !== null && yLog && lo <= 0) lo = null; // drawn to the floor (see the rule layer)
    return { kind: 'point', group: p.group, x: num(p.x), y: num(p.y), lo, hi: err === undefined ? null : num(p.y + err), fit: null };
  });
  const usableX = (p: ErrorBarPoint) => Number.isFinite(p.x) && (!xLog || p.x > 0);
  // The k-th fit of a group is drawn with the k-th dash style, named in the legend.
  const dashes: { name: string; pattern: number[] }[] = [
    { name: 'dashed', pattern: [6, 4] },
    { name: 'dotted', pattern: [1.5, 3] },
    { name: 'dash-dot', pattern: [8, 3, 2, 3] },
  ];
  const fitLabels = new Map<string, string[]>();
  fits.forEach((f) => {
    const own = opts.points.filter((p) => p.group === f.group && usableX(p)).map((p) => p.x);
    const src = own.length > 0 ? own : opts.points.filter(usableX).map((p) => p.x);
    const a = f.xMin ?? Math.min(...src);
    const b = f.xMax ?? Math.max(...src);
    if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`pointsWithErrorBars: no x range for fit '${f.label}'`);
    const labels = fitLabels.get(f.group) ?? [];
    const dash = dashes[labels.length % dashes.length]!;
    for (const x of sampleRange(a, b, FIT_SAMPLES, xLog)) {
      rows.push({ kind: 'fit', group: f.group, x, y: num(f.coefficient * Math.pow(x, f.exponent)), lo: null, hi: null, fit: dash.name });
    }
    labels.push(fits.filter((g) => g.group === f.group).length > 1 ? `${dash.name}: ${f.label}` : f.label);
    fitLabels.set(f.group, labels);
  });
  // Legend text per group: the group's name, then one line per fit (a multi-line label).
  const labelMap = groups.map((g) => {
    const lines = [g, ...(fitLabels.get(g) ?? []).map((l) => `   fit ${l}`)];
    return `${exprString(g)}: [${lines.map(exprString).join(', ')}]`;
  });
  const legend: Spec = {
    title: null,
    orient: 'bottom',
    direction: 'vertical',
    labelLimit: FIGURE_WIDTH,
    labelBaseline: 'top',
    labelOffset: 6,
    symbolOffset: 0,
    rowPadding: 6,
    labelExpr: `({${labelMap.join(', ')}})[datum.label] || datum.label`,
  };
  const color = { field: 'group', type: 'nominal', title: null, scale: colorScale(groups), legend };
  const xs = opts.points.map((p) => p.x);
  const ys = rows.flatMap((r) => [r.y, r.lo, r.hi]).filter((v): v is number => typeof v === 'number');
  const xLogAxis = logScaleAxis(xs, 1.25);
  const finiteXs = xs.filter((v) => Number.isFinite(v) && v > 0);
  if (opts.xTicks) {
    xLogAxis.axis = { values: opts.xTicks, format: '~g' };
  } else if (finiteXs.length > 0 && finiteXs.every((v) => Number.isInteger(v))) {
    // integer x on a log axis (batch sizes): ticks at the powers of two in the range
    const p0 = Math.ceil(Math.log2(Math.min(...finiteXs)));
    const p1 = Math.floor(Math.log2(Math.max(...finiteXs)));
    const every = Math.max(1, Math.ceil((p1 - p0 + 1) / 12));
    const values: number[] = [];
    for (let p = p0; p <= p1; p += every) values.push(2 ** p);
    xLogAxis.axis = { values, format: 'd' };
  }
  const yLogAxis = logScaleAxis(ys, 1.15);
  const xEnc = {
    field: 'x',
    type: 'quantitative',
    title: opts.xTitle,
    scale: xLog ? xLogAxis.scale : { type: 'linear', zero: false, nice: false, padding: 12 },
    axis: xLog ? xLogAxis.axis : {},
  };
  const yScaleSpec = yLog ? yLogAxis.scale : { type: 'linear', zero: false };
  const yAxis = yLog ? yLogAxis.axis : {};
  const layers: Spec[] = [];
  if (rows.some((r) => r.kind === 'point' && r.hi !== null)) {
    layers.push({
      transform: [{ filter: "datum.kind === 'point' && isValid(datum.hi)" }],
      mark: { type: 'rule', strokeWidth: 1.5, clip: true },
      encoding: {
        x: xEnc,
        // a missing lower end (log axis, y - err <= 0) is drawn to the bottom of the plot
        y: { field: 'lo', type: 'quantitative', title: opts.yTitle, scale: yScaleSpec, axis: yAxis },
        y2: { field: 'hi' },
        color,
      },
    });
  }
  if (fits.length > 0) {
    layers.push({
      transform: [{ filter: "datum.kind === 'fit'" }],
      mark: { type: 'line', strokeWidth: 1.6, clip: true, opacity: 0.9 },
      encoding: {
        x: xEnc,
        y: { field: 'y', type: 'quantitative', title: opts.yTitle, scale: yScaleSpec, axis: yAxis },
        color,
        detail: { field: 'fit', type: 'nominal' },
        strokeDash: { field: 'fit', type: 'nominal', legend: null, scale: { domain: dashes.map((d) => d.name), range: dashes.map((d) => d.pattern) } },
      },
    });
  }
  layers.push({
    transform: [{ filter: "datum.kind === 'point'" }],
    mark: { type: 'point', filled: true, size: 55, opacity: 1, clip: true },
    encoding: {
      x: xEnc,
      y: { field: 'y', type: 'quantitative', title: opts.yTitle, scale: yScaleSpec, axis: yAxis },
      color,
      shape: { field: 'group', type: 'nominal', title: null, scale: { domain: groups }, legend },
    },
  });
  return topLevel({ width: FIGURE_WIDTH, height: FIGURE_HEIGHT, data: { values: rows }, layer: layers }, opts.title);
}

// ---------------------------------------------------------------------------------------------
// Measured points beside model curves (a prediction against the data, steps against batch size)

export interface MeasuredPoint {
  x: number;
  y: number;
  /** An interval drawn as a bar from lo to hi (e.g. a 95% interval or a bracket). */
  lo?: number;
  hi?: number;
  /** The series: its colour and legend entry. */
  group: string;
}

export interface ModelLine {
  /** The legend entry; a line may share a group's name to take its colour. */
  label: string;
  x: number[];
  y: number[];
  /** Dashed (a reference or a prediction) rather than solid. */
  dashed?: boolean;
}

export interface MarkerRule {
  /** A vertical line at this x, labelled at the top of the plot. */
  x: number;
  label: string;
}

export interface PointsLinesOptions {
  points: MeasuredPoint[];
  lines?: ModelLine[];
  rules?: MarkerRule[];
  xTitle: string;
  yTitle: string;
  xScale?: AxisScale;
  yScale?: AxisScale;
  title?: string;
}

/**
 * Points (with interval bars where given) and lines (solid or dashed) on shared axes, log by
 * default, one colour per series, plus labelled vertical marker lines (e.g. B_simple). On a log
 * x axis of integers (batch sizes) the ticks are the powers of two.
 */
export function pointsLinesFigure(opts: PointsLinesOptions): Spec {
  const xLog = (opts.xScale ?? 'log') === 'log';
  const yLog = (opts.yScale ?? 'log') === 'log';
  const lines = opts.lines ?? [];
  const rules = (opts.rules ?? []).filter((r) => Number.isFinite(r.x) && (!xLog || r.x > 0));
  const series = distinct([...opts.points.map((p) => p.group), ...lines.map((l) => l.label)]);
  const okY = (v: number | undefined) => v !== undefined && Number.isFinite(v) && (!yLog || v > 0);
  const rows: Spec[] = opts.points.map((p) => ({
    kind: 'point',
    series: p.group,
    x: num(p.x),
    y: num(p.y),
    lo: okY(p.lo) ? p.lo : null,
    hi: okY(p.hi) ? p.hi : null,
    dash: 'solid',
  }));
  for (const l of lines) {
    checkLengths('pointsLinesFigure', l.label, l.x.length, { y: l.y });
    l.x.forEach((x, i) => rows.push({ kind: 'line', series: l.label, x: num(x), y: okY(l.y[i]) ? l.y[i] : null, lo: null, hi: null, dash: l.dashed ? 'dashed' : 'solid' }));
  }
  // rule labels stacked from the top, so that close rules do not overprint
  rules.forEach((r, i) => rows.push({ kind: 'rule', series: r.label, x: r.x, y: null, lo: null, hi: null, dash: 'solid', ry: 4 + 15 * i }));
  const xs = rows.map((r) => r.x as number | null).filter((v): v is number => v !== null);
  const ys = rows.flatMap((r) => [r.y, r.lo, r.hi] as (number | null)[]).filter((v): v is number => v !== null);
  const xAxis = logScaleAxis(xs, 1.25);
  const ints = xs.filter((v) => v > 0);
  if (xLog && ints.length > 0 && opts.points.every((p) => Number.isInteger(p.x))) {
    const p0 = Math.ceil(Math.log2(Math.min(...ints)));
    const p1 = Math.floor(Math.log2(Math.max(...ints)));
    const every = Math.max(1, Math.ceil((p1 - p0 + 1) / 12));
    const values: number[] = [];
    for (let p = p0; p <= p1; p += every) values.push(2 ** p);
    xAxis.axis = { values, format: 'd' };
  }
  const yAxis = logScaleAxis(ys, 1.15);
  const x = {
    field: 'x',
    type: 'quantitative',
    title: opts.xTitle,
    scale: xLog ? xAxis.scale : { type: 'linear', zero: false, nice: false, padding: 12 },
    axis: xLog ? xAxis.axis : {},
  };
  const y = { field: 'y', type: 'quantitative', title: opts.yTitle, scale: yLog ? yAxis.scale : { type: 'linear', zero: false }, axis: yLog ? yAxis.axis : {} };
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: colorScale(series),
    legend: { orient: 'bottom', direction: 'vertical', labelLimit: FIGURE_WIDTH, symbolType: 'circle' },
  };
  const layers: Spec[] = [];
  if (rows.some((r) => r.kind === 'point' && r.lo !== null && r.hi !== null)) {
    layers.push({
      transform: [{ filter: "datum.kind === 'point' && isValid(datum.lo) && isValid(datum.hi)" }],
      mark: { type: 'rule', strokeWidth: 1.5, clip: true },
      encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
    });
  }
  if (lines.length > 0) {
    layers.push({
      transform: [{ filter: "datum.kind === 'line' && isValid(datum.y)" }],
      mark: { type: 'line', strokeWidth: 2, clip: true },
      encoding: {
        x,
        y,
        color,
        detail: { field: 'series', type: 'nominal' },
        strokeDash: { field: 'dash', type: 'nominal', legend: null, scale: { domain: ['solid', 'dashed'], range: [[1, 0], [6, 4]] } },
      },
    });
  }
  // a shape per series as well, so that points of two series at the same place both show
  layers.push({
    transform: [{ filter: "datum.kind === 'point'" }],
    mark: { type: 'point', filled: true, size: 60, opacity: 0.85, clip: true },
    encoding: { x, y, color, shape: { field: 'series', type: 'nominal', title: null, scale: { domain: series }, legend: color.legend } },
  });
  if (rules.length > 0) {
    layers.push({
      transform: [{ filter: "datum.kind === 'rule'" }],
      mark: { type: 'rule', color: '#555', strokeDash: [3, 3], strokeWidth: 1.2 },
      encoding: { x },
    });
    layers.push({
      transform: [{ filter: "datum.kind === 'rule'" }],
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, fontSize: 11, color: '#333' },
      encoding: { x, y: { field: 'ry', type: 'quantitative', scale: null }, text: { field: 'series' } },
    });
  }
  return topLevel({ width: FIGURE_WIDTH, height: FIGURE_HEIGHT, data: { values: rows }, layer: layers }, opts.title);
}

// ---------------------------------------------------------------------------------------------
// Ridgelines (per-trial norm histograms, one row per batch size)

export interface HistogramRow {
  label: string;
  /** Bin edges, length counts.length + 1, increasing. */
  edges: number[];
  counts: number[];
}

export interface RidgelineOptions {
  rows: HistogramRow[];
  xTitle: string;
  xScale?: AxisScale;
  /** Title of the row axis (default: none). */
  rowTitle?: string;
  title?: string;
}

function checkHistogram(what: string, h: HistogramRow): void {
  if (h.edges.length !== h.counts.length + 1) {
    throw new Error(`${what}: '${h.label}' has ${h.counts.length} counts but ${h.edges.length} edges (need counts + 1)`);
  }
  for (let i = 1; i < h.edges.length; i++) {
    if (!(h.edges[i]! > h.edges[i - 1]!)) throw new Error(`${what}: '${h.label}' edges are not increasing at index ${i}`);
  }
}

/**
 * Stacked density ridgelines, one row per entry (first entry at the top), on a shared x axis.
 * Each row is a density (count per unit of x, or per unit of log x on a log axis) scaled so its
 * peak has the same height, so rows with few and many samples compare by shape.
 */
export function ridgelineFigure(opts: RidgelineOptions): Spec {
  const xLog = (opts.xScale ?? 'linear') === 'log';
  const n = opts.rows.length;
  if (n === 0) throw new Error('ridgelineFigure: no rows');
  const overlap = 1.5; // a row's peak reaches this many row spacings above its baseline
  const rows: Spec[] = [];
  opts.rows.forEach((r, i) => {
    checkHistogram('ridgelineFigure', r);
    if (xLog && r.edges[0]! <= 0) throw new Error(`ridgelineFigure: '${r.label}' has edges <= 0 on a log x axis`);
    const density = r.counts.map((c, k) => {
      const a = r.edges[k]!;
      const b = r.edges[k + 1]!;
      return c / (xLog ? Math.log(b / a) : b - a);
    });
    const peak = Math.max(...density.filter(Number.isFinite), 0);
    const base = n - 1 - i;
    r.counts.forEach((c, k) => {
      const a = r.edges[k]!;
      const b = r.edges[k + 1]!;
      const h = peak > 0 ? density[k]! / peak : 0;
      rows.push({ row: r.label, order: i, x: xLog ? Math.sqrt(a * b) : (a + b) / 2, count: c, base, top: base + overlap * h * 0.9 });
    });
  });
  const labels = opts.rows.map((r) => r.label);
  const domain = distinct(labels);
  const labelMap = labels.map((l, i) => `${n - 1 - i}: ${exprString(l)}`).join(', ');
  const rowHeight = Math.max(22, Math.min(40, Math.round(420 / n)));
  const allEdges = opts.rows.flatMap((r) => [r.edges[0]!, r.edges[r.edges.length - 1]!]);
  const lin = { scale: { type: 'linear', zero: false, nice: false, domain: [Math.min(...allEdges), Math.max(...allEdges)] }, axis: {} };
  const { scale: xScale, axis: xAxis } = xLog ? logScaleAxis(allEdges, 1) : lin;
  return topLevel(
    {
      width: FIGURE_WIDTH,
      height: rowHeight * (n - 1 + overlap) + 4,
      data: { values: rows },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: opts.xTitle, scale: xScale, axis: { ...xAxis, grid: true } },
        y: {
          field: 'base',
          type: 'quantitative',
          title: opts.rowTitle ?? null,
          scale: { domain: [0, n - 1 + overlap], nice: false, zero: true },
          axis: { values: labels.map((_, i) => i), labelExpr: `({${labelMap}})[datum.value]`, grid: false, ticks: false, domain: false, labelPadding: 6 },
        },
        y2: { field: 'top' },
        color: { field: 'row', type: 'nominal', scale: colorScale(domain), legend: null },
        detail: { field: 'row', type: 'nominal' },
      },
      mark: { type: 'area', interpolate: 'monotone', fillOpacity: 0.72, stroke: 'white', strokeWidth: 1.2, clip: true },
    },
    opts.title,
  );
}

// ---------------------------------------------------------------------------------------------
// Histograms of raw values (gradient entries), possibly on a signed-log x axis

export interface HistogramOptions {
  groups: HistogramRow[];
  xTitle: string;
  yScale: AxisScale;
  /** 'symlog' for signed-log spaced edges that straddle zero. Default 'linear'. */
  xScale?: AxisScale | 'symlog';
  /** The symlog scale's linear region half-width; default: the smallest non-zero |edge|. */
  symlogConstant?: number;
  /** A shaded x range with a label, e.g. the tail bin the study compares. */
  highlight?: { from: number; to: number; label: string };
  yTitle?: string;
  title?: string;
}

/**
 * Tick values for a symlog axis with constant c: 0 and +-10^k for the decades in the range,
 * at most 4 a side, leaving out decades so close to 0 that their labels would collide with it.
 */
function symlogTicks(c: number, min: number, max: number): number[] {
  const top = Math.max(Math.abs(min), Math.abs(max));
  if (!(top > 0)) return [0];
  const f = (x: number) => Math.log1p(Math.abs(x) / c);
  const k1 = Math.floor(Math.log10(top));
  let ks: number[] = [];
  // a decade whose position is under 8% of the half-axis from 0 is too close to the '0' label
  for (let k = k1; k >= k1 - 40 && f(10 ** k) >= 0.08 * f(top); k--) ks.push(k);
  const step = Math.max(1, Math.ceil(ks.length / 4));
  ks = ks.filter((_, i) => i % step === 0);
  const ticks = [0];
  for (const k of ks) {
    if (max >= 10 ** k) ticks.push(10 ** k);
    if (min <= -(10 ** k)) ticks.push(-(10 ** k));
  }
  return ticks.sort((x, y) => x - y);
}

/**
 * Histograms of several groups overlaid as step outlines, one colour per group. On a log count
 * axis empty bins are left out (gaps in the outline). An optional highlight shades an x range
 * and labels it above the plot.
 */
export function histogramFigure(opts: HistogramOptions): Spec {
  const xType = opts.xScale ?? 'linear';
  const yLog = opts.yScale === 'log';
  if (opts.groups.length === 0) throw new Error('histogramFigure: no groups');
  const rows: Spec[] = [];
  let minEdge = Infinity;
  let maxEdge = -Infinity;
  let minAbs = Infinity;
  for (const g of opts.groups) {
    checkHistogram('histogramFigure', g);
    for (const e of g.edges) {
      minEdge = Math.min(minEdge, e);
      maxEdge = Math.max(maxEdge, e);
      if (e !== 0) minAbs = Math.min(minAbs, Math.abs(e));
    }
    g.counts.forEach((c, k) => rows.push({ kind: 'bin', group: g.label, k, x0: g.edges[k]!, x1: g.edges[k + 1]!, count: num(c) }));
  }
  if (xType === 'log' && minEdge <= 0) throw new Error('histogramFigure: edges <= 0 on a log x axis (use xScale symlog)');
  const c = opts.symlogConstant ?? (Number.isFinite(minAbs) ? minAbs : 1);
  const xScale: Spec = { type: xType, nice: false, domain: [minEdge, maxEdge] };
  let xAxis: Spec = { format: '~g' };
  if (xType === 'linear') xScale.zero = false;
  if (xType === 'log') xAxis = logScaleAxis([minEdge, maxEdge], 1).axis;
  if (xType === 'symlog') {
    xScale.constant = c;
    xAxis = {
      values: symlogTicks(c, minEdge, maxEdge),
      format: '.0e',
      labelExpr: "datum.value === 0 ? '0' : replace(replace(datum.label, 'e-0', 'e-'), 'e+0', 'e')",
    };
  }
  const domain = distinct(opts.groups.map((g) => g.label));
  const color = { field: 'group', type: 'nominal', title: null, scale: colorScale(domain), legend: { symbolType: 'stroke', symbolStrokeWidth: 3 } };
  const yTitle = opts.yTitle ?? (yLog ? 'count (log scale)' : 'count');
  const counts = rows.map((r) => r.count as number | null).filter((v): v is number => v !== null);
  // a log count axis starts below 1 so that bins holding a single value stay visible
  const yLogFit = logScaleAxis([...counts.filter((v) => v > 0), 1], 1.3);
  const yScaleSpec: Spec = yLog ? yLogFit.scale : { type: 'linear', zero: true };
  const yAxis: Spec = yLog ? yLogFit.axis : {};
  const layers: Spec[] = [];
  if (opts.highlight) {
    const h = opts.highlight;
    rows.push({ kind: 'highlight', group: null, k: null, x0: h.from, x1: h.to, count: null, label: h.label, xm: midpoint(h.from, h.to, xType, c) });
    layers.push({
      transform: [{ filter: "datum.kind === 'highlight'" }],
      mark: { type: 'rect', fill: '#f6d55c', opacity: 0.4, clip: true },
      encoding: { x: { field: 'x0', type: 'quantitative', title: opts.xTitle, scale: xScale, axis: xAxis }, x2: { field: 'x1' }, y: { value: 0 }, y2: { value: 'height' } },
    });
    layers.push({
      transform: [{ filter: "datum.kind === 'highlight'" }],
      mark: { type: 'text', fontSize: 12, fontWeight: 600, color: '#7a5b00', baseline: 'bottom', dy: -4, align: 'center' },
      encoding: { x: { field: 'xm', type: 'quantitative', scale: xScale }, y: { value: 0 }, text: { field: 'label' } },
    });
  }
  // Each bin becomes two points, (x0, count) and (x1, count), joined in bin order: a step outline.
  // Empty bins on a log axis become gaps.
  layers.push({
    transform: [
      { filter: "datum.kind === 'bin'" },
      { calculate: yLog ? 'datum.count > 0 ? datum.count : null' : 'datum.count', as: 'c' },
      { fold: ['x0', 'x1'], as: ['edge', 'xe'] },
      { calculate: "2 * datum.k + (datum.edge === 'x1' ? 1 : 0)", as: 'pos' },
    ],
    mark: { type: 'line', strokeWidth: 1.8, interpolate: 'linear', clip: true },
    encoding: {
      x: { field: 'xe', type: 'quantitative', title: opts.xTitle, scale: xScale, axis: xAxis },
      y: { field: 'c', type: 'quantitative', title: yTitle, scale: yScaleSpec, axis: yAxis },
      color,
      order: { field: 'pos', type: 'quantitative' },
    },
  });
  return topLevel({ width: FIGURE_WIDTH, height: FIGURE_HEIGHT, data: { values: rows }, layer: layers }, opts.title);
}

/** The point halfway between a and b in the scale's own coordinates (log, symlog or linear). */
function midpoint(a: number, b: number, type: AxisScale | 'symlog', c: number): number {
  if (type === 'log' && a > 0 && b > 0) return Math.sqrt(a * b);
  if (type === 'symlog') {
    const f = (x: number) => Math.sign(x) * Math.log1p(Math.abs(x) / c);
    const g = (y: number) => Math.sign(y) * Math.expm1(Math.abs(y)) * c;
    return g((f(a) + f(b)) / 2);
  }
  return (a + b) / 2;
}

// ---------------------------------------------------------------------------------------------
// Bars (cosines per layer, norms)

export interface Bar {
  label: string;
  value: number;
  err?: number;
  group?: string;
}

export interface BarOptions {
  bars: Bar[];
  yTitle: string;
  xTitle?: string;
  yDomain?: [number, number];
  title?: string;
}

/**
 * Bars per label, grouped side by side by `group` (one colour each), with +-err bars where given.
 */
export function barFigure(opts: BarOptions): Spec {
  const rows = opts.bars.map((b) => {
    const err = b.err !== undefined && Number.isFinite(b.err) ? Math.abs(b.err) : undefined;
    return {
      label: b.label,
      group: b.group ?? '',
      value: num(b.value),
      lo: err === undefined ? null : num(b.value - err),
      hi: err === undefined ? null : num(b.value + err),
    };
  });
  const labels = distinct(rows.map((r) => r.label));
  const groups = distinct(rows.map((r) => r.group));
  const grouped = groups.length > 1 || groups[0] !== '';
  const yScale: Spec = { zero: true };
  if (opts.yDomain) yScale.domain = opts.yDomain;
  const maxLabel = Math.max(...labels.map((l) => l.length));
  const x = {
    field: 'label',
    type: 'nominal',
    title: opts.xTitle ?? null,
    sort: labels,
    scale: { paddingInner: 0.25 },
    axis: { labelAngle: maxLabel * labels.length > 70 ? -30 : 0, labelLimit: 160 },
  };
  const xOffset = grouped ? { xOffset: { field: 'group', type: 'nominal', sort: groups, scale: { paddingInner: 0.08 } } } : {};
  const color = grouped
    ? { field: 'group', type: 'nominal', title: null, scale: colorScale(groups) }
    : { value: PALETTE[0] };
  const layers: Spec[] = [
    {
      mark: { type: 'bar', clip: true },
      encoding: { x, ...xOffset, y: { field: 'value', type: 'quantitative', title: opts.yTitle, scale: yScale }, color },
    },
  ];
  if (rows.some((r) => r.hi !== null)) {
    layers.push({
      transform: [{ filter: 'isValid(datum.lo) && isValid(datum.hi)' }],
      mark: { type: 'rule', color: '#222', strokeWidth: 1.5, clip: true },
      encoding: { x, ...xOffset, y: { field: 'lo', type: 'quantitative', title: opts.yTitle, scale: yScale }, y2: { field: 'hi' } },
    });
  }
  return topLevel({ width: FIGURE_WIDTH, height: FIGURE_HEIGHT, data: { values: rows }, layer: layers }, opts.title);
}

// ---------------------------------------------------------------------------------------------
// Heatmap (batch x lr grid of W, B, A)

export interface HeatCell {
  x: string;
  y: string;
  value: number;
  /** Text printed in the cell; default: the value to 3 significant digits. */
  text?: string;
}

export interface HeatmapOptions {
  cells: HeatCell[];
  xTitle: string;
  yTitle: string;
  /** Legend title for the colour scale, with its unit. */
  valueTitle: string;
  /** Vega colour scheme (default 'viridis'). */
  scheme?: string;
  title?: string;
}

/** Formats a number to 3 significant digits without trailing zeros. */
function short(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

/**
 * A grid of coloured cells with the value printed in each (text in white on dark cells, black on
 * light ones); rows and columns keep the order in which they first appear.
 */
export function heatmapFigure(opts: HeatmapOptions): Spec {
  const xs = distinct(opts.cells.map((c) => c.x));
  const ys = distinct(opts.cells.map((c) => c.y));
  const finite = opts.cells.map((c) => c.value).filter(Number.isFinite);
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 1;
  const mid = (lo + hi) / 2;
  const rows = opts.cells.map((c) => ({ x: c.x, y: c.y, value: num(c.value), text: c.text ?? (Number.isFinite(c.value) ? short(c.value) : 'n/a') }));
  const cellH = Math.max(28, Math.min(56, Math.round(320 / Math.max(1, ys.length))));
  const scheme = opts.scheme ?? 'viridis';
  // viridis-like schemes are dark at the low end; other schemes are light at the low end
  const darkLow = ['viridis', 'magma', 'inferno', 'plasma', 'cividis', 'turbo'].includes(scheme);
  const darkTest = darkLow ? `datum.value < ${mid}` : `datum.value > ${mid}`;
  const x = { field: 'x', type: 'ordinal', title: opts.xTitle, sort: xs, axis: { labelAngle: 0 } };
  const y = { field: 'y', type: 'ordinal', title: opts.yTitle, sort: ys };
  return topLevel(
    {
      width: FIGURE_WIDTH - 90,
      height: cellH * ys.length,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'rect', stroke: 'white', strokeWidth: 1.5 },
          encoding: {
            x,
            y,
            color: { field: 'value', type: 'quantitative', title: opts.valueTitle, scale: { scheme }, legend: { gradientLength: Math.max(120, cellH * ys.length - 20) } },
          },
        },
        {
          mark: { type: 'text', fontSize: 12, fontWeight: 600 },
          encoding: {
            x,
            y,
            text: { field: 'text' },
            color: { condition: { test: `isValid(datum.value) && ${darkTest}`, value: 'white' }, value: '#111' },
          },
        },
      ],
    },
    opts.title,
  );
}
