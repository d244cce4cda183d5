// bsx run: the finding suite. Plans every run the chosen findings need, estimates the time,
// runs what is missing with an overall progress bar (an interrupted suite resumes), then
// writes report.html, summary.md and findings.json. bsx report rebuilds them from the store.

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  BsxError,
  FINDINGS,
  PROFILES,
  engineInfo,
  findingById,
  resolveDevice,
  resolveProfile,
  SUITE_FILE,
  checkSuiteMemory,
  peekMnist,
  readSuiteFile,
  runSuite,
  version,
  writeReport,
  writeSuiteFile,
  type Finding,
  type FindingResult,
  type Profile,
  type ProfileName,
  type SuiteFile,
  chooseShard,
} from '@bsx/core';
import { loadData } from '../data.js';
import { table } from '../format.js';
import { fmtSeconds, unitDisplay } from '../plan-display.js';

export interface RunCommandOptions {
  profile: ProfileName | 'auto';
  shard?: string;
  shards?: number;
  seeds?: number;
  device: 'auto' | 'cpu' | 'cuda';
  out: string;
  chunk?: number;
  data?: string;
  json?: boolean;
}

const CITATION = 'K. Shen, "Effect of batch size on training dynamics", 2018 (blog post); bsx reproduces its findings with its own code and data pipeline.';


export function selectFindings(ids: string[]): Finding[] {
  if (ids.length === 0 || ids.some((i) => i.toLowerCase() === 'all')) return [...FINDINGS];
  return ids.map((id) => {
    const f = findingById(id);
    if (!f) throw new BsxError('BSX_INVALID_ARGUMENT', `unknown finding '${id}'; choose from ${FINDINGS.map((x) => x.id).join(' ')} or all`);
    return f;
  });
}

function verdictTable(findings: FindingResult[]): string {
  return table(
    ['id', 'verdict', 'finding'],
    findings.map((f) => [f.id, f.verdict, f.title]),
  );
}

async function writeOutputs(out: string, profile: Profile, seeds: number, backend: 'cpu' | 'cuda', findings: FindingResult[]) {
  const info = engineInfo();
  return writeReport(out, {
    title: 'bsx: the effect of batch size on training, reproduced',
    profile: profile.name,
    createdAt: new Date().toISOString(),
    machine: {
      cpu: info.cpu.brand || info.cpu.vendor,
      threads: info.cpu.threads,
      backend: backend === 'cuda' ? 'cuda' : `cpu-${info.cpu.simdPath}`,
      ...(backend === 'cuda' && info.cuda.name ? { gpu: info.cuda.name } : {}),
    },
    seedsPerRun: seeds,
    findings,
    citation: CITATION,
    profileNote: profile.note,
  });
}

