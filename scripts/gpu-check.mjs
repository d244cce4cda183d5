#!/usr/bin/env node
// The CUDA parity check without vitest, for a GPU machine that has only Node (or a Node
// unpacked by scripts/gpu-run): runs the cases of packages/core-native/test/cuda_parity_cases.mjs
// (the same ones cuda_parity.test.ts runs), prints a PASS/FAIL line per case and a final
// "N passed, N failed" line; with --bench it also times the engine's training paths and the
// gradient-study trials on the GPU.
//
//   node scripts/gpu-check.mjs [--require-gpu] [--filter TEXT] [--bench] [--json FILE]
//                              [--timeout-scale X]   (X times each case's time limit)
//
// Without a usable GPU it says why and exits 0 (every case skipped), or 1 with --require-gpu.
// The addon is packages/core-native/index.cjs beside this script (BSX_NATIVE_PATH overrides).
// Exit code: 0 when every case passed, 1 otherwise.

import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
};
const requireGpu = flag('--require-gpu');
const bench = flag('--bench');
const filter = option('--filter');
const jsonPath = option('--json');
const timeoutScale = Number(option('--timeout-scale') ?? 1);

const addon = createRequire(import.meta.url)(join(root, 'packages/core-native/index.cjs'));
const { parityCases, cudaUnavailableReason } = await import(
  pathToFileURL(join(root, 'packages/core-native/test/cuda_parity_cases.mjs')).href
);

const info = addon.info();
const report = { info, cases: [], bench: [], passed: 0, failed: 0, skipped: 0 };
console.log(`bsx engine ${info.version}, node ${process.version}, backends: ${info.backendsCompiled.join(', ')}`);
console.log(
  info.cuda.available
    ? `cuda: ${info.cuda.name} (sm_${String(info.cuda.computeCapability).replace('.', '')}, ` +
        `${info.cuda.multiprocessors} SMs, ${((info.cuda.totalMemoryBytes ?? 0) / 2 ** 30).toFixed(1)} GiB, ` +
        `driver ${info.cuda.driverVersion}, runtime ${info.cuda.runtimeVersion})`
    : `cuda: unavailable (${info.cuda.reason})`,
);

const cases = parityCases(addon).filter((c) => !filter || c.name.includes(filter));
const unavailable = cudaUnavailableReason(addon);

function finish(code) {
  console.log(`${report.passed} passed, ${report.failed} failed${report.skipped ? `, ${report.skipped} skipped` : ''}`);
  if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  process.exit(code);
}

if (unavailable !== null) {
  for (const c of cases) console.log(`SKIP ${c.name}`);
  report.skipped = cases.length;
  console.log(`skipped all ${cases.length} cases: ${unavailable}`);
  finish(requireGpu ? 1 : 0);
}

for (const c of cases) {
  const t0 = performance.now();
  const lines = [];
  try {
    await withTimeout(c.run((line) => lines.push(line)), c.timeoutMs * timeoutScale, c.name);
    const s = ((performance.now() - t0) / 1000).toFixed(2);
    console.log(`PASS ${c.name} (${s} s)`);
    for (const l of lines) console.log(`     ${l}`);
    report.passed++;
    report.cases.push({ name: c.name, ok: true, seconds: Number(s), log: lines });
  } catch (err) {
    const s = ((performance.now() - t0) / 1000).toFixed(2);
    console.log(`FAIL ${c.name} (${s} s): ${err?.message ?? err}`);
    for (const l of lines) console.log(`     ${l}`);
    report.failed++;
    report.cases.push({ name: c.name, ok: false, seconds: Number(s), error: String(err?.stack ?? err), log: lines });
  }
}

if (bench) await runBench();
finish(report.failed === 0 ? 0 : 1);

function withTimeout(promise, ms, name) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------------------------------
// Timings of the engine's own paths on the GPU (synthetic data; figures, never assertions).

