// The HTML report: one self-contained file (inline CSS, figures as inline SVG, no scripts, no
// external fonts or links needed) that a researcher opens in any browser, offline. A header with
// the profile and machine, the verdict table, then one section per finding with its claim,
// verdict, measured-vs-study table, notes, deviations and figures (the findings beyond the study,
// F13 on, after a section of their own), and a footer citing the study.

import type { FindingResult, ProfileName, Verdict } from '../findings/types.js';
import { BEYOND_INTRO, formatMeasured, formatMeasuredIn, formatStudy, keyMeasurements, verdictCounts } from './markdown.js';
import { renderFigure, scopeSvgIds } from './render.js';

export interface ReportMachine {
  cpu: string;
  threads: number;
  /** The engine backend the runs used, e.g. 'cpu-avx512' or 'cuda'. */
  backend: string;
  gpu?: string;
}

export interface ReportInput {
  title: string;
  profile: ProfileName;
  /** ISO 8601 time the report was made. */
  createdAt: string;
  machine: ReportMachine;
  seedsPerRun: number;
  findings: FindingResult[];
  /** How to cite the study the findings come from (printed in the footer). */
  citation: string;
  /** What the profile means (its scale relative to the study's setup). */
  profileNote: string;
}

export interface HtmlReportOptions {
  /**
   * What to do when a figure fails to render: 'throw' (default) fails the whole report with an
   * error naming the figure; 'inline' prints the error in place of that figure and goes on.
   */
  onFigureError?: 'throw' | 'inline';
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => {
    switch (ch) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&#39;';
    }
  });
}

