// bsx sweep plan|run|status|report: a study file (YAML or JSON) run as units of work through the
// run store, in one process or as one shard of a cluster (--shard k/N, a Slurm job array or a
// Kubernetes Indexed Job); the results folder is the only meeting point of the shards.

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  BsxError,
  chooseShard,
  engineInfo,
  loadStudy,
  loadStudyData,
  planSweep,
  readSweepFile,
  resolveDevice,
  runSweep,
  sweepReport,
  sweepStatus,
  version,
  type Shard,
  type Study,
} from '@bsx/core';
import { table } from '../format.js';
import { fmtSeconds, holders, planTable, unitDisplay } from '../plan-display.js';

export interface SweepCommandOptions {
  out?: string;
  shard?: string;
  shards?: number;
  device?: 'auto' | 'cpu' | 'cuda';
  chunk?: number;
  json?: boolean;
}

/** The study and the results folder: a study file (with --out), or a results folder holding sweep.json. */
async function target(arg: string, out: string | undefined, defaultOut: string): Promise<{ study: Study; out: string }> {
  const path = resolve(arg);
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    if (out !== undefined && resolve(out) !== path) throw new BsxError('BSX_INVALID_ARGUMENT', `${path} is a results folder: give it alone, or give the study file with --out ${out}`);
    return { study: await readSweepFile(path), out: path };
  }
  return { study: await loadStudy(path), out: resolve(out ?? defaultOut) };
}

function say(opts: SweepCommandOptions, s: string): void {
  if (!opts.json) process.stderr.write(`${s}\n`);
}

/** The shard of this process and where it came from (printed), or undefined. */
function shardOf(opts: SweepCommandOptions): Shard | undefined {
  const choice = chooseShard({ ...(opts.shard !== undefined ? { shard: opts.shard } : {}), ...(opts.shards !== undefined ? { shards: opts.shards } : {}) });
  // said on stderr even with --json: a cluster's logs must show which shard a task ran
  if (choice) process.stderr.write(`bsx: shard ${choice.shard.index}/${choice.shard.count} (from ${choice.source})\n`);
  return choice?.shard;
}