async function runBench() {
  const widths = [784, 1024, 1024, 10];
  const P = widths.slice(1).reduce((s, w, l) => s + w * widths[l] + w, 0);
  const count = 20000;
  const rnd = lcg(2024);
  const x = new Float32Array(count * widths[0]).map(() => rnd() * 2 - 1);
  const y = new Int32Array(count).map(() => Math.floor(rnd() * 10));
  const ds = new addon.Dataset(x, y, count, widths[0], 10);

  const line = (o) => {
    report.bench.push(o);
    console.log(
      `BENCH ${o.what}: ${Object.entries(o)
        .filter(([k]) => k !== 'what')
        .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toPrecision(4) : v}`)
        .join(' ')}`,
    );
  };
  const idxFor = (R, n) => Int32Array.from({ length: R * n }, () => Math.floor(rnd() * count));

  // Per-step cost of SGD / Adam for R replicas at batch b (median of 3 calls of n samples each).
  async function timeTrain(R, b, n, opt, graphs, tf32 = false) {
    process.env.BSX_CUDA_GRAPHS = graphs ? '1' : '0';
    process.env.BSX_CUDA_TF32 = tf32 ? '1' : '0';
    const ens = new addon.Ensemble({ replicas: R, widths, backend: 'cuda' });
    ens.init(Float64Array.from({ length: R }, (_, r) => r + 1));
    ens.setOptimizer(opt);
    const lr = new Float32Array(R).fill(opt === 'sgd' ? 0.01 : 1e-4);
    const idx = idxFor(R, n);
    await ens.train(ds, idx, n, b, lr); // warm-up: dataset upload, workspace, module load
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await ens.train(ds, idx, n, b, lr);
      times.push(performance.now() - t0);
    }
    times.sort((a, b2) => a - b2);
    const ms = times[1];
    const steps = Math.ceil(n / b);
    // fewest bytes per step: weights read in the forward, read + written once in the backward
    // (SGD: 3 passes over the parameters; Adam adds m and v read + written: 7)
    const bytes = R * P * 4 * (opt === 'sgd' ? 3 : 7) * steps;
    delete process.env.BSX_CUDA_GRAPHS;
    delete process.env.BSX_CUDA_TF32;
    return { ms, steps, msPerStep: ms / steps, samplesPerSec: (R * n) / (ms / 1000), paramGBps: bytes / (ms / 1000) / 1e9 };
  }

  // Gradient-study trials (gradTrials) as the study runs them: R replicas, one trial each,
  // a trial = one pass over 1024 samples (samplesPerTrial) at batch b, every replica reset to
  // the snapshot first. The reset is a device-to-device copy of R x P floats, timed as the
  // copy rate (bytes read + written). At b=1 a step is bandwidth-bound: its floor is the
  // weights read in the forward and read + written in the backward (3 x R x P x 4 bytes);
  // `ofCopy` is that traffic's rate over the copy rate. Best of 2 calls per batch size.
  // Frees the device memory of ensembles no longer referenced (their finalizers run after a
  // full collection; `gc` exists when node runs with --expose-gc, as scripts/gpu-run does).
  async function releaseUnreachable() {
    if (typeof globalThis.gc !== 'function') return;
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
    globalThis.gc();
  }

  async function timeTrials(R) {
    const k = 1024;
    const ens = new addon.Ensemble({ replicas: R, widths, backend: 'cuda' });
    ens.init(Float64Array.from({ length: R }, (_, r) => r + 1));
    ens.setOptimizer({ name: 'sgd' });
    ens.snapshot();
    const copies = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      ens.resetToSnapshot();
      copies.push(performance.now() - t0);
    }
    const copyMs = Math.min(...copies);
    const copyGBps = (2 * R * P * 4) / (copyMs / 1000) / 1e9;
    line({ what: `reset to snapshot R=${R} (device-to-device copy)`, ms: copyMs, GBps: copyGBps });
    const edges = Float32Array.from([-1, -1e-3, 0, 1e-3, 1]);
    for (const b of [1, 8, 64, 1024]) {
      const warm = Math.min(k, 16 * b); // the same paths: graph replays, workspace of min(b, n) rows
      ens.resetToSnapshot();
      await ens.gradTrials(ds, idxFor(R, warm), warm, b, 0.01, edges, edges, false);
      const idx = idxFor(R, k);
      let ms = Infinity;
      for (let i = 0; i < 2; i++) {
        ens.resetToSnapshot();
        const t0 = performance.now();
        await ens.gradTrials(ds, idx, k, b, 0.01, edges, edges, false);
        ms = Math.min(ms, performance.now() - t0);
      }
      const steps = Math.ceil(k / b);
      const paramGBps = (3 * R * P * 4 * steps) / (ms / 1000) / 1e9;
      line({
        what: `grad trials R=${R} b=${b} (${k} samples per trial)`,
        ms,
        msPerStep: ms / steps,
        trialsPerSec: R / (ms / 1000),
        samplesPerSec: (R * k) / (ms / 1000),
        paramGBps,
        ...(b === 1 ? { ofCopy: paramGBps / copyGBps } : {}),
      });
    }
  }

  for (const graphs of [true, false]) {
    const r = await timeTrain(2, 1, 2000, 'sgd', graphs);
    line({ what: `train R=2 b=1 sgd graphs=${graphs}`, ...r });
  }
  for (const b of [8, 64, 256, 1024]) {
    const r = await timeTrain(2, b, b * 100, 'sgd', true);
    line({ what: `train R=2 b=${b} sgd`, ...r });
  }
  for (const b of [256, 1024]) {
    const r = await timeTrain(2, b, b * 100, 'sgd', true, true);
    line({ what: `train R=2 b=${b} sgd TF32 (BSX_CUDA_TF32=1)`, ...r });
  }
  for (const opt of ['sgd', 'adam']) {
    const r = await timeTrain(1000, 1, 32, opt, true);
    line({ what: `trial step R=1000 b=1 ${opt}`, ...r });
  }
  {
    const r = await timeTrain(100, 64, 64 * 10, 'sgd', true);
    line({ what: 'train R=100 b=64 sgd', ...r });
  }
  for (const R of [1000, 100]) {
    try {
      await releaseUnreachable(); // the R=1000 ensembles above hold tens of GB of device memory
      await timeTrials(R);
    } catch (err) {
      line({ what: `grad trials R=${R}`, error: String(err?.message ?? err) });
    }
  }
  {
    const ens = new addon.Ensemble({ replicas: 2, widths, backend: 'cuda' });
    ens.init(Float64Array.from([1, 2]));
    await ens.evaluate(ds);
    const t0 = performance.now();
    await ens.evaluate(ds);
    const ms = performance.now() - t0;
    line({ what: 'evaluate R=2 20000 rows', ms, rowsPerSec: (2 * count) / (ms / 1000) });
  }
}

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
