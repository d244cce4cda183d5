// The gradient-competition study (docs/findings.md, F4-F7): from a fixed model (the regime), many
// independent trials per batch size b; each trial draws 1024 training samples, steps through
// them once with batch b (plain SGD, all layers updated) and records statistics of one layer's
// weight gradient (the last layer's unless the spec names another). Trials run R at a time as replicas of one Ensemble; every trial is
// reproducible from (seed, regime, b, trial index), whatever the chunk size.
//
// Both reductions are reported: "mean" (the gradient of the batch-mean loss, the usual
// convention and the engine's) and "sum" (of the batch-sum loss, i.e. b times the mean-reduced
// gradient of each step). Both statistics are reported: |S| the norm of the summed gradient
// S = sum over steps, and the mean over steps of the norm of each step's gradient.

import { Dataset } from '../engine/dataset.js';
import { DEFAULT_WIDTHS, Ensemble, stat, type TrialStats } from '../engine/ensemble.js';
import { BsxError } from '../errors.js';
import { encodeNpy } from '../io/npy.js';
import { Stream, philox4x32, seedKey } from '../rng/philox.js';
import { writeFileAtomic } from '../store/atomic.js';
import { RunStore, type RunData } from '../store/run-store.js';
import { histogram, signedLogEdges, summarize, type Histogram, type Summary } from '../stats/descriptive.js';
import { estimateNoiseScale, type NoiseScaleEstimate } from '../stats/noise-scale.js';
import { fitPowerLaw, type PowerLawFit } from '../stats/regression.js';
import { checkMemory, estimateGradStudyMemory } from './memory.js';
import { runTraining } from './run.js';

export const DEFAULT_BATCH_SIZES: readonly number[] = Object.freeze([1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512, 1024]);

/** Epochs of b1024 at lr 0.01 that make each regime's model. */
export const REGIME_EPOCHS = { early: 2, late: 30 } as const;
export type RegimeName = keyof typeof REGIME_EPOCHS;

/** The model the trials start from: one replica's tensors W0, b0, W1, b1, ... */
export interface RegimeModel {
  name: string;
  /** Counter word of the trial draws: 1 early, 2 late, 3 any other model. */
  code: number;
  widths: number[];
  tensors: Float32Array[];
}

export interface GradStudySpec {
  regime: RegimeModel;
  /** The layer whose weight gradient is measured, from 0 (default: the last). */
  layer?: number;
  batchSizes?: number[];
  trials?: number;
  seed?: number;
  samplesPerTrial?: number;
  lr?: number;
}

export interface GradStudyOptions {
  /** Trials run at once (replicas per chunk); results do not depend on it. */
  chunk?: number;
  backend?: 'cpu' | 'cuda';
  signal?: AbortSignal;
  onEvent?: (e: GradStudyEvent) => void;
  /** Write every trial's S (mean-reduced, [trials, 10, 1024] per b) as .npy, chunk by chunk. */
  exportDir?: string;
  /** Shared edges for the raw-value histograms (mean- and sum-reduced S). */
  edgesMean?: number[];
  edgesSum?: number[];
  /** A point finished earlier (e.g. read from disk): used instead of running its trials. */
  loadPoint?: (b: number) => Promise<GradStudyPoint | undefined>;
  /** Called with each point as soon as its trials are done (e.g. to save it). */
  savePoint?: (point: GradStudyPoint) => Promise<void>;
}

export type GradStudyEvent =
  | { type: 'progress'; b: number; trialsDone: number; trials: number; overallDone: number; overallTotal: number; trialsPerSec: number }
  | { type: 'batchSize'; b: number; point: GradStudyPoint };

export interface NormStats {
  /** |S|: the norm of the gradient summed over the trial's steps. */
  sumNorm: Summary;
  /** mean over steps of the norm of each step's gradient. */
  stepNorm: Summary;
}

