// `pnpm bench`: bsx against PyTorch and TensorFlow.js on the study's MLP.
//
//   node bench/dist/run.js [--quick] [--json] [--out FILE] [--seconds S]
//        [--peers bsx,bsx-cuda,pytorch,tfjs-wasm,tfjs-wasm-best,tfjs-cpu,tfjs-node]
//        [--workloads train,eval,gradTrial,gemm,adam] [--adam-epoch-steps N]
//        [--data DIR] [--python /usr/bin/python3] [--timeout SECONDS]
//   node bench/dist/run.js roofline [options of roofline.js]
//   node bench/dist/run.js epochs [options of epochs.js]
//
// Detects each peer, runs them one at a time (never concurrently: they would
// share the cores), each on the same plan of workloads (see peer.ts), and
// prints a table per workload with the ratios bsx/pytorch, bsx/tfjs-wasm and
// bsx/tfjs-wasm-best, the cross-peer agreement of the deterministic check
// values, the peers that were unavailable and why, and the machine. --json
// prints the JSON report (RunReport) on stdout instead; --out FILE writes it
// to FILE. `roofline` or `epochs` as the first argument runs ./roofline.js or ./epochs.js
// instead.
//
// bsx runs in this process through ./peers/bsx.js (a PeerModule); pytorch is
// bench/peers/torch_peer.py under /usr/bin/python3; the tfjs peers are
// ./peers/tfjs.js child processes (tfjs-wasm-best: --backend wasm --best).
// Progress goes to stderr.

import { spawn } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, table } from './format.js';
import { benchRoot, busyFraction, describeMachine, machine, mnistDir, type Machine } from './machine.js';
import {
  ADAM,
  ADAM_BATCH,
  ADAM_EPOCHS,
  DEFAULT_SECONDS,
  DEFAULT_WORKLOADS,
  LR,
  PEER_IDS,
  QUICK_SECONDS,
  WORKLOAD_NAMES,
  makePlan,
  parseList,
  parseSizes,
  parseWorkloadNames,
  planFor,
  workloadKey,
  type Availability,
  type PeerId,
  type PeerModule,
  type PeerReport,
  type PeerResult,
  type Workload,
  type WorkloadName,
} from './peer.js';

export type { Machine } from './machine.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist

// ---------------------------------------------------------------------------
// The report

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
  quick: boolean;
  seconds: number;
  python: string;
  timeoutS: number;
}

/** CLI flags carrying a plan to a child peer. */
function planArgs(ctx: Ctx, plan: Workload[]): string[] {
  const names = [...new Set(plan.map((p) => p.workload))];
  const sizes = (w: WorkloadName) => plan.filter((p) => p.workload === w).map((p) => ('b' in p ? p.b : 0));
  const args = ['--data', ctx.dataDir, '--workloads', names.join(','), '--seconds', String(ctx.seconds)];
  if (ctx.quick) args.push('--quick');
  const train = sizes('train');
  const grad = sizes('gradTrial');
  const evalChunk = sizes('eval');
  const shapes = plan.flatMap((p) => (p.workload === 'gemm' ? [p.shape.join('x')] : []));
  const adam = plan.find((p) => p.workload === 'adam');
  if (train.length) args.push('--train-sizes', train.join(','));
  if (grad.length) args.push('--grad-sizes', grad.join(','));
  if (evalChunk.length) args.push('--eval-chunk', String(evalChunk[0]));
  if (shapes.length) args.push('--gemm-shapes', shapes.join(','));
  if (adam) args.push('--adam-epoch-steps', String(adam.epochSteps));
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
      workloads: planFor(peer, ctx.plan),
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
  const r = await runChild(ctx.python, [script, ...planArgs(ctx, planFor('pytorch', ctx.plan))], { env: pythonEnv(), timeoutMs: ctx.timeoutS * 1000, forwardStderr: true });
  const report = r.code === 0 ? parseJsonLine<PeerReport>(r.stdout) : undefined;
  if (!report) return { peer: 'pytorch', status: 'failed', reason: r.code === 0 ? 'no JSON on stdout' : childFailure(r, 'torch_peer.py', ctx.timeoutS) };
  return { peer: 'pytorch', status: 'ok', wallSeconds: (performance.now() - t0) / 1000, report };
}

