// The report layer: figure builders, SVG rendering, the HTML report, the Markdown summary, and
// `writeReport`, which writes all three report files into a directory atomically.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Measurement, ProfileName, Verdict } from '../findings/types.js';
import { writeFileAtomic } from '../store/atomic.js';
import { buildHtmlReport, type HtmlReportOptions, type ReportInput } from './html.js';
import { buildMarkdownSummary } from './markdown.js';

export * from './figures.js';
export * from './render.js';
export * from './html.js';
export * from './markdown.js';

/**
 * One entry of findings.json: a finding's verdict and numbers, for programs. `seed` maps each
 * measurement's label to the study's number for it, for the measurements where the study gives
 * one (if two measurements share a label, the later one wins). Numbers that are not finite
 * (NaN from a diverged run) are written as null, as JSON has no NaN.
 */
export interface FindingSummaryJson {
  id: string;
  title: string;
  verdict: Verdict;
  measured: Measurement[];
  seed: Record<string, number>;
  profile: ProfileName;
}

/** The findings.json entries for a report's findings. */
export function findingsJson(input: ReportInput): FindingSummaryJson[] {
  return input.findings.map((f) => {
    const seed: Record<string, number> = {};
    for (const m of f.measured) if (m.seed !== undefined) seed[m.label] = m.seed;
    return { id: f.id, title: f.title, verdict: f.verdict, measured: f.measured, seed, profile: f.profile };
  });
}

/** Paths of the files `writeReport` wrote. */
export interface WrittenReport {
  /** report.html: the self-contained report with its figures. */
  html: string;
  /** summary.md: the verdicts and numbers in Markdown. */
  markdown: string;
  /** findings.json: see `FindingSummaryJson`. */
  json: string;
}

/**
 * Writes report.html, summary.md and findings.json into `dir` (created if missing). Each file is
 * replaced atomically, so a reader never sees half a report file. Everything is built before the
 * first file is written, so a figure that fails to render leaves the old files untouched.
 */
export async function writeReport(dir: string, input: ReportInput, opts: HtmlReportOptions = {}): Promise<WrittenReport> {
  const html = await buildHtmlReport(input, opts);
  const markdown = buildMarkdownSummary(input);
  const json = `${JSON.stringify(findingsJson(input), null, 2)}\n`;
  await mkdir(dir, { recursive: true });
  const paths: WrittenReport = { html: join(dir, 'report.html'), markdown: join(dir, 'summary.md'), json: join(dir, 'findings.json') };
  await writeFileAtomic(paths.html, html);
  await writeFileAtomic(paths.markdown, markdown);
  await writeFileAtomic(paths.json, json);
  return paths;
}