export interface GradStudyPoint {
  b: number;
  trials: number;
  /** SGD steps per trial: ceil(samplesPerTrial / b). */
  steps: number;
  /** Gradient of the batch-mean loss. */
  mean: NormStats;
  /** Gradient of the batch-sum loss (b times the mean-reduced gradient of each step). */
  sum: NormStats;
  /** Each statistic times mu(reference b) / mu(b): equal means, spreads compared (F5). */
  scaled: { mean: NormStats; sum: NormStats };
  /** |g_1|^2: the first step, at the regime's weights (the noise-scale estimate uses it). */
  firstStepNorm2: Summary;
  /** Raw values of every trial's S, counted into the shared edges (F7). */
  valueHist: { mean: Histogram; sum: Histogram };
  /** Per-trial values (trial order), for figures. */
  perTrial: { sumNormMean: number[]; stepNormMean: number[]; sumNormSum: number[]; stepNormSum: number[]; firstStepNorm2: number[] };
}

export interface PowerLawFits {
  /** over every batch size */
  all: PowerLawFit;
  /** over b >= 16 (where there are at least 3 such sizes) */
  from16?: PowerLawFit;
}

export interface GradStudyResult {
  regime: string;
  seed: number;
  trials: number;
  samplesPerTrial: number;
  lr: number;
  /** The b whose mean the scaled statistics are matched to (1024, or the largest b). */
  referenceB: number;
  points: GradStudyPoint[];
  /** Power laws mu(b) = c b^k of each statistic's mean (three or more batch sizes). */
  fits?: {
    sumNorm: { mean: PowerLawFits; sum: PowerLawFits };
    stepNorm: { mean: PowerLawFits; sum: PowerLawFits };
  };
  /** B_simple from |g_1|^2 across batch sizes (McCandlish et al. 2018). */
  noiseScale?: NoiseScaleEstimate;
  seconds: number;
}

/**
 * The training samples of one trial: `k` distinct indices of [0, n), a partial Fisher-Yates
 * shuffle drawn from Philox at counter (i, trial, Stream.TrialSamples + b, regimeCode).
 */
export function trialSamples(seed: number, regimeCode: number, b: number, trial: number, n: number, k: number, out?: Int32Array): Int32Array {
  if (k > n) throw new RangeError(`trialSamples: cannot draw ${k} distinct samples from ${n}`);
  const res = out ?? new Int32Array(k);
  const [k0, k1] = seedKey(seed);
  const moved = new Map<number, number>();
  const r = new Uint32Array(4);
  for (let i = 0; i < k; i++) {
    philox4x32(i >>> 0, trial >>> 0, (Stream.TrialSamples + b) >>> 0, regimeCode >>> 0, k0, k1, r);
    const u = ((r[0]! >>> 5) * 67108864 + (r[1]! >>> 6)) / 9007199254740992;
    const j = i + Math.floor(u * (n - i));
    const vi = moved.get(i) ?? i;
    const vj = moved.get(j) ?? j;
    res[i] = vj;
    moved.set(j, vi);
  }
  return res;
}

function fitsOf(points: GradStudyPoint[], pick: (p: GradStudyPoint) => number): PowerLawFits {
  const bs = points.map((p) => p.b);
  const ys = points.map(pick);
  const all = fitPowerLaw(bs, ys);
  const big = points.filter((p) => p.b >= 16);
  return big.length >= 3 ? { all, from16: fitPowerLaw(big.map((p) => p.b), big.map(pick)) } : { all };
}

function scaledSummary(values: number[], factor: number): Summary {
  return summarize(values.map((v) => v * factor));
}

/**
 * The model of a named regime: b1024 at lr 0.01 for REGIME_EPOCHS[name] epochs from `seed`,
 * trained through the run store (or read back from it when it has run before).
 */
