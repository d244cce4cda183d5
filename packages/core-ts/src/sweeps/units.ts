// The planner the finding suite and the sweeps share: units of work (training runs, packs of
// runs, gradient studies) with their state in the run store (done, partial: an interrupted run
// that resumes, todo), who holds them (the leases of the store's locks), and the time each
// needs from the engine's speed measured on the spot; the events their runners send to a
// progress display. Units go to shards with shards.ts.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/dataset.js';
import { Ensemble } from '../engine/ensemble.js';
import type { GradStudyPoint } from '../experiments/grad-study.js';
import type { TrainSpec } from '../experiments/train.js';
import type { LockInfo } from '../store/lock.js';
import { CHECKPOINT_DIR, SUMMARY_FILE, type RunData, type RunStore } from '../store/run-store.js';
import { arrayOf, fileError, integer, numberOrNull, object, parseJsonFile, type Check } from '../store/validate.js';
import type { Histogram, Summary } from '../stats/descriptive.js';

export type PlanStatus = 'done' | 'partial' | 'todo';

/** A unit of work in a plan. */
export interface PlanItem {
  kind: 'run' | 'grad';
  key: string;
  label: string;
  status: PlanStatus;
  /** Estimated seconds for what is left of it. */
  estimate: number;
  /** The shard (from 1) the unit belongs to, when the plan is for shards. */
  shard?: number;
  /** Who holds the unit's work now (the leases of the run store's locks). */
  heldBy?: LockInfo[];
}

/** What a runner of units tells a progress display. */
export type UnitEvent<I extends PlanItem = PlanItem> =
  | { type: 'plan'; items: I[]; estimate: number; speed: SpeedModel }
  | { type: 'start'; item: I }
  | { type: 'progress'; item: I; fraction: number; overall: number; detail: string }
  | { type: 'done'; item: I; seconds: number; reused?: boolean };

/** A speed model of zeros: plans without estimates (status displays, read-only reports). */
export const NO_SPEED: SpeedModel = { trainAlpha: 0, trainBeta: 0, evalPerSample: 0, trialAlpha: 0, trialBeta: 0 };

/** A run's state in the store: finished, a checkpoint to resume from (its epoch), or nothing; its folder. */
export async function storedRunState(store: RunStore, spec: Required<TrainSpec>, data: RunData): Promise<{ status: PlanStatus; epochs: number; dir: string }> {
  const dir = store.runDir({ spec, data });
  if (existsSync(join(dir, SUMMARY_FILE))) return { status: 'done', epochs: Infinity, dir };
  const state = join(dir, CHECKPOINT_DIR, 'state.json');
  if (existsSync(state)) {
    // for the estimate only: the checkpoint is checked when the run resumes
    let epochs = 0;
    try {
      const s = JSON.parse(await readFile(state, 'utf8')) as { epoch?: unknown } | null;
      if (Number.isSafeInteger(s?.epoch) && (s!.epoch as number) >= 0) epochs = s!.epoch as number;
    } catch {
      // unreadable: estimated from the start
    }
    return { status: 'partial', epochs, dir };
  }
  return { status: 'todo', epochs: 0, dir };
}

/** Seconds a run needs after `doneEpochs` epochs: training and the evaluation after each epoch, every seed. */
export function trainingSecondsLeft(m: SpeedModel, spec: Pick<TrainSpec, 'seeds' | 'phases'>, trainCount: number, testCount: number, doneEpochs: number): number {
  let epoch = 0;
  let s = 0;
  for (const p of spec.phases) {
    for (let e = 0; e < p.epochs; e++) {
      epoch++;
      if (epoch <= doneEpochs) continue;
      s += spec.seeds.length * (trainCount * trainCost(m, p.batchSize) + (trainCount + testCount) * m.evalPerSample);
    }
  }
  return s;
}

// Gradient-study points as the suite and the sweeps keep them (one file per batch size)

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
  /**
   * Seconds per element of the measured weight per trial step, per replica, beyond those of the
   * last layer's (the trials sum the measured layer's gradient at every step): measured on the
   * first layer when the model has more than one.
   */
  trialPerElementStep?: number;
}

/** Seconds per training sample (one replica) at batch b. */
export const trainCost = (m: SpeedModel, b: number): number => m.trainAlpha + m.trainBeta / b;
/** Seconds per trial sample (one replica) at batch b. */
export const trialCost = (m: SpeedModel, b: number): number => m.trialAlpha + m.trialBeta / b;

/**
 * Seconds of `trials` gradient trials of `samples` samples at batch b, per replica, measuring the
 * weight gradient of a layer of `numel` elements (`lastNumel`: the last layer's).
 */
export function trialSeconds(m: SpeedModel, b: number, trials: number, samples: number, numel: number, lastNumel: number): number {
  const steps = Math.ceil(samples / b);
  return trials * (samples * trialCost(m, b) + steps * Math.max(0, numel - lastNumel) * (m.trialPerElementStep ?? 0));
}

/**
 * Measures the engine on the real data: a few steps at two batch sizes, an evaluation, trials;
 * with the model `widths` (default the study's 784-1024-1024-10).
 */
export async function measureSpeed(
  data: { train: Dataset; test: Dataset },
  replicas: number,
  backend: 'cpu' | 'cuda',
  chunk: number,
  widths?: readonly number[],
): Promise<SpeedModel> {
  const w = widths ? { widths: [...widths] } : {};
  const ens = new Ensemble({ replicas, backend, ...w });
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
  const g = new Ensemble({ replicas: R, backend, ...w });
  g.init(Array.from({ length: R }, (_, i) => i));
  g.snapshot();
  const trial = async (b: number, n: number, layer?: number): Promise<number> => {
    const idx = new Int32Array(R * n).map((_, i) => (i * 104729) % N);
    const t = performance.now();
    await g.gradTrials(data.train, idx, { batchSize: b, lr: 0.01, edgesMean: [-1, 1], edgesSum: [-1, 1], ...(layer !== undefined ? { layer } : {}) });
    return (performance.now() - t) / 1000 / (R * n);
  };
  await trial(8, 8);
  const tr1 = await trial(1, 16);
  const trBig = await trial(big, big);
  // the first layer's gradient summed at every step (b = 1: one step per sample)
  const L = g.layers;
  const numel = (l: number): number => g.widths[l]! * g.widths[l + 1]!;
  let trialPerElementStep: number | undefined;
  if (L > 1 && numel(0) > numel(L - 1)) trialPerElementStep = Math.max(0, (await trial(1, 16, 0)) - tr1) / (numel(0) - numel(L - 1));
  ens.dispose();
  g.dispose();
  const trialBeta = Math.max(0, (tr1 - trBig) / (1 - 1 / big));
  return {
    trainAlpha,
    trainBeta,
    evalPerSample,
    trialAlpha: Math.max(1e-12, trBig - trialBeta / big),
    trialBeta,
    ...(trialPerElementStep !== undefined ? { trialPerElementStep } : {}),
  };
}