/** A string usable as an HTML id (letters, digits, '-' and '_' kept; others become '-'). */
function htmlId(prefix: string, s: string): string {
  return `${prefix}-${s.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

const VERDICT_CLASS: Record<Verdict, string> = {
  reproduced: 'v-yes',
  partly: 'v-partly',
  'not reproduced': 'v-no',
};

function badge(v: Verdict): string {
  return `<span class="badge ${VERDICT_CLASS[v] ?? 'v-no'}">${escapeHtml(v)}</span>`;
}

const CSS = `
:root { --ink: #1d2329; --muted: #5b6570; --line: #d8dee4; --soft: #f5f7f9; --accent: #1f6fb4; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 28px 8px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 10px; }
h2 { font-size: 21px; margin: 0 0 10px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.report { border-bottom: 2px solid var(--line); padding-bottom: 16px; margin-bottom: 22px; }
.profile { display: inline-block; font-weight: 600; background: var(--soft); border: 1px solid var(--line);
  border-radius: 4px; padding: 1px 8px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 12px 0 0; font-size: 14px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0 4px; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.verdicts td:first-child { font-weight: 600; white-space: nowrap; }
table.verdicts ul { margin: 0; padding-left: 18px; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 12.5px; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent; }
.v-yes { background: #dcf5e3; color: #176b35; border-color: #9fd8b0; }
.v-partly { background: #fff3c4; color: #7a5600; border-color: #ecd27a; }
.v-no { background: #fde4e4; color: #a3202a; border-color: #f0a9ad; }
.counts { margin: 6px 0 10px; color: var(--muted); }
.counts .badge { margin-right: 4px; }
section.finding { border-top: 1px solid var(--line); padding: 22px 0 10px; margin-top: 10px; }
section.beyond { border-top: 2px solid var(--line); padding: 22px 0 4px; margin-top: 18px; }
section.finding .fid { color: var(--muted); font-weight: 600; }
.claim { background: var(--soft); border-left: 4px solid var(--accent); padding: 8px 12px; margin: 8px 0; }
.reason { margin: 8px 0; }
ul.notes li, ul.deviations li { margin: 2px 0; }
figure { margin: 18px 0 8px; padding: 12px; border: 1px solid var(--line); border-radius: 6px; break-inside: avoid; }
figure .chart { overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 14px; color: var(--muted); margin-top: 8px; }
figcaption strong { color: var(--ink); }
.figure-error { color: #a3202a; background: #fde4e4; padding: 8px 12px; border-radius: 4px; white-space: pre-wrap; }
footer { border-top: 2px solid var(--line); margin-top: 26px; padding: 14px 0 28px; font-size: 13.5px; color: var(--muted); }
@media print { main { max-width: none; } a { color: inherit; } }
`;

function keyNumbersHtml(f: FindingResult): string {
  const ms = keyMeasurements(f);
  if (ms.length === 0) return '—';
  const items = ms.map((m) => {
    const study = m.seed !== undefined ? ` <span class="study">(study ${escapeHtml(formatStudy(m))})</span>` : '';
    return `<li>${escapeHtml(m.label)}: <strong>${escapeHtml(formatMeasured(m))}</strong>${study}</li>`;
  });
  return `<ul>${items.join('')}</ul>`;
}

function verdictTable(findings: FindingResult[]): string {
  const rows = findings.map(
    (f) =>
      `<tr><td><a href="#${htmlId('finding', f.id)}">${escapeHtml(f.id)}</a></td><td>${escapeHtml(f.title)}</td>` +
      `<td>${badge(f.verdict)}</td><td>${keyNumbersHtml(f)}</td></tr>`,
  );
  return (
    '<table class="verdicts"><thead><tr><th>id</th><th>finding</th><th>verdict</th><th>key numbers: bsx (study)</th></tr></thead>' +
    `<tbody>\n${rows.join('\n')}\n</tbody></table>`
  );
}

function measuredTable(f: FindingResult, seedsPerRun: number): string {
  if (f.measured.length === 0) return '<p>No numbers are measured for this finding; see the figures.</p>';
  const spreadNote = seedsPerRun > 1 ? `mean ± sd over ${seedsPerRun} seeds` : 'one seed';
  const rows = f.measured.map(
    (m) => `<tr><td>${escapeHtml(m.label)}</td><td class="num">${escapeHtml(formatMeasuredIn(m, seedsPerRun))}</td><td class="num">${escapeHtml(formatStudy(m))}</td></tr>`,
  );
  return (
    `<table class="measured"><thead><tr><th>quantity</th><th class="num">bsx (${escapeHtml(spreadNote)})</th><th class="num">study</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function list(cls: string, items: string[]): string {
  return `<ul class="${cls}">${items.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>`;
}

async function figureHtml(f: FindingResult, fig: FindingResult['figures'][number], opts: HtmlReportOptions): Promise<string> {
  const id = htmlId('figure', `${f.id}-${fig.id}`);
  let body: string;
  try {
    body = scopeSvgIds((await renderFigure(fig)).svg, id);
  } catch (e) {
    if ((opts.onFigureError ?? 'throw') === 'throw') {
      throw new Error(`finding ${f.id}, figure '${fig.id}': ${(e as Error).message}`, { cause: e });
    }
    body = `<div class="figure-error">This figure could not be drawn: ${escapeHtml((e as Error).message)}</div>`;
  }
  return (
    `<figure id="${id}"><div class="chart">${body}</div>` +
    `<figcaption><strong>${escapeHtml(fig.title)}.</strong> ${escapeHtml(fig.caption)}</figcaption></figure>`
  );
}

async function findingSection(f: FindingResult, input: ReportInput, opts: HtmlReportOptions): Promise<string> {
  const parts: string[] = [];
  parts.push(`<section class="finding" id="${htmlId('finding', f.id)}">`);
  parts.push(`<h2><span class="fid">${escapeHtml(f.id)}</span> ${escapeHtml(f.title)} ${badge(f.verdict)}</h2>`);
  parts.push(`<p class="claim"><strong>${f.beyond ? 'bsx&#39;s claim' : 'The study&#39;s claim'}.</strong> ${escapeHtml(f.claim)}</p>`);
  parts.push(`<p class="reason"><strong>Verdict: ${escapeHtml(f.verdict)}.</strong> ${escapeHtml(f.reason)}</p>`);
  parts.push('<h3>Measured beside the study</h3>', measuredTable(f, input.seedsPerRun));
  if (f.notes && f.notes.length > 0) parts.push('<h3>Notes</h3>', list('notes', f.notes));
  if (f.deviations.length > 0) {
    parts.push(`<h3>Deviations of the <span class="profile">${escapeHtml(f.profile)}</span> profile from the study's setup</h3>`, list('deviations', f.deviations));
  }
  for (const fig of f.figures) parts.push(await figureHtml(f, fig, opts));
  parts.push('</section>');
  return parts.join('\n');
}

/** Builds the self-contained HTML report. Figures are rendered to inline SVG here. */
export async function buildHtmlReport(input: ReportInput, opts: HtmlReportOptions = {}): Promise<string> {
  const m = input.machine;
  const c = verdictCounts(input.findings);
  const machine = `${m.cpu} · ${m.threads} threads · backend ${m.backend}${m.gpu ? ` · GPU ${m.gpu}` : ''}`;
  const study = input.findings.filter((f) => !f.beyond);
  const beyond = input.findings.filter((f) => f.beyond);
  const sections: string[] = [];
  for (const f of study) sections.push(await findingSection(f, input, opts));
  if (beyond.length > 0) {
    sections.push(`<section id="beyond" class="beyond"><h2>Beyond the study</h2><p>${escapeHtml(BEYOND_INTRO)}</p></section>`);
    for (const f of beyond) sections.push(await findingSection(f, input, opts));
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header class="report">
<h1>${escapeHtml(input.title)}</h1>
<div>Profile <span class="profile">${escapeHtml(input.profile)}</span> — ${escapeHtml(input.profileNote)}</div>
<dl class="meta">
<dt>made</dt><dd>${escapeHtml(input.createdAt)}</dd>
<dt>machine</dt><dd>${escapeHtml(machine)}</dd>
<dt>seeds per run</dt><dd>${escapeHtml(String(input.seedsPerRun))}</dd>
<dt>findings</dt><dd>${input.findings.length}</dd>
</dl>
</header>
<section id="verdicts">
<h2>Verdicts</h2>
<p class="counts">${badge('reproduced')} ${c.reproduced} ${badge('partly')} ${c.partly} ${badge('not reproduced')} ${c['not reproduced']}</p>
${study.length > 0 ? verdictTable(study) : ''}
${beyond.length > 0 ? `<h3>Beyond the study</h3>\n${verdictTable(beyond)}` : ''}
</section>
${sections.join('\n')}
<footer id="report-end">
<p>${escapeHtml(input.citation)}</p>
<p>Each claim above is restated in this project's own words; numbers marked "study" are the study's, cited with attribution. Made by bsx.</p>
</footer>
</main>
</body>
</html>
`;
}