export async function regimeModel(
  name: RegimeName,
  data: { train: Dataset; test: Dataset },
  opts: { store: RunStore; data: RunData; seed?: number; widths?: number[]; backend?: 'cpu' | 'cuda'; onStatus?: (s: string) => void; signal?: AbortSignal; onEvent?: Parameters<typeof runTraining>[2]['onEvent'] },
): Promise<RegimeModel> {
  const widths = opts.widths ?? [...DEFAULT_WIDTHS];
  const spec = { widths, seeds: [opts.seed ?? 0], phases: [{ epochs: REGIME_EPOCHS[name], batchSize: 1024, lr: 0.01, optimizer: 'sgd' as const }] };
  const run = await runTraining(spec, data, {
    store: opts.store,
    data: opts.data,
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    onStatus: (s) => opts.onStatus?.(s.type === 'reused' ? `regime ${name}: read from ${s.dir}` : `regime ${name}: training in ${s.dir}`),
  });
  const h = await opts.store.open({ spec: run.spec, data: opts.data }, { wait: true });
  try {
    const cp = await h.loadCheckpoint();
    if (!cp) throw new BsxError('BSX_RUN_CORRUPT', `${h.dir}: finished but has no checkpoint`);
    const tensors = cp.tensors
      .filter((t) => t.slot === 'param')
      .sort((a, z) => a.index - z.index)
      .map((t) => t.data);
    return { name, code: name === 'early' ? 1 : 2, widths, tensors };
  } finally {
    h.release();
  }
}

/** The settings of a gradient study with the defaults filled in. */
export interface GradStudySettings {
  batchSizes: number[];
  trials: number;
  seed: number;
  samplesPerTrial: number;
  lr: number;
  chunk: number;
}

/**
 * Checks the settings of a study whose trials draw from `trainCount` training samples and fills
 * in the defaults (BSX_INVALID_ARGUMENT naming the field): callers check them before any work.
 */
export function gradStudySettings(spec: Omit<GradStudySpec, 'regime'>, trainCount: number, chunkIn?: number): GradStudySettings {
  const bad = (f: string, m: string): never => {
    throw new BsxError('BSX_INVALID_ARGUMENT', `gradient study: ${f} ${m}`);
  };
  const batchSizes = [...(spec.batchSizes ?? DEFAULT_BATCH_SIZES)];
  const trials = spec.trials ?? 1000;
  const seed = spec.seed ?? 0;
  const k = spec.samplesPerTrial ?? 1024;
  const lr = spec.lr ?? 0.01;
  const chunk = chunkIn ?? 32;
  if (batchSizes.length === 0) bad('batchSizes', 'must list at least one batch size');
  batchSizes.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 1 || b > k) bad(`batchSizes[${i}]`, `must be an integer in [1, ${k}] (the samples per trial), got ${b}`);
  });
  if (new Set(batchSizes).size !== batchSizes.length) bad('batchSizes', 'must not repeat a batch size');
  if (!Number.isInteger(trials) || trials < 2) bad('trials', `must be an integer >= 2, got ${trials}`);
  if (!Number.isInteger(k) || k < 1 || k > trainCount) bad('samplesPerTrial', `must be an integer in [1, ${trainCount}] (the training samples), got ${k}`);
  if (!Number.isSafeInteger(seed) || seed < 0) bad('seed', `must be an integer >= 0, got ${seed}`);
  if (!(lr >= 0 && Number.isFinite(lr))) bad('lr', `must be a finite number >= 0 (0: frozen weights), got ${lr}`);
  if (!Number.isInteger(chunk) || chunk < 1) bad('chunk', `must be a positive integer, got ${chunk}`);
  return { batchSizes, trials, seed, samplesPerTrial: k, lr, chunk };
}

