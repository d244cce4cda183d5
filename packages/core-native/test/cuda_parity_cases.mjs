// CUDA against CPU, op by op, through the addon: the cases shared by the vitest suite
// (cuda_parity.test.ts) and the plain-node GPU check (scripts/gpu-check.mjs), so that both
// run the same comparisons. Each case builds a CPU and a CUDA ensemble with the same seeds,
// copies the CPU parameters to the CUDA one where they must start equal, and compares one
// operation with its own bound: |cuda - cpu| <= atol + rtol * |cpu|, atol scaled by the
// largest |cpu| of the tensor (both are fp32 with different summation orders; only the
// initialisation must be bit-identical).
// Reference semantics: packages/core-native/src/cpu/cpu_ensemble.cpp.

/** Deterministic pseudo-random numbers for test data (independent of the engine's Philox). */
function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * A learnable synthetic classification set: features uniform in [-1, 1], labels the arg-max of
 * a fixed random linear map (so training makes progress and accuracies are meaningful).
 */
function makeData(addon, count, dim, classes, seed) {
  const rnd = lcg(seed);
  const x = new Float32Array(count * dim);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
  const teacher = new Float64Array(classes * dim);
  for (let i = 0; i < teacher.length; i++) teacher[i] = rnd() * 2 - 1;
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let best = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += teacher[c * dim + k] * x[i * dim + k];
      if (s > best) {
        best = s;
        y[i] = c;
      }
    }
  }
  return { ds: new addon.Dataset(x, y, count, dim, classes), count };
}

function indices(rnd, length, count) {
  const idx = new Int32Array(length);
  for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(rnd() * count);
  return idx;
}

/** Throws with the first offending element when |a - ref| > atolRel * max|ref| + rtol * |ref|. */
export function expectClose(a, ref, atolRel, rtol, what) {
  if (a.length !== ref.length) throw new Error(`${what}: length ${a.length}, expected ${ref.length}`);
  let mx = 0;
  for (let i = 0; i < ref.length; i++) mx = Math.max(mx, Math.abs(ref[i]));
  const atol = atolRel * mx;
  let bad = 0;
  let first = -1;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= atol + rtol * Math.abs(ref[i]))) {
      bad++;
      if (first < 0) first = i;
    }
    worst = Math.max(worst, d / (atol + Math.abs(ref[i]) || 1));
  }
  if (bad > 0) {
    throw new Error(
      `${what}: ${bad} of ${ref.length} elements off; [${first}] cuda ${a[first]} vs cpu ${ref[first]} ` +
        `(atol ${atol.toExponential(2)}, rtol ${rtol})`,
    );
  }
  return worst;
}

/**
 * For Adam, whose per-element step is nearly sign(g) * lr and so amplifies rounding where a
 * gradient is tiny: the parameters' change must agree in norm, ||cuda - cpu|| <= relTol *
 * ||cpu - start||, and no element may differ by more than absMax (a few learning rates).
 */
export function expectUpdateClose(a, ref, start, relTol, absMax, what) {
  let diff2 = 0;
  let move2 = 0;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = a[i] - ref[i];
    diff2 += d * d;
    move2 += (ref[i] - start[i]) ** 2;
    if (!(Math.abs(d) <= worst)) {
      worst = Math.abs(d);
      at = i;
    }
  }
  const rel = Math.sqrt(diff2) / Math.sqrt(move2 || 1e-300);
  if (!(rel <= relTol) || !(worst <= absMax)) {
    throw new Error(
      `${what}: ||cuda - cpu|| / ||cpu - start|| = ${rel.toExponential(2)} (limit ${relTol}), ` +
        `max |cuda - cpu| = ${worst.toExponential(2)} at [${at}] (limit ${absMax.toExponential(2)})`,
    );
  }
  return rel;
}

/** ||a - ref|| / ||ref|| (L2 over the whole tensor). */
function relNorm(a, ref, start) {
  let d2 = 0;
  let r2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const base = start ? start[i] : 0;
    d2 += (a[i] - ref[i]) ** 2;
    r2 += (ref[i] - base) ** 2;
  }
  return Math.sqrt(d2) / Math.sqrt(r2 || 1e-300);
}

