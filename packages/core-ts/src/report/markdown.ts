// The Markdown summary of a report (GitHub-flavoured tables): the profile, the verdict table and
// each finding's measured numbers beside the study's, then the citation. Also holds the number
// formatting shared with the HTML report, so both print the same digits.

import type { FindingResult, Measurement, Verdict } from '../findings/types.js';
import type { ReportInput } from './html.js';

/** What the report says before the findings beyond the study (F13 on). */
export const BEYOND_INTRO =
  "These findings go past the study: they answer the questions it left open (what law links batch size to the size and the spread of a step, and why), measure the critical batch size directly and test its advice on Adam. Each states a claim of bsx's own; its verdict says whether the claim holds on bsx's data (reproduced: it holds; partly; not reproduced: it does not), by a rule written next to the finding.";

/** The verdicts in the order the report counts them. */
export const VERDICTS: readonly Verdict[] = ['reproduced', 'partly', 'not reproduced'];

/**
 * A number for people: 4 significant digits (trailing zeros dropped), scientific notation below
 * 1e-3 or from 1e5 on; 'n/a' for NaN (e.g. a diverged run) and +-inf spelled out.
 */
export function formatNumber(v: number, digits = 4): string {
  if (Number.isNaN(v)) return 'n/a';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) {
    const [m, e] = v.toExponential(digits - 1).split('e');
    return `${String(Number(m))}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(digits)));
}

function withUnit(text: string, unit: string | undefined): string {
  if (unit === undefined || unit === '' || text === 'n/a') return text;
  return unit === '%' ? `${text}%` : `${text} ${unit}`;
}

/** A fraction in [0, 1] (an accuracy) as a percentage with two decimals: 0.9802 -> '98.02'. */
function percent(v: number): string {
  return Number.isFinite(v) ? (100 * v).toFixed(2) : formatNumber(v);
}

/**
 * The measured value, with its spread over seeds and its unit: '97.9 ± 0.12%'. A value with
 * unit 'fraction' (an accuracy in [0, 1]) reads as a percentage: '98.02 ± 0.05%'.
 */
export function formatMeasured(m: Measurement): string {
  if (m.unit === 'fraction') {
    const sd = m.spread !== undefined && Number.isFinite(m.spread) && Number.isFinite(m.value) ? ` ± ${percent(m.spread)}` : '';
    return Number.isFinite(m.value) ? `${percent(m.value)}${sd}%` : formatNumber(m.value);
  }
  const core =
    m.spread !== undefined && Number.isFinite(m.spread) && Number.isFinite(m.value)
      ? `${formatNumber(m.value)} ± ${formatNumber(m.spread, 2)}`
      : formatNumber(m.value);
  return withUnit(core, m.unit);
}

/** The measured value, with its seed count where it differs from the one the table header names. */
export function formatMeasuredIn(m: Measurement, seedsPerRun: number): string {
  const n = m.seeds;
  return formatMeasured(m) + (n !== undefined && n !== seedsPerRun ? ` (${n} seed${n === 1 ? '' : 's'})` : '');
}

/** The study's value with the unit, or an em dash when the study gives none (a fraction as a percentage: '98%'). */
export function formatStudy(m: Measurement): string {
  if (m.seed === undefined) return '—';
  return m.unit === 'fraction' ? `${formatNumber(100 * m.seed)}%` : withUnit(formatNumber(m.seed), m.unit);
}

/**
 * The few numbers the verdict table shows for a finding: those it marks as key, or else those
 * the study also reports (first three), or else the first two measured.
 */
export function keyMeasurements(f: FindingResult, max = 3): Measurement[] {
  const marked = f.measured.filter((m) => m.key);
  if (marked.length > 0) return marked.slice(0, max);
  const withSeed = f.measured.filter((m) => m.seed !== undefined);
  return (withSeed.length > 0 ? withSeed : f.measured).slice(0, withSeed.length > 0 ? max : 2);
}

/** How many findings got each verdict. */
export function verdictCounts(findings: FindingResult[]): Record<Verdict, number> {
  const c: Record<Verdict, number> = { reproduced: 0, partly: 0, 'not reproduced': 0 };
  for (const f of findings) c[f.verdict] = (c[f.verdict] ?? 0) + 1;
  return c;
}

/**
 * Escapes text for Markdown: backslash before the characters that would start emphasis, code,
 * links, HTML tags or break a table cell; newlines become spaces.
 */
export function mdEscape(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/[\\`*_[\]<>|]/g, (ch) => `\\${ch}`);
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function keyNumbersMd(f: FindingResult): string {
  const ms = keyMeasurements(f);
  if (ms.length === 0) return '—';
  return ms
    .map((m) => `${mdEscape(m.label)}: ${mdEscape(formatMeasured(m))}${m.seed !== undefined ? ` (study ${mdEscape(formatStudy(m))})` : ''}`)
    .join('; ');
}