/** The tfjs.js flags of each tfjs peer. */
const TFJS_ARGS: Partial<Record<PeerId, string[]>> = {
  'tfjs-wasm': ['--backend', 'wasm'],
  'tfjs-wasm-best': ['--backend', 'wasm', '--best'],
  'tfjs-cpu': ['--backend', 'cpu'],
  'tfjs-node': ['--backend', 'node'],
};

async function runTfjs(ctx: Ctx, peer: PeerId): Promise<PeerEntry> {
  const script = join(here, 'peers', 'tfjs.js');
  const flags = TFJS_ARGS[peer]!;
  const probe = await runChild(process.execPath, [script, ...flags, '--detect'], { timeoutMs: 60_000, forwardStderr: false });
  const a = probe.code === 0 ? parseJsonLine<Availability>(probe.stdout) : undefined;
  if (!a) return { peer, status: 'unavailable', reason: childFailure(probe, 'detect', 60) };
  if (!a.available) return { peer, status: 'unavailable', reason: a.reason };
  const t0 = performance.now();
  const r = await runChild(process.execPath, [script, ...flags, ...planArgs(ctx, planFor(peer, ctx.plan))], { timeoutMs: ctx.timeoutS * 1000, forwardStderr: true });
  const report = r.code === 0 ? parseJsonLine<PeerReport>(r.stdout) : undefined;
  if (!report) return { peer, status: 'failed', reason: r.code === 0 ? 'no JSON on stdout' : childFailure(r, 'tfjs.js', ctx.timeoutS) };
  return { peer, status: 'ok', wallSeconds: (performance.now() - t0) / 1000, report };
}

// ---------------------------------------------------------------------------
// Tables

function figure(r: PeerResult | undefined): number | undefined {
  return r?.samplesPerSec ?? r?.trialsPerSec ?? r?.gflops;
}

const UNITS: Record<WorkloadName, string> = {
  train: 'samples/s (SGD steps of batch b)',
  eval: 'samples/s (forward + loss + accuracy over the 10k test set, chunks of b)',
  gradTrial: 'trials/s (reset + 1024 samples in steps of b + |S| of the last layer)',
  gemm: 'GFLOP/s (fp32 matmul MxNxK)',
  adam: 'samples/s of each epoch',
};

/** The column of a result: its peer, or '<peer> <variant>' for a variant measured in the same run. */
function columnOf(peer: PeerId, r: PeerResult): string {
  return r.variant ? `${peer} ${r.variant}` : peer;
}

/** bsx is compared with these columns, when present. */
const RATIO_AGAINST = ['pytorch', 'pytorch FTZ', 'tfjs-wasm', 'tfjs-wasm-best'];

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

/**
 * The adam table: per column (peer or variant), samples/s of each epoch of each optimizer,
 * Adam's time per epoch relative to SGD's, the share of subnormal first moments after each
 * epoch and the mean training loss; bsx/each on the samples/s rows.
 */