export async function sweepPlanCommand(file: string, opts: SweepCommandOptions): Promise<void> {
  const { study, out } = await target(file, opts.out, 'bsx-sweep');
  const device = resolveDevice(opts.device ?? 'auto');
  if (device.note) say(opts, `bsx: ${device.note}`);
  const shard = opts.shard !== undefined ? shardOf(opts) : undefined;
  const plan = await planSweep(study, {
    out,
    backend: device.kind,
    ...(shard ? { shard } : opts.shards !== undefined ? { shards: opts.shards } : {}),
    ...(opts.chunk !== undefined ? { chunk: opts.chunk } : {}),
  });
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          study: study.name,
          hash: study.hash,
          units: plan.items.map((i) => ({ id: i.key, kind: i.unit.kind, label: i.label, status: i.status, estimateSeconds: i.estimate, cost: i.unit.cost, ...(i.shard !== undefined ? { shard: i.shard } : {}) })),
          estimateSeconds: plan.estimate,
          ...(plan.perShard ? { perShard: plan.perShard } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  const shown = shard ? plan.items.filter((i) => i.shard === shard.index) : plan.items;
  process.stdout.write(`study ${study.name}: ${study.runs.length} runs x ${study.seeds.length} seeds, ${study.grad.length} gradient studies; ${plan.items.length} units (estimates from the engine measured just now)\n\n`);
  process.stdout.write(`${planTable(shown, plan.perShard !== undefined)}\n\n`);
  if (plan.perShard) process.stdout.write(`per shard: ${plan.perShard.map((s, i) => `${i + 1}: ${fmtSeconds(s)}`).join(', ')}\n`);
  process.stdout.write(`estimated ${shard ? `for shard ${shard.index}/${shard.count}` : 'total'}: ${fmtSeconds(plan.estimate)}\n`);
}

export async function sweepRunCommand(file: string, opts: SweepCommandOptions): Promise<void> {
  const { study, out } = await target(file, opts.out, 'bsx-sweep');
  const device = resolveDevice(opts.device ?? 'auto');
  if (device.note) say(opts, `bsx: ${device.note}`);
  const shard = shardOf(opts);
  say(opts, `bsx: study ${study.name} (${study.runs.length} runs x ${study.seeds.length} seeds, ${study.grad.length} gradient studies); results in ${out}`);
  const data = await loadStudyData(study, out);
  const display = unitDisplay({ ...(opts.json ? { json: true } : {}), label: shard ? `shard ${shard.index}/${shard.count}` : 'sweep', of: shard ? ` of shard ${shard.index}/${shard.count}` : '' });
  const ac = new AbortController();
  const onSignal = (sig: string) => (): void => {
    if (ac.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    ac.abort();
    say(opts, `\nbsx: ${sig}; stopping after the current chunk (finished epochs and points are kept)`);
  };
  const onInt = onSignal('SIGINT');
  const onTerm = onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const res = await runSweep(study, {
      out,
      backend: device.kind,
      data,
      version,
      ...(shard ? { shard } : {}),
      ...(opts.chunk !== undefined ? { chunk: opts.chunk } : {}),
      signal: ac.signal,
      onEvent: display.onEvent,
    });
    display.finish();
    // the report once the whole study is in (any shard may be the last)
    const status = await sweepStatus(study, { out, data });
    const complete = status.done === status.items.length;
    const report = complete ? await sweepReport(study, { out, data, madeBy: madeBy(device.kind) }) : undefined;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ study: study.name, shard: shard ? `${shard.index}/${shard.count}` : null, ran: res.ran, reused: res.reused, seconds: res.seconds, complete, ...(report ? { report: report.files } : {}) }, null, 2)}\n`,
      );
      return;
    }
    say(opts, `${shard ? `shard ${shard.index}/${shard.count}` : 'sweep'} finished in ${fmtSeconds(res.seconds)}: ${res.ran.length} units run, ${res.reused.length} done already`);
    if (report) process.stdout.write(`report: ${report.files.html}\nruns: ${report.files.runsCsv}\ntrials: ${report.files.trialsCsv}\n`);
    else process.stdout.write(`the study is not complete yet (${status.done} of ${status.items.length} units done, ${status.running} running): \`bsx sweep status ${out}\`, then \`bsx sweep report ${out}\`\n`);
  } catch (err) {
    display.finish();
    if (err instanceof BsxError && err.code === 'BSX_CANCELLED') {
      throw new BsxError('BSX_CANCELLED', 'interrupted; finished runs, epochs and points are saved: run the same command again to resume');
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}

function madeBy(backend?: 'cpu' | 'cuda'): string {
  if (backend === undefined) return `bsx ${version}`;
  const info = engineInfo();
  return `bsx ${version}, ${info.cpu.brand || info.cpu.vendor}, ${info.cpu.threads} threads, backend ${backend === 'cuda' ? `cuda${info.cuda.name ? ` (${info.cuda.name})` : ''}` : `cpu-${info.cpu.simdPath}`}`;
}

export async function sweepStatusCommand(arg: string, opts: SweepCommandOptions): Promise<void> {
  const { study, out } = await target(arg, opts.out, 'bsx-sweep');
  const st = await sweepStatus(study, { out, ...(opts.shards !== undefined ? { shards: opts.shards } : {}) });
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          study: study.name,
          done: st.done,
          running: st.running,
          todo: st.todo,
          units: st.items.map((i) => ({
            id: i.key,
            label: i.label,
            status: i.status === 'done' ? 'done' : i.heldBy ? 'running' : i.status,
            ...(i.shard !== undefined ? { shard: i.shard } : {}),
            ...(i.heldBy ? { heldBy: i.heldBy.map((h) => ({ host: h.hostname, pid: h.pid, since: h.startedAt })) } : {}),
          })),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  process.stdout.write(`study ${study.name} in ${out}: ${st.done} done, ${st.running} running, ${st.todo} to do (of ${st.items.length} units)\n\n`);
  const rows = st.items.map((i) => [i.label, ...(opts.shards !== undefined ? [i.shard ?? '-'] : []), i.status === 'done' ? 'done' : i.heldBy ? 'running' : i.status === 'partial' ? 'partial (resumes)' : 'todo', holders(i.heldBy)]);
  process.stdout.write(`${table(['unit', ...(opts.shards !== undefined ? ['shard'] : []), 'status', 'held by'], rows)}\n`);
}

export async function sweepReportCommand(arg: string, opts: SweepCommandOptions): Promise<void> {
  const { study, out } = await target(arg, opts.out, 'bsx-sweep');
  const r = await sweepReport(study, { out, madeBy: madeBy() });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ study: study.name, files: r.files, runs: { done: r.runsDone, total: r.runsTotal }, points: { done: r.pointsDone, total: r.pointsTotal }, missing: r.missing }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`report: ${r.files.html}\nruns: ${r.files.runsCsv}\ntrials: ${r.files.trialsCsv}\n`);
  process.stdout.write(
    r.missing.length === 0
      ? `complete: ${r.runsDone} runs, ${r.pointsDone} gradient points\n`
      : `incomplete: ${r.runsDone} of ${r.runsTotal} runs, ${r.pointsDone} of ${r.pointsTotal} gradient points; missing:\n${r.missing.map((m) => `  ${m.label}`).join('\n')}\n`,
  );
}