/**
 * The elementwise bound first; where it fails, the tensor still passes when its relative L2
 * error (of the change from `start`, when given) is under normTol. A ReLU pre-activation
 * within rounding of zero can fall on different sides in the two backends (seen under
 * emulation: z = -2.6e-7 at b = 256), which changes that unit's gradient and, through
 * backprop, whole rows of the layers below; an indexing error moves the norm far more.
 */
function expectCloseOrNorm(a, ref, atolRel, rtol, normTol, what, log, start) {
  try {
    expectClose(a, ref, atolRel, rtol, what);
  } catch (err) {
    const rel = relNorm(a, ref, start);
    if (!(rel <= normTol)) {
      throw new Error(`${err.message}; relative L2 error ${rel.toExponential(2)} > ${normTol}`);
    }
    log?.(`${what}: elementwise bound missed (a ReLU at its kink?), relative L2 error ${rel.toExponential(2)} <= ${normTol}`);
  }
}

function expectEqualBits(a, ref, what) {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ur = new Uint32Array(ref.buffer, ref.byteOffset, ref.length);
  for (let i = 0; i < ur.length; i++) {
    if (ua[i] !== ur[i]) throw new Error(`${what}: element ${i} differs: cuda ${a[i]} vs cpu ${ref[i]}`);
  }
}

function tensorCount(widths) {
  return 2 * (widths.length - 1);
}

/** A CPU and a CUDA ensemble with the same Xavier init and the same random non-zero biases. */
function makePair(addon, replicas, widths, seed) {
  const cpu = new addon.Ensemble({ replicas, widths, backend: 'cpu' });
  const gpu = new addon.Ensemble({ replicas, widths, backend: 'cuda' });
  const seeds = Float64Array.from({ length: replicas }, (_, r) => seed * 1000 + 17 * r + 1);
  cpu.init(seeds);
  gpu.init(seeds);
  const rnd = lcg(seed + 99);
  for (let l = 0; l < widths.length - 1; l++) {
    const b = new Float32Array(replicas * widths[l + 1]).map(() => (rnd() - 0.5) * 0.2);
    cpu.setTensor('param', 2 * l + 1, b);
    gpu.setTensor('param', 2 * l + 1, b);
  }
  return { cpu, gpu, rnd };
}

function paramsOf(ens, widths) {
  return Array.from({ length: tensorCount(widths) }, (_, t) => ens.getTensor('param', t));
}

function compareUpdates(cpu, gpu, widths, start, relTol, absMax, what) {
  for (let t = 0; t < tensorCount(widths); t++) {
    expectUpdateClose(gpu.getTensor('param', t), cpu.getTensor('param', t), start[t], relTol, absMax, `${what} tensor ${t}`);
  }
}

// start: the parameters before the compared steps (the fallback then compares the changes).
function compareParams(cpu, gpu, widths, atolRel, rtol, what, log, slot = 'param', start = undefined) {
  for (let t = 0; t < tensorCount(widths); t++) {
    expectCloseOrNorm(gpu.getTensor(slot, t), cpu.getTensor(slot, t), atolRel, rtol, TOL.norm,
      `${what} ${slot} tensor ${t}`, log, start?.[t]);
  }
}

/** Copies every parameter CPU -> CUDA (so that each op is compared from equal inputs). */
function syncParams(cpu, gpu, widths) {
  for (let t = 0; t < tensorCount(widths); t++) gpu.setTensor('param', t, cpu.getTensor('param', t));
}

/**
 * Edges -hi .. -lo, lo .. hi, perDecade per decade on each side (the gradient study's layout:
 * one bin spans (-lo, lo)), as float32.
 */
function signedLogEdges(lo, hi, perDecade) {
  const k = Math.round(Math.log10(hi / lo) * perDecade);
  const pos = Array.from({ length: k + 1 }, (_, i) => lo * (hi / lo) ** (i / k));
  return Float32Array.from([...pos.map((x) => -x).reverse(), ...pos]);
}

/**
 * Histogram counts [underflow, bins..., overflow, nan] of the two backends: the same total, and
 * at most max(1, 0.1% of the values) counted in another bin (a value within rounding of an edge
 * may fall on either side of it).
 */