function renderAdam(plan: Workload[], byCol: Map<string, Map<string, PeerResult>>): string[] {
  const adamPlan = plan.filter((w): w is Extract<Workload, { workload: 'adam' }> => w.workload === 'adam');
  if (adamPlan.length === 0) return [];
  const keys = adamPlan.map(workloadKey);
  const cols = [...byCol.keys()].filter((c) => keys.some((k) => byCol.get(c)!.has(k)));
  if (cols.length === 0) return [];
  const ratios = byCol.has('bsx') ? RATIO_AGAINST.filter((o) => cols.includes(o)) : [];
  const get = (c: string, opt: string) => byCol.get(c)!.get(workloadKey({ workload: 'adam', b: ADAM_BATCH, optimizer: opt as 'adam' | 'sgd' }));
  const rows: string[][] = [];
  const epochs = Array.from({ length: ADAM_EPOCHS }, (_, e) => e);
  for (const w of adamPlan) {
    for (const e of epochs) {
      const v = (c: string) => get(c, w.optimizer)?.epochs?.[e]?.samplesPerSec;
      rows.push([`${w.optimizer} epoch ${e + 1}`, ...cols.map((c) => fmt(v(c))), ...ratios.map((o) => ratio(v('bsx'), v(o)))]);
    }
  }
  const blank = ratios.map(() => '');
  if (adamPlan.some((w) => w.optimizer === 'adam') && adamPlan.some((w) => w.optimizer === 'sgd')) {
    for (const e of epochs) {
      const t = (c: string) => {
        const a = get(c, 'adam')?.epochs?.[e]?.samplesPerSec;
        const g = get(c, 'sgd')?.epochs?.[e]?.samplesPerSec;
        return a !== undefined && g !== undefined && a > 0 ? `${(g / a).toFixed(2)}x` : '-';
      };
      rows.push([`adam/sgd time, epoch ${e + 1}`, ...cols.map(t), ...blank]);
    }
  }
  for (const e of epochs) {
    const sub = (c: string) => get(c, 'adam')?.epochs?.[e]?.subnormalM;
    if (cols.some((c) => sub(c) !== undefined)) rows.push([`adam subnormal m after epoch ${e + 1}`, ...cols.map((c) => (sub(c) === undefined ? '-' : `${(100 * sub(c)!).toFixed(2)}%`)), ...blank]);
  }
  for (const w of adamPlan) {
    for (const e of epochs) {
      const l = (c: string) => get(c, w.optimizer)?.epochs?.[e]?.meanLoss;
      rows.push([`${w.optimizer} mean loss, epoch ${e + 1}`, ...cols.map((c) => (l(c) === undefined ? '-' : l(c)!.toFixed(4))), ...blank]);
    }
  }
  const steps = adamPlan[0]!.epochSteps;
  return [
    '',
    `adam: ${UNITS.adam}: ${ADAM_EPOCHS} epochs of ${steps} steps of b=${ADAM_BATCH} from the same init; Adam lr ${LR}, betas (${ADAM.beta1}, ${ADAM.beta2}), eps ${ADAM.eps}; SGD lr ${LR}`,
    table(['', ...cols, ...ratios.map((o) => `bsx/${o}`)], rows),
  ];
}

