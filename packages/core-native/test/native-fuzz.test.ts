// Fuzz test of the native addon: fixtures/fuzz-child.cjs makes thousands of malformed calls to
// every export (methods and accessors read from the class prototypes, constructors, functions,
// gemm.*), with re-entrant Proxies and getters, wrong receivers, calls after dispose() and
// worker threads stopped in the middle of calls, in child processes: two at a time (the test
// machine has two cores). The test fails if a child is killed by a signal or exits non-zero,
// if the addon threw or rejected with an error without a `code`, or if fewer than 10,000
// calls were made. The seed is fixed, printed, and set by BSX_FUZZ_SEED; BSX_FUZZ_CALLS sets
// the calls of each of the two main runs. A failing seed replays with
//   node packages/core-native/test/fixtures/fuzz-child.cjs <seed> <calls> [main|workers]
// (BSX_FUZZ_TRACE=1 prints every call before it is made).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/fuzz-child.cjs', import.meta.url));
const SEED = Number(process.env.BSX_FUZZ_SEED ?? 20180716) >>> 0;
const CALLS = Number(process.env.BSX_FUZZ_CALLS ?? 5000);
const CODES = ['BSX_INVALID_ARGUMENT', 'BSX_OUT_OF_MEMORY', 'BSX_INVALID_ENV', 'BSX_INVALID_STATE', 'BSX_BUSY',
  'BSX_DISPOSED', 'BSX_TOO_LARGE', 'BSX_DEVICE_UNAVAILABLE', 'BSX_NATIVE'];

interface Summary {
  seed: number;
  mode: string;
  ms: number;
  final: string;
  calls: number;
  returned: number;
  threw: number;
  trapPropagated: number;
  resolved: number;
  rejected: number;
  byCode: Record<string, number>;
  byClass: Record<string, number>;
  byTarget: Record<string, [number, number]>;
  targets: string[];
  uncoded: number;
  findings: { where: string; how: string; name: string; code?: string; message: string; count: number }[];
  hasInstanceCalls: number;
  workers: { started: number; terminated: number; exited: number; threw: number; exitCodes: Record<string, number>; calls: number };
}

interface Run {
  label: string;
  replay: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  summary?: Summary;
}

function fuzz(label: string, seed: number, calls: number, mode: string, vars: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
    for (const name of ['BSX_THREADS', 'BSX_SIMD', 'BSX_SMALL_BATCH_MAX', 'BSX_FUZZ_TRACE']) {
      if (!(name in vars)) delete env[name];
    }
    const p = spawn(process.execPath, [child, String(seed), String(calls), mode], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 110_000);
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('FUZZ '));
      const replay = `${Object.entries(vars).map(([k, v]) => `${k}=${v} `).join('')}node packages/core-native/test/fixtures/fuzz-child.cjs ${seed} ${calls} ${mode}`;
      resolve({ label, replay, status, signal, stderr: stderr.slice(-3000), summary: line ? (JSON.parse(line.slice(5)) as Summary) : undefined });
    });
  });
}

/** The child ended normally, printed its summary, and every error it saw had a code. */
function checked(run: Run): Summary {
  const how = `${run.label}: status ${run.status}, signal ${run.signal}; replay: ${run.replay}\n${run.stderr}`;
  expect(run.signal, how).toBeNull();
  expect(run.status, how).toBe(0);
  expect(run.summary, how).toBeDefined();
  const s = run.summary!;
  expect(s.findings, `${run.label}: errors without a code; replay: ${run.replay}`).toEqual([]);
  expect(s.uncoded).toBe(0);
  // every outcome is accounted for
  expect(s.returned + s.threw + s.trapPropagated).toBe(s.calls);
  // codes of index.d.ts only; an argument error is a TypeError or a RangeError
  for (const [classAndCode, n] of Object.entries(s.byClass)) {
    const [cls, code] = classAndCode.split(' ') as [string, string];
    expect(CODES, `${run.label}: ${n} x ${classAndCode}`).toContain(code);
    if (code === 'BSX_INVALID_ARGUMENT') expect(['TypeError', 'RangeError']).toContain(cls);
  }
  return s;
}

describe('native addon fuzz', () => {
  it(`10,000+ malformed calls (seed ${SEED}) end in a value or an error with a code, never a crash`, async () => {
    console.log(`native fuzz: seed ${SEED} (BSX_FUZZ_SEED to change it), ${CALLS} calls per main run`);
    const t0 = Date.now();
    // two children at a time
    const first = await Promise.all([fuzz('main A', SEED, CALLS, 'main'), fuzz('main B', (SEED + 1) >>> 0, CALLS, 'main')]);
    const second = await Promise.all([
      fuzz('workers', (SEED + 2) >>> 0, 2000, 'workers'),
      // every call that needs the engine's threads fails, with BSX_INVALID_ENV
      fuzz('BSX_THREADS=abc', (SEED + 3) >>> 0, 1500, 'main', { BSX_THREADS: 'abc' }),
    ]);
    const [a, b] = first.map(checked) as [Summary, Summary];
    const [w, env] = second.map(checked) as [Summary, Summary];

    for (const s of [a, b, w]) expect(s.final).toBe('finite losses');
    expect(env.final).toBe('rejected: BSX_INVALID_ENV');
    expect(env.byCode.BSX_INVALID_ENV).toBeGreaterThan(0);

    // every export was fuzzed, each many times
    for (const s of [a, b]) {
      for (const name of s.targets) expect(s.byTarget[name]?.[0] ?? 0, name).toBeGreaterThanOrEqual(20);
      // valid calls were mixed in: state changed
      expect(s.resolved).toBeGreaterThan(20);
      for (const name of ['Ensemble.train', 'Ensemble.setOptimizer', 'Ensemble.setTensor', 'new Ensemble', 'gemm.sgemm']) {
        expect(s.byTarget[name]?.[1] ?? 0, `${name}: no call succeeded`).toBeGreaterThan(0);
      }
      // no check of the addon runs user code (Symbol.hasInstance was hooked on both classes)
      expect(s.hasInstanceCalls).toBe(0);
    }
    // the worker threads were stopped in all three ways, and the process went on
    expect(w.workers.started).toBe(16);
    expect(w.workers.terminated).toBe(8);
    expect(w.workers.exited).toBe(4);
    expect(w.workers.threw).toBe(4);
    expect(w.workers.exitCodes).toEqual({ '0': 4, '1': 12 });

    const all = [a, b, w, env];
    const total = all.reduce((n, s) => n + s.calls + s.workers.calls, 0);
    const sum = (f: (s: Summary) => number) => all.reduce((n, s) => n + f(s), 0);
    const codes: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.byCode)) codes[k] = (codes[k] ?? 0) + v;
    console.log(
      `native fuzz: ${total} calls in ${((Date.now() - t0) / 1000).toFixed(1)} s (${sum((s) => s.workers.calls)} in worker threads); ` +
        `${sum((s) => s.returned)} returned, ${sum((s) => s.threw)} threw an error with a code, ` +
        `${sum((s) => s.trapPropagated)} passed on an error thrown by the fuzzer's own traps, ` +
        `${sum((s) => s.resolved)} promises resolved, ${sum((s) => s.rejected)} rejected with a code; ` +
        `errors without a code: 0; crashes: 0\n  codes: ${JSON.stringify(codes)}`,
    );
    expect(total).toBeGreaterThanOrEqual(10_000);
  });
});