function expectHistClose(a, ref, what) {
  if (a.length !== ref.length) throw new Error(`${what}: ${a.length} counts, expected ${ref.length}`);
  let ta = 0;
  let tr = 0;
  let moved2 = 0;
  for (let k = 0; k < ref.length; k++) {
    ta += a[k];
    tr += ref[k];
    moved2 += Math.abs(a[k] - ref[k]);
  }
  const allowed = Math.max(1, Math.floor(tr / 1000));
  if (ta !== tr || moved2 / 2 > allowed) {
    throw new Error(`${what}: cuda counts ${ta} values, cpu ${tr}; ${moved2 / 2} in another bin (allowed ${allowed}); ` +
      `cuda [${Array.from(a).join(' ')}] cpu [${Array.from(ref).join(' ')}]`);
  }
  return moved2 / 2;
}

const TOL = {
  forward: [1e-5, 1e-4],
  gradient: [1e-5, 1e-3],
  loss: [0, 1e-5],
  stepParams: [1e-5, 1e-4], // one or a few steps from equal parameters
  adamState: [1e-4, 1e-3],
  adamUpdate: [1e-2], // relative norm of the difference of the parameters' change
  stats: [0, 1e-5],
  trialStats: [0, 1e-4], // the norms and step means of a trial of a few dozen steps
  trialSums: [1e-5, 1e-3], // the exported S of the same trials
  training: [0, 3e-2], // losses after epochs of training: trajectories drift apart slowly
  norm: 1e-2, // the relative L2 fallback of expectCloseOrNorm
};

/**
 * The parity cases: [{ name, timeoutMs, run: async (log) => void }] — run() throws on a
 * mismatch and may log details through log(string).
 */