function printResult(findings: FindingResult[], files: { html: string; markdown: string; json: string }, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ findings: findings.map((f) => ({ id: f.id, title: f.title, verdict: f.verdict, reason: f.reason })), files }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n${verdictTable(findings)}\n\nreport: ${files.html}\nsummary: ${files.markdown}\nfindings: ${files.json}\n`);
}

export async function runCommand(ids: string[], opts: RunCommandOptions): Promise<void> {
  const findings = selectFindings(ids);
  const device = resolveDevice(opts.device);
  const say = (s: string): void => {
    if (!opts.json) process.stderr.write(`${s}\n`);
  };
  if (device.note) say(`bsx: ${device.note}`);
  const profile = resolveProfile(opts.profile, device.kind);
  const seeds = opts.seeds ?? profile.seeds;
  const out = resolve(opts.out);
  say(`bsx: profile ${profile.name} (${profile.note}); ${seeds} seeds per run; results in ${out}`);
  // the memory of the largest run or study, from the files' headers, before anything is written
  const sizes = await peekMnist({
    ...(opts.data !== undefined ? { dir: opts.data } : {}),
    ...(profile.trainLimit !== undefined ? { trainLimit: profile.trainLimit } : {}),
    ...(profile.testLimit !== undefined ? { testLimit: profile.testLimit } : {}),
  });
  checkSuiteMemory({
    findings,
    profile,
    seeds,
    backend: device.kind,
    ...(opts.chunk !== undefined ? { chunk: opts.chunk } : {}),
    trainCount: sizes.train.count,
    testCount: sizes.test.count,
  });
  const data = await loadData({
    ...(opts.data !== undefined ? { data: opts.data } : {}),
    ...(profile.trainLimit !== undefined ? { trainLimit: profile.trainLimit } : {}),
    ...(profile.testLimit !== undefined ? { testLimit: profile.testLimit } : {}),
    store: out,
  });
  const suiteFile: SuiteFile = {
    format: 1,
    bsx: version,
    profile: profile.name,
    seeds,
    ids: findings.map((f) => f.id),
    backend: device.kind,
    ...(opts.data !== undefined ? { data: resolve(opts.data) } : {}),
    createdAt: new Date().toISOString(),
  };
  await mkdir(out, { recursive: true });
  await writeSuiteFile(join(out, SUITE_FILE), suiteFile);

  const shard = chooseShard({ ...(opts.shard !== undefined ? { shard: opts.shard } : {}), ...(opts.shards !== undefined ? { shards: opts.shards } : {}) });
  // said on stderr even with --json: a cluster's logs must show which shard a task ran
  if (shard) process.stderr.write(`bsx: shard ${shard.shard.index}/${shard.shard.count} (from ${shard.source})\n`);
  const display = unitDisplay({
    ...(opts.json ? { json: true } : {}),
    label: shard ? `suite, shard ${shard.shard.index}/${shard.shard.count}` : 'suite',
    of: shard ? ` of shard ${shard.shard.index}/${shard.shard.count}` : '',
  });
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
    say('\nbsx: interrupted; stopping after the current chunk (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  try {
    const res = await runSuite(data, {
      findings,
      profile,
      seeds,
      backend: device.kind,
      storeDir: out,
      ...(opts.chunk !== undefined ? { chunk: opts.chunk } : {}),
      ...(shard ? { shard: shard.shard } : {}),
      signal: ac.signal,
      onEvent: display.onEvent,
    });
    display.finish();
    if (!res.complete) {
      const which = `shard ${shard!.shard.index}/${shard!.shard.count}`;
      say(`${which} finished in ${fmtSeconds(res.seconds)}; the findings need every shard's work`);
      if (opts.json) process.stdout.write(`${JSON.stringify({ shard: `${shard!.shard.index}/${shard!.shard.count}`, complete: false, units: res.plan.map((i) => i.key) }, null, 2)}\n`);
      else process.stdout.write(`${which} done; the report is written by the shard that finishes last (or \`bsx report ${out}\` once all have finished)\n`);
      return;
    }
    const files = await writeOutputs(out, profile, seeds, device.kind, res.findings);
    say(`suite finished in ${fmtSeconds(res.seconds)}`);
    printResult(res.findings, files, opts.json);
  } catch (err) {
    display.finish();
    if (err instanceof BsxError && err.code === 'BSX_CANCELLED') {
      throw new BsxError('BSX_CANCELLED', 'interrupted; finished runs and epochs are saved: run the same command again to resume');
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export async function reportCommand(dir: string, opts: { json?: boolean }): Promise<void> {
  const out = resolve(dir);
  const file = join(out, SUITE_FILE);
  const suite = await readSuiteFile(file);
  const profile = PROFILES[suite.profile];
  let findings: Finding[];
  try {
    findings = selectFindings(suite.ids);
  } catch (err) {
    throw new BsxError('BSX_RUN_CORRUPT', `${file}: ids: ${(err as Error).message}`, { path: file, cause: err });
  }
  const sizes = await peekMnist({
    ...(suite.data !== undefined ? { dir: suite.data } : {}),
    ...(profile.trainLimit !== undefined ? { trainLimit: profile.trainLimit } : {}),
    ...(profile.testLimit !== undefined ? { testLimit: profile.testLimit } : {}),
  });
  try {
    checkSuiteMemory({ findings, profile, seeds: suite.seeds, backend: suite.backend, trainCount: sizes.train.count, testCount: sizes.test.count });
  } catch (err) {
    if (err instanceof BsxError && err.code === 'BSX_TOO_LARGE') {
      throw new BsxError('BSX_TOO_LARGE', `${file}: seeds ${suite.seeds}: ${err.message}`, { path: file, cause: err });
    }
    throw err;
  }
  const data = await loadData({
    ...(suite.data !== undefined ? { data: suite.data } : {}),
    ...(profile.trainLimit !== undefined ? { trainLimit: profile.trainLimit } : {}),
    ...(profile.testLimit !== undefined ? { testLimit: profile.testLimit } : {}),
    store: out,
  });
  const res = await runSuite(data, { findings, profile, seeds: suite.seeds, backend: suite.backend, storeDir: out, readOnly: true });
  const files = await writeOutputs(out, profile, suite.seeds, suite.backend, res.findings);
  printResult(res.findings, files, opts.json);
}

export function findingsCommand(opts: { json?: boolean }): void {
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(FINDINGS.map((f) => ({ id: f.id, title: f.title, claim: f.claim })), null, 2)}\n`);
    return;
  }
  for (const f of FINDINGS) process.stdout.write(`${f.id.padEnd(4)} ${f.title}\n     ${f.claim}\n`);
  const p = Object.values(PROFILES).map((x) => `  ${x.name.padEnd(6)} ${x.note}`).join('\n');
  process.stdout.write(`\nprofiles (bsx run --profile):\n${p}\n  auto   full on a GPU, quick on a CPU\n`);
}