function render(report: RunReport): string {
  const out: string[] = [];
  out.push(`bsx bench ${report.date}`);
  out.push(`machine: ${describeMachine(report.machine)}`);
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

  // One column per peer, and one per variant a peer measured in the same run (e.g. 'pytorch FTZ').
  const byCol = new Map<string, Map<string, PeerResult>>();
  for (const p of ok) byCol.set(p.peer, new Map());
  for (const p of ok) {
    for (const r of p.report!.results) {
      const c = columnOf(p.peer, r);
      if (!byCol.has(c)) byCol.set(c, new Map());
      byCol.get(c)!.set(workloadKey(r), r);
    }
  }
  const peerCols = ok.map((p) => p.peer as string);
  const ratios = byCol.has('bsx') ? RATIO_AGAINST.filter((o) => peerCols.includes(o)) : [];
  let starred = false;
  let partial = false;
  for (const name of WORKLOAD_NAMES) {
    if (name === 'adam') continue;
    const keys = report.options.workloads.filter((w) => w.workload === name).map(workloadKey);
    if (keys.length === 0 || peerCols.length === 0) continue;
    const rows = keys.map((k) => {
      const cells = peerCols.map((c) => {
        const r = byCol.get(c)!.get(k);
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
      const rat = ratios.map((o) => ratio(figure(byCol.get('bsx')!.get(k)), figure(byCol.get(o)!.get(k))));
      return [k.slice(name.length + 1), ...cells, ...rat];
    });
    out.push('', `${name}: ${UNITS[name]}${name === 'gemm' && ceiling ? ', (% of the fp32 ceiling)' : ''}`);
    out.push(table([name === 'gemm' ? 'MxNxK' : 'b', ...peerCols, ...ratios.map((o) => `bsx/${o}`)], rows));
  }
  out.push(...renderAdam(report.options.workloads, byCol));
  if (starred || partial) out.push('');
  if (starred) out.push('* the first iteration took over 3x the budget (and >= 3 s): measured on that single iteration, without warm-up');
  if (partial) out.push('~ the first trial was stopped after max(10x the budget, 10 s): extrapolated from the steps it took');

  // Agreement of the deterministic check values.
  const cols = [...byCol.keys()];
  const checkRows: string[][] = [];
  const checkCols = new Set<string>();
  for (const w of report.options.workloads) {
    const k = workloadKey(w);
    const fields = new Set<string>();
    for (const c of cols) for (const f of Object.keys(byCol.get(c)!.get(k)?.check ?? {})) fields.add(f);
    for (const f of fields) {
      const vals = cols.map((c) => byCol.get(c)!.get(k)?.check?.[f]);
      vals.forEach((v, i) => v !== undefined && checkCols.add(cols[i]!));
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
    // the columns that hold at least one check value (the peers' columns always)
    const keep = cols.map((c) => peerCols.includes(c) || checkCols.has(c));
    const pick = (row: string[]) => [row[0]!, ...row.slice(1, 1 + cols.length).filter((_, i) => keep[i]), row[row.length - 1]!];
    out.push('', 'checks: values every peer computes from the same init and batches (they agree to ~1e-6, ~1e-4 after 1024 steps of b=1; MISMATCH above 1e-3)');
    out.push(table(pick(['value', ...cols, 'max rel. diff']), checkRows.map(pick)));
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
       [--peers ${PEER_IDS.join(',')}]
       [--workloads ${WORKLOAD_NAMES.join(',')}] (default ${DEFAULT_WORKLOADS.join(',')})
       [--adam-epoch-steps N] [--data DIR] [--python /usr/bin/python3] [--timeout SECONDS]
       node bench/dist/run.js roofline [--help]
       node bench/dist/run.js epochs [--help]`;

async function main(): Promise<number> {
  if (process.argv[2] === 'roofline') {
    const { rooflineMain } = await import('./roofline.js');
    return rooflineMain(process.argv.slice(3));
  }
  if (process.argv[2] === 'epochs') {
    const { epochsMain } = await import('./epochs.js');
    return epochsMain(process.argv.slice(3));
  }
  const { values } = parseArgs({
    options: {
      'adam-epoch-steps': { type: 'string' },
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
  const names = values.workloads ? parseWorkloadNames(values.workloads) : [...DEFAULT_WORKLOADS];
  const adamEpochSteps = values['adam-epoch-steps'] ? parseSizes(values['adam-epoch-steps'], '--adam-epoch-steps')[0]! : undefined;
  const dataDir = mnistDir(values.data);
  const plan = makePlan({ names, quick, ...(adamEpochSteps !== undefined ? { adamEpochSteps } : {}) });
  const ctx: Ctx = { dataDir, plan, quick, seconds, python: values.python!, timeoutS };

  const report: RunReport = {
    schema: 'bsx-bench/1',
    date: new Date().toISOString(),
    machine: machine(),
    options: { quick, seconds, peers: selected, dataDir, workloads: plan },
    peers: [],
  };
  for (const peer of selected) {
    process.stderr.write(`== ${peer}\n`);
    if (planFor(peer, plan).length === 0) {
      const reason = 'none of the planned workloads is measured by this peer (adam: bsx and pytorch only; gemm: not bsx-cuda nor tfjs-wasm-best)';
      process.stderr.write(`${peer}: unavailable (${reason})\n`);
      report.peers.push({ peer, status: 'unavailable', reason });
      continue;
    }
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