export function parityCases(addon) {
  const cases = [];
  const add = (name, run, timeoutMs = 120_000) => cases.push({ name, run, timeoutMs });

  const configs = [
    { tag: 'mlp 7-5-4-3 R=3', replicas: 3, widths: [7, 5, 4, 3], batches: [1, 3, 8, 64], count: 200 },
    {
      tag: 'mlp 784-1024-1024-10 R=2',
      replicas: 2,
      widths: [784, 1024, 1024, 10],
      batches: [1, 3, 8, 64, 256],
      count: 600,
    },
  ];

  for (const cfg of configs) {
    const { tag, replicas: R, widths } = cfg;
    const C = widths[widths.length - 1];
    let data;
    const dataOf = () => (data ??= makeData(addon, cfg.count, widths[0], C, 5 + widths[0]));

    add(`${tag}: Xavier init is bit-identical`, async () => {
      const { cpu, gpu } = makePair(addon, R, widths, 1);
      cpu.init(Float64Array.from({ length: R }, (_, r) => 123 + r));
      gpu.init(Float64Array.from({ length: R }, (_, r) => 123 + r));
      for (let t = 0; t < tensorCount(widths); t++) {
        expectEqualBits(gpu.getTensor('param', t), cpu.getTensor('param', t), `init tensor ${t}`);
      }
    });

    for (const b of cfg.batches) {
      add(`${tag} b=${b}: forward log-probs`, async () => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 2 + b);
        const idx = indices(rnd, R * b, count);
        expectClose(gpu.forward(ds, idx, b), cpu.forward(ds, idx, b), ...TOL.forward, 'log-probs');
      });

      add(`${tag} b=${b}: gradients`, async (log) => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 3 + b);
        const idx = indices(rnd, R * b, count);
        const gc = cpu.gradients(ds, idx, b);
        const gg = gpu.gradients(ds, idx, b);
        expectClose(gg.loss, gc.loss, ...TOL.loss, 'batch loss');
        for (let t = 0; t < gc.grads.length; t++) {
          expectCloseOrNorm(gg.grads[t], gc.grads[t], ...TOL.gradient, TOL.norm, `gradient tensor ${t}`, log);
        }
      });

      add(`${tag} b=${b}: SGD train steps (short last step)`, async (log) => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 4 + b);
        const n = 3 * b + 1;
        const idx = indices(rnd, R * n, count);
        const lr = Float32Array.from({ length: R }, (_, r) => 0.02 * (r + 1));
        const start = paramsOf(cpu, widths);
        const lc = await cpu.train(ds, idx, n, b, lr);
        const lg = await gpu.train(ds, idx, n, b, lr);
        expectClose(lg, lc, ...TOL.loss, 'train loss');
        compareParams(cpu, gpu, widths, ...TOL.stepParams, 'after SGD', log, 'param', start);
        expectClose(gpu.getOptimizerSteps(), cpu.getOptimizerSteps(), 0, 0, 'optimizer steps');
      });

      add(`${tag} b=${b}: Adam train steps`, async (log) => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 5 + b);
        cpu.setOptimizer({ name: 'adam' });
        gpu.setOptimizer({ name: 'adam' });
        const n = 2 * b + 1;
        const idx = indices(rnd, R * n, count);
        const lr = Float32Array.from({ length: R }, (_, r) => 1e-3 * (r + 1));
        const start = paramsOf(cpu, widths);
        const lc = await cpu.train(ds, idx, n, b, lr);
        const lg = await gpu.train(ds, idx, n, b, lr);
        expectClose(lg, lc, ...TOL.loss, 'train loss');
        compareUpdates(cpu, gpu, widths, start, ...TOL.adamUpdate, 3 * 1e-3 * R, 'after Adam');
        compareParams(cpu, gpu, widths, ...TOL.adamState, 'after Adam', log, 'expAvg');
        compareParams(cpu, gpu, widths, ...TOL.adamState, 'after Adam', log, 'expAvgSq');
      });

      add(`${tag} b=${b}: SGD with momentum, Nesterov and weight decay, per replica`, async (log) => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 7 + b);
        const pick = (xs) => Array.from({ length: R }, (_, r) => xs[r % xs.length]);
        const opt = { name: 'sgd', momentum: pick([0.9, 0.5, 0]), dampening: pick([0, 0.3, 0]), nesterov: pick([true, false, false]), weightDecay: pick([0, 0.01, 0.001]) };
        cpu.setOptimizer(opt);
        gpu.setOptimizer(opt);
        const n = 5 * b + 1;
        const idx = indices(rnd, R * n, count);
        const lr = Float32Array.from({ length: R }, (_, r) => 0.02 * (r + 1));
        const start = paramsOf(cpu, widths);
        const lc = await cpu.train(ds, idx, n, b, lr);
        const lg = await gpu.train(ds, idx, n, b, lr);
        expectClose(lg, lc, ...TOL.loss, 'train loss');
        compareParams(cpu, gpu, widths, ...TOL.stepParams, 'after SGD with momentum', log, 'param', start);
        compareParams(cpu, gpu, widths, ...TOL.adamState, 'after SGD with momentum', log, 'momentumBuffer');
        expectClose(gpu.getOptimizerSteps(), cpu.getOptimizerSteps(), 0, 0, 'optimizer steps');
      });

      add(`${tag} b=${b}: AdamW train steps, decoupled weight decay per replica`, async (log) => {
        const { ds, count } = dataOf();
        const { cpu, gpu, rnd } = makePair(addon, R, widths, 8 + b);
        const opt = { name: 'adamw', weightDecay: Array.from({ length: R }, (_, r) => [0.01, 0.5, 0][r % 3]) };
        cpu.setOptimizer(opt);
        gpu.setOptimizer(opt);
        const n = 2 * b + 1;
        const idx = indices(rnd, R * n, count);
        const lr = Float32Array.from({ length: R }, (_, r) => 1e-3 * (r + 1));
        const start = paramsOf(cpu, widths);
        const lc = await cpu.train(ds, idx, n, b, lr);
        const lg = await gpu.train(ds, idx, n, b, lr);
        expectClose(lg, lc, ...TOL.loss, 'train loss');
        compareUpdates(cpu, gpu, widths, start, ...TOL.adamUpdate, 3 * 1e-3 * R, 'after AdamW');
        compareParams(cpu, gpu, widths, ...TOL.adamState, 'after AdamW', log, 'expAvg');
        compareParams(cpu, gpu, widths, ...TOL.adamState, 'after AdamW', log, 'expAvgSq');
      });
    }

    add(`${tag}: many small steps (graph-replayed loop), SGD then Adam`, async (log) => {
      const { ds, count } = dataOf();
      const { cpu, gpu, rnd } = makePair(addon, R, widths, 6);
      for (const opt of ['sgd', 'adam']) {
        cpu.setOptimizer({ name: opt });
        gpu.setOptimizer({ name: opt });
        const b = 2;
        const n = 40 * b + 1;
        const idx = indices(rnd, R * n, count);
        const lr = Float32Array.from({ length: R }, (_, r) => (opt === 'sgd' ? 0.01 : 1e-4) * (r + 1));
        const start = paramsOf(cpu, widths);
        const lc = await cpu.train(ds, idx, n, b, lr);
        const lg = await gpu.train(ds, idx, n, b, lr);
        expectClose(lg, lc, 0, 1e-4, `${opt} loss`);
        if (opt === 'sgd') {
          compareParams(cpu, gpu, widths, 1e-4, 1e-3, `after 41 ${opt} steps`, log, 'param', start);
        } else {
          compareUpdates(cpu, gpu, widths, start, ...TOL.adamUpdate, 41 * 1e-4 * R, `after 41 ${opt} steps`);
        }
        syncParams(cpu, gpu, widths);
      }
    });

    add(`${tag}: evaluate`, async () => {
      const { ds, count } = dataOf();
      const { cpu, gpu } = makePair(addon, R, widths, 7);
      const start = 3;
      const n = count - 10;
      const ec = await cpu.evaluate(ds, start, n);
      const eg = await gpu.evaluate(ds, start, n);
      expectClose(eg.lossSum, ec.lossSum, ...TOL.loss, 'evaluate lossSum');
      for (let r = 0; r < R; r++) {
        if (Math.abs(eg.correct[r] - ec.correct[r]) > 1) {
          throw new Error(`evaluate correct[${r}]: cuda ${eg.correct[r]} vs cpu ${ec.correct[r]}`);
        }
      }
      if (eg.count !== ec.count) throw new Error(`evaluate count ${eg.count} vs ${ec.count}`);
    });

    add(`${tag}: stats against the snapshot, broadcast, reset to the snapshot`, async () => {
      const { ds, count } = dataOf();
      const { cpu, gpu, rnd } = makePair(addon, R, widths, 8);
      cpu.snapshot();
      gpu.snapshot();
      expectClose(gpu.stats(), cpu.stats(), ...TOL.stats, 'stats at the snapshot');
      const n = 16;
      const idx = indices(rnd, R * n, count);
      const lr = Float32Array.from({ length: R }, () => 0.05);
      await cpu.train(ds, idx, n, 4, lr);
      await gpu.train(ds, idx, n, 4, lr);
      syncParams(cpu, gpu, widths); // compare the reduction, not the training
      expectClose(gpu.stats(), cpu.stats(), ...TOL.stats, 'stats after training');
      expectClose(gpu.getTensor('snapshot', 0), cpu.getTensor('snapshot', 0), 0, 0, 'snapshot tensor 0');
      // one replica's values to all, then every replica back to its snapshot
      const one = new Float32Array(widths[1] * widths[0]).map(() => rnd() - 0.5);
      cpu.setTensorBroadcast('param', 0, one);
      gpu.setTensorBroadcast('param', 0, one);
      expectEqualBits(gpu.getTensor('param', 0), cpu.getTensor('param', 0), 'after setTensorBroadcast');
      cpu.resetToSnapshot();
      gpu.resetToSnapshot();
      for (let t = 0; t < tensorCount(widths); t++) {
        expectEqualBits(gpu.getTensor('param', t), cpu.getTensor('param', t), `after resetToSnapshot, tensor ${t}`);
      }
    });

    // One chunk of the gradient study (gradTrials) per batch size, with a short last step,
    // graph-replayed loops where there are 16 full steps or more, the small-batch and GEMM
    // paths; histograms into the study's signed-log edges, fitted so that both tails are used.
    add(`${tag}: gradient-study chunk CPU vs CUDA`, async (log) => {
      const { ds, count } = dataOf();
      const { cpu, gpu, rnd } = makePair(addon, R, widths, 10);
      cpu.snapshot();
      gpu.snapshot();
      const lr = 0.01;
      const wide = Float32Array.from([-1e30, 1e30]);
      for (const b of cfg.batches) {
        const n = b <= 8 ? 16 * b + 5 : 2 * b + 5;
        const idx = indices(rnd, R * n, count);
        cpu.resetToSnapshot();
        gpu.resetToSnapshot();
        const probe = await cpu.gradTrials(ds, idx, n, b, lr, wide, wide, true);
        cpu.resetToSnapshot();
        let mx = 0;
        for (const v of probe.s) mx = Math.max(mx, Math.abs(v));
        const edgesMean = signedLogEdges(mx * 1e-4, mx * 0.5, 4);
        const edgesSum = signedLogEdges(mx * b * 1e-3, mx * b * 0.7, 3);
        const stepsBefore = Array.from(gpu.getOptimizerSteps());
        const rc = await cpu.gradTrials(ds, idx, n, b, lr, edgesMean, edgesSum, true);
        const rg = await gpu.gradTrials(ds, idx, n, b, lr, edgesMean, edgesSum, true);
        const what = `b=${b} n=${n}`;
        const pick = (st, cols) => Float64Array.from({ length: R * cols.length }, (_, i) => st[Math.floor(i / cols.length) * 6 + cols[i % cols.length]]);
        const worst = expectClose(pick(rg.stats, [0, 1, 2, 3, 4]), pick(rc.stats, [0, 1, 2, 3, 4]), ...TOL.trialStats, `${what} stats`);
        expectClose(pick(rg.stats, [5]), Float64Array.from({ length: R }, () => Math.ceil(n / b)), 0, 0, `${what} steps`);
        expectCloseOrNorm(rg.s, rc.s, ...TOL.trialSums, TOL.norm, `${what} exported S_mean`, log);
        const movedMean = expectHistClose(rg.histMean, rc.histMean, `${what} histogram of S_mean`);
        const movedSum = expectHistClose(rg.histSum, rc.histSum, `${what} histogram of S_sum`);
        compareParams(cpu, gpu, widths, 1e-4, 1e-3, `${what} after the trials`, log);
        const steps = Array.from(gpu.getOptimizerSteps(), (s, r) => s - stepsBefore[r]);
        if (steps.some((s) => s !== Math.ceil(n / b))) throw new Error(`${what}: optimizer steps ${steps}, expected ${Math.ceil(n / b)}`);
        log?.(`${what}: stats worst rel ${worst.toExponential(2)}; under/over/nan of S_mean ` +
          `${rc.histMean[0]}/${rc.histMean[edgesMean.length]}/${rc.histMean[edgesMean.length + 1]}; ` +
          `values in another bin: ${movedMean} (mean), ${movedSum} (sum)`);
      }
    }, 300_000);
  }

  add('mlp 784-128-64-10 R=2: three epochs on synthetic data agree (loose)', async (log) => {
    const widths = [784, 128, 64, 10];
    const R = 2;
    const { ds, count } = makeData(addon, 2000, widths[0], 10, 77);
    const test = makeData(addon, 500, widths[0], 10, 78);
    const { cpu, gpu } = makePair(addon, R, widths, 9);
    const rnd = lcg(4242);
    const lr = Float32Array.from({ length: R }, (_, r) => 0.05 * (r + 1));
    for (const b of [32, 1]) {
      for (let epoch = 0; epoch < (b === 1 ? 1 : 3); epoch++) {
        const idx = new Int32Array(R * count);
        for (let r = 0; r < R; r++) {
          const perm = Int32Array.from({ length: count }, (_, i) => i);
          for (let i = count - 1; i > 0; i--) {
            const j = Math.floor(rnd() * (i + 1));
            [perm[i], perm[j]] = [perm[j], perm[i]];
          }
          idx.set(perm, r * count);
        }
        const epochLr = b === 1 ? lr.map((x) => x / 10) : lr;
        const lc = await cpu.train(ds, idx, count, b, epochLr);
        const lg = await gpu.train(ds, idx, count, b, epochLr);
        log?.(`b=${b} epoch ${epoch}: train loss cpu ${Array.from(lc, (x) => x.toFixed(5))} cuda ${Array.from(lg, (x) => x.toFixed(5))}`);
        expectClose(lg, lc, ...TOL.training, `b=${b} epoch ${epoch} train loss`);
      }
    }
    const ec = await cpu.evaluate(test.ds);
    const eg = await gpu.evaluate(test.ds);
    expectClose(eg.lossSum, ec.lossSum, ...TOL.training, 'test loss after training');
    for (let r = 0; r < R; r++) {
      if (Math.abs(eg.correct[r] - ec.correct[r]) > 0.02 * test.count) {
        throw new Error(`test accuracy of replica ${r}: cuda ${eg.correct[r]} vs cpu ${ec.correct[r]} of ${test.count}`);
      }
    }
  }, 300_000);

  return cases;
}

/** Why the CUDA cases cannot run here, or null when they can. */
export function cudaUnavailableReason(addon) {
  const cuda = addon.info().cuda;
  if (cuda.available) return null;
  return cuda.compiled
    ? `CUDA is compiled in but unavailable: ${cuda.reason}`
    : `the addon was built without CUDA: ${cuda.reason}`;
}
