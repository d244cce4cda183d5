// Renders a figure's Vega-Lite specification to an SVG string in Node: compile with vega-lite,
// run a headless Vega view (renderer 'none', so no canvas or browser is needed) and serialise
// the scenegraph as SVG. Also counts what the view holds, so tests can check that the data
// given actually reached the figure.
// Reference: the Vega View API (vega.github.io/vega/docs/api/view).

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { FigureSpec } from '../findings/types.js';

export interface RenderedFigure {
  svg: string;
  /**
   * Rows of inline data the view ingested: for every dataset of the compiled specification that
   * carries inline values, the number of tuples Vega loaded into it, summed. Equals the number of
   * rows in the figure's `data.values` arrays (identical arrays count once).
   */
  dataPoints: number;
  /** Scenegraph items drawn for data (every item of every mark that is bound to a dataset). */
  markItems: number;
  /** Warnings from vega-lite and Vega (e.g. an encoding that names a missing field). */
  warnings: string[];
}

/** Collects log messages instead of printing them; errors are kept as warnings too. */
class CollectingLogger {
  readonly messages: string[] = [];
  private lvl = vega.Warn;
  level(): number;
  level(l: number): this;
  level(l?: number): number | this {
    if (l === undefined) return this.lvl;
    this.lvl = l;
    return this;
  }
  private add(args: readonly unknown[]): this {
    this.messages.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    return this;
  }
  error(...args: readonly unknown[]): this {
    return this.add(args);
  }
  warn(...args: readonly unknown[]): this {
    return this.lvl >= vega.Warn ? this.add(args) : this;
  }
  info(): this {
    return this;
  }
  debug(): this {
    return this;
  }
}

interface VegaDataDef {
  name: string;
  values?: unknown;
  source?: string | string[];
  transform?: unknown[];
  format?: unknown;
}

interface SceneNode {
  marktype?: string;
  items?: SceneNode[];
  datum?: unknown;
  role?: string;
}

/**
 * Moves inline values into a separate dataset with no transforms (named `<name>__input`), so the
 * number of tuples Vega loads can be read back exactly even when vega-lite attached filters or
 * parsing to the dataset that holds the values.
 */
function splitInlineData(spec: vega.Spec): { spec: vega.Spec; inputs: string[] } {
  const data = (spec.data ?? []) as unknown as VegaDataDef[];
  const out: VegaDataDef[] = [];
  const inputs: string[] = [];
  for (const d of data) {
    if (Array.isArray(d.values)) {
      const input = `${d.name}__input`;
      inputs.push(input);
      out.push({ name: input, values: d.values });
      const rest: VegaDataDef = { ...d, source: input };
      delete rest.values;
      out.push(rest);
    } else {
      out.push(d);
    }
  }
  return { spec: { ...spec, data: out as unknown as vega.Data[] }, inputs };
}

/** Items of the specification's own marks in the scenegraph (axes, legends and titles excluded). */
function countItems(node: SceneNode | undefined): number {
  if (!node) return 0;
  let n = 0;
  if (node.marktype !== undefined && node.marktype !== 'group' && node.role === 'mark') n += node.items?.length ?? 0;
  for (const child of node.items ?? []) n += countItems(child);
  return n;
}

function describe(name: string): string {
  return name === '' ? 'figure' : `figure '${name}'`;
}

/** Compiles, runs and serialises one Vega-Lite specification. `name` is used in error messages. */
export async function renderVegaLite(vegaLite: Record<string, unknown>, name = ''): Promise<RenderedFigure> {
  const logger = new CollectingLogger();
  let compiled: vega.Spec;
  try {
    // Vega tags the tuples it ingests, so it gets a copy: the caller's data stays untouched
    compiled = compile(structuredClone(vegaLite) as unknown as TopLevelSpec, { logger: logger as never }).spec as unknown as vega.Spec;
  } catch (e) {
    throw new Error(`${describe(name)}: invalid Vega-Lite specification: ${(e as Error).message}`, { cause: e });
  }
  const { spec, inputs } = splitInlineData(compiled);
  let view: vega.View;
  try {
    view = new vega.View(vega.parse(spec), { renderer: 'none', logger: logger as never, logLevel: vega.Warn });
    await view.runAsync();
  } catch (e) {
    throw new Error(`${describe(name)}: Vega could not build the figure: ${(e as Error).message}`, { cause: e });
  }
  try {
    const svg = await view.toSVG();
    let dataPoints = 0;
    for (const d of inputs) dataPoints += (view.data(d) as unknown[]).length;
    const markItems = countItems((view.scenegraph() as unknown as { root: SceneNode }).root);
    return { svg, dataPoints, markItems, warnings: logger.messages.slice() };
  } catch (e) {
    throw new Error(`${describe(name)}: rendering to SVG failed: ${(e as Error).message}`, { cause: e });
  } finally {
    view.finalize();
  }
}

/** Renders a Vega-Lite specification to an SVG string; throws an error naming the figure if invalid. */
export async function renderSvg(vegaLite: Record<string, unknown>, name = ''): Promise<string> {
  return (await renderVegaLite(vegaLite, name)).svg;
}

/** Renders a finding's figure: its SVG and how many data rows the view ingested. */
export async function renderFigure(fig: FigureSpec): Promise<RenderedFigure> {
  return renderVegaLite(fig.vegaLite, fig.id);
}

/**
 * Prefixes every id defined in an SVG (clip paths, gradients) and every reference to it, so that
 * several SVGs inlined in one HTML page do not resolve each other's `url(#clip1)`.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!));
  if (ids.size === 0) return svg;
  const p = prefix.replace(/[^A-Za-z0-9_-]/g, '-');
  return svg
    .replace(/\bid="([^"]+)"/g, (all, id: string) => (ids.has(id) ? `id="${p}-${id}"` : all))
    .replace(/url\(#([^)]+)\)/g, (all, id: string) => (ids.has(id) ? `url(#${p}-${id})` : all))
    .replace(/href="#([^"]+)"/g, (all, id: string) => (ids.has(id) ? `href="#${p}-${id}"` : all));
}

/** Counts drawn shape elements (path, rect, circle, line) in an SVG string; a rough check for tests. */
export function countMarks(svg: string): number {
  return (svg.match(/<(path|rect|circle|line)\b/g) ?? []).length;
}