/** Runs the study; `data` is the training set the trials draw from. */
export async function gradientStudy(spec: GradStudySpec, data: Dataset, opts: GradStudyOptions = {}): Promise<GradStudyResult> {
  const t0 = performance.now();
  const bad = (f: string, m: string): never => {
    throw new BsxError('BSX_INVALID_ARGUMENT', `gradient study: ${f} ${m}`);
  };
  const { batchSizes, trials, seed, samplesPerTrial: k, lr, chunk } = gradStudySettings(spec, data.count, opts.chunk);
  const widths = spec.regime.widths;
  if (widths[0] !== data.dim || widths[widths.length - 1] !== data.classes) {
    bad('regime', `model ${widths.join('-')} does not fit data of ${data.dim} features and ${data.classes} classes`);
  }
  const L = widths.length - 1;
  const layer = spec.layer ?? L - 1;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) bad('layer', `must be an integer in [0, ${L - 1}] (a layer of ${widths.join('-')}), got ${layer}`);
  const sShape = [widths[layer + 1]!, widths[layer]!];
  const edgesMean = opts.edgesMean ?? signedLogEdges(1e-8, 1e3, 8);
  const edgesSum = opts.edgesSum ?? signedLogEdges(1e-8, 1e6, 8);

  const ensembles = new Map<number, Ensemble>();
  const ensembleFor = (R: number): Ensemble => {
    let e = ensembles.get(R);
    if (!e) {
      // before the first ensemble: saved points (loadPoint) need none
      if (ensembles.size === 0) {
        checkMemory(
          estimateGradStudyMemory({
            chunk,
            trials,
            batchSizes,
            samplesPerTrial: k,
            widths,
            trainCount: data.count,
            backend: opts.backend ?? 'cpu',
            exportS: opts.exportDir !== undefined,
            layer,
          }),
        );
      }
      e = new Ensemble({ replicas: R, widths, backend: opts.backend ?? 'cpu' });
      e.init(Array.from({ length: R }, (_, i) => i));
      spec.regime.tensors.forEach((t, i) => e!.setTensorBroadcast(i, t, 'snapshot'));
      e.setOptimizer('sgd');
      ensembles.set(R, e);
    }
    return e;
  };

  const overallTotal = trials * batchSizes.length;
  let overallDone = 0;
  const points: GradStudyPoint[] = [];
  for (const b of batchSizes) {
    const saved = await opts.loadPoint?.(b);
    if (saved) {
      if (saved.b !== b || saved.trials !== trials) {
        throw new BsxError('BSX_RUN_CORRUPT', `gradient study: the saved point for b=${b} does not match (b=${saved.b}, ${saved.trials} trials)`);
      }
      points.push(saved);
      overallDone += trials;
      opts.onEvent?.({ type: 'progress', b, trialsDone: trials, trials, overallDone, overallTotal, trialsPerSec: Number.NaN });
      continue;
    }
    const cols = { sumNormMean: [] as number[], sumNormSum: [] as number[], stepNormMean: [] as number[], stepNormSum: [] as number[], first: [] as number[] };
    const hm = new Float64Array(edgesMean.length + 2);
    const hs = new Float64Array(edgesSum.length + 2);
    let steps = 0;
    for (let c = 0; c < trials; c += chunk) {
      if (opts.signal?.aborted) throw new BsxError('BSX_CANCELLED', 'gradient study cancelled');
      const R = Math.min(chunk, trials - c);
      const ens = ensembleFor(R);
      ens.resetToSnapshot();
      const idx = new Int32Array(R * k);
      for (let r = 0; r < R; r++) trialSamples(seed, spec.regime.code, b, c + r, data.count, k, idx.subarray(r * k, (r + 1) * k));
      const tc = performance.now();
      const res = await ens.gradTrials(data, idx, { batchSize: b, lr, edgesMean, edgesSum, exportS: opts.exportDir !== undefined, layer });
      const dt = (performance.now() - tc) / 1000;
      const st: TrialStats = res.stats;
      steps = stat(st, 'steps')[0] ?? 0;
      cols.sumNormMean.push(...stat(st, 'sumNormMean'));
      cols.sumNormSum.push(...stat(st, 'sumNormSum'));
      cols.stepNormMean.push(...stat(st, 'stepNormMean'));
      cols.stepNormSum.push(...stat(st, 'stepNormSum'));
      cols.first.push(...stat(st, 'firstStepNorm2'));
      res.hist.mean.forEach((v, i) => (hm[i] += v));
      res.hist.sum.forEach((v, i) => (hs[i] += v));
      if (opts.exportDir !== undefined && res.s) {
        const file = `${opts.exportDir}/b${String(b).padStart(4, '0')}-trials${String(c).padStart(6, '0')}-${String(c + R - 1).padStart(6, '0')}.npy`;
        const { mkdir } = await import('node:fs/promises');
        await mkdir(opts.exportDir, { recursive: true });
        await writeFileAtomic(file, encodeNpy(res.s.data, [R, ...sShape]));
      }
      overallDone += R;
      opts.onEvent?.({ type: 'progress', b, trialsDone: c + R, trials, overallDone, overallTotal, trialsPerSec: R / dt });
    }
    const toHist = (edges: number[], counts: Float64Array): Histogram => ({
      edges: [...edges],
      underflow: counts[0]!,
      counts: Array.from(counts.subarray(1, edges.length)),
      overflow: counts[edges.length]!,
      nan: counts[edges.length + 1]!,
    });
    const point: GradStudyPoint = {
      b,
      trials,
      steps,
      mean: { sumNorm: summarize(cols.sumNormMean), stepNorm: summarize(cols.stepNormMean) },
      sum: { sumNorm: summarize(cols.sumNormSum), stepNorm: summarize(cols.stepNormSum) },
      scaled: undefined as unknown as GradStudyPoint['scaled'],
      firstStepNorm2: summarize(cols.first),
      valueHist: { mean: toHist(edgesMean, hm), sum: toHist(edgesSum, hs) },
      perTrial: {
        sumNormMean: cols.sumNormMean,
        stepNormMean: cols.stepNormMean,
        sumNormSum: cols.sumNormSum,
        stepNormSum: cols.stepNormSum,
        firstStepNorm2: cols.first,
      },
    };
    points.push(point);
    await opts.savePoint?.(point);
    opts.onEvent?.({ type: 'batchSize', b, point });
  }
  points.sort((a, z) => a.b - z.b);
  const ref = points.find((p) => p.b === 1024) ?? points[points.length - 1]!;
  for (const p of points) {
    const f = (a: Summary, r: Summary): number => r.mean / a.mean;
    p.scaled = {
      mean: {
        sumNorm: scaledSummary(p.perTrial.sumNormMean, f(p.mean.sumNorm, ref.mean.sumNorm)),
        stepNorm: scaledSummary(p.perTrial.stepNormMean, f(p.mean.stepNorm, ref.mean.stepNorm)),
      },
      sum: {
        sumNorm: scaledSummary(p.perTrial.sumNormSum, f(p.sum.sumNorm, ref.sum.sumNorm)),
        stepNorm: scaledSummary(p.perTrial.stepNormSum, f(p.sum.stepNorm, ref.sum.stepNorm)),
      },
    };
  }
  const result: GradStudyResult = {
    regime: spec.regime.name,
    seed,
    trials,
    samplesPerTrial: k,
    lr,
    referenceB: ref.b,
    points,
    seconds: 0,
  };
  if (points.length >= 3) {
    result.fits = {
      sumNorm: { mean: fitsOf(points, (p) => p.mean.sumNorm.mean), sum: fitsOf(points, (p) => p.sum.sumNorm.mean) },
      stepNorm: { mean: fitsOf(points, (p) => p.mean.stepNorm.mean), sum: fitsOf(points, (p) => p.sum.stepNorm.mean) },
    };
  }
  if (points.length >= 2) {
    result.noiseScale = estimateNoiseScale(
      points.map((p) => ({ b: p.b, norm2: p.perTrial.firstStepNorm2 })),
      { populationSize: data.count, seed },
    );
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