function verdictMd(v: Verdict): string {
  return v === 'reproduced' ? '✅ reproduced' : v === 'partly' ? '🟡 partly' : '❌ not reproduced';
}

/** The Markdown summary: profile, machine, verdict table, measured vs study per finding, citation. */
export function buildMarkdownSummary(input: ReportInput): string {
  const out: string[] = [];
  const m = input.machine;
  out.push(`# ${mdEscape(input.title)}`, '');
  out.push(`**Profile:** \`${input.profile}\` — ${mdEscape(input.profileNote)}`, '');
  const machine = [`${mdEscape(m.cpu)} (${m.threads} threads)`, `backend ${mdEscape(m.backend)}`];
  if (m.gpu) machine.push(`GPU ${mdEscape(m.gpu)}`);
  out.push(`**Generated:** ${mdEscape(input.createdAt)} on ${machine.join(', ')}. **Seeds per run:** ${input.seedsPerRun}.`, '');
  const c = verdictCounts(input.findings);
  out.push('## Verdicts', '');
  out.push(`${c.reproduced} reproduced, ${c.partly} partly, ${c['not reproduced']} not reproduced (of ${input.findings.length}).`, '');
  const study = input.findings.filter((f) => !f.beyond);
  const beyond = input.findings.filter((f) => f.beyond);
  const table = (fs: FindingResult[]) => {
    out.push(row(['id', 'finding', 'verdict', 'key numbers (bsx vs study)']));
    out.push(row(['---', '---', '---', '---']));
    for (const f of fs) out.push(row([mdEscape(f.id), mdEscape(f.title), verdictMd(f.verdict), keyNumbersMd(f)]));
    out.push('');
  };
  if (study.length > 0) table(study);
  if (beyond.length > 0) {
    out.push('### Beyond the study', '', mdEscape(BEYOND_INTRO), '');
    table(beyond);
  }
  for (const f of [...study, ...beyond]) {
    if (f === beyond[0]) out.push('# Beyond the study', '', mdEscape(BEYOND_INTRO), '');
    out.push(`## ${mdEscape(f.id)} — ${mdEscape(f.title)}`, '');
    out.push(`**${f.beyond ? "bsx's claim" : "The study's claim"}.** ${mdEscape(f.claim)}`, '');
    out.push(`**Verdict: ${f.verdict}.** ${mdEscape(f.reason)}`, '');
    if (f.measured.length > 0) {
      const spread = input.seedsPerRun > 1 ? `mean ± sd over ${input.seedsPerRun} seeds` : 'one seed';
      out.push(row(['quantity', `bsx (${spread})`, 'study']));
      out.push(row(['---', '---:', '---:']));
      for (const ms of f.measured) out.push(row([mdEscape(ms.label), mdEscape(formatMeasuredIn(ms, input.seedsPerRun)), mdEscape(formatStudy(ms))]));
      out.push('');
    }
    if (f.notes && f.notes.length > 0) {
      out.push('Notes:', '', ...f.notes.map((n) => `- ${mdEscape(n)}`), '');
    }
    if (f.deviations.length > 0) {
      out.push(`Deviations of the \`${f.profile}\` profile from the study's setup:`, '', ...f.deviations.map((d) => `- ${mdEscape(d)}`), '');
    }
  }
  out.push('---', '', mdEscape(input.citation), '');
  return out.join('\n');
}
