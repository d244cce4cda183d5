// bsx grad-study: the gradient-competition study (F4-F7) from the early or late regime, for the
// weight gradient of one layer (the last by default).

import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  BsxError,
  DEFAULT_WIDTHS,
  REGIME_EPOCHS,
  RunStore,
  checkMemory,
  estimateGradStudyMemory,
  estimateTrainingMemory,
  gradStudySettings,
  gradientStudy,
  peekMnist,
  regimeModel,
  resolveDevice,
  type GradStudyResult,
  type PowerLawFits,
  type RegimeName,
} from '@bsx/core';
import { loadData } from '../data.js';
import { table } from '../format.js';
import { ProgressBar } from '../progress.js';

export interface GradStudyCommandOptions {
  regime: RegimeName;
  batchSizes: number[];
  trials: number;
  seed: number;
  chunk: number;
  samplesPerTrial: number;
  lr: number;
  /** From 1; default the last. */
  layer?: number;
  trainLimit?: number;
  data?: string;
  device: 'auto' | 'cpu' | 'cuda';
  out: string;
  export?: string;
  json?: boolean;
}

const sig = (x: number): string => (Number.isFinite(x) ? x.toPrecision(4) : String(x));

function fitLine(name: string, f: PowerLawFits): string {
  const one = (label: string, p: PowerLawFits['all']): string =>
    `${label}: exponent ${p.exponent.toFixed(3)} [${p.exponentCi95[0].toFixed(3)}, ${p.exponentCi95[1].toFixed(3)}] (R^2 ${p.r2.toFixed(3)})`;
  return `  ${name.padEnd(26)} ${one('all b', f.all)}${f.from16 ? `; ${one('b >= 16', f.from16)}` : ''}`;
}

/** The JSON a tool reads: mean-reduced statistics per b, the sum-reduced beside them, the fits. */
export function gradStudyJson(r: GradStudyResult, layer: number): unknown {
  return {
    regime: r.regime,
    layer,
    seed: r.seed,
    trials: r.trials,
    samplesPerTrial: r.samplesPerTrial,
    lr: r.lr,
    reduction: 'mean',
    note:
      'sumNorm and stepNorm are for the gradient of the batch-MEAN loss; sumReduced holds the same for the batch-SUM loss, ' +
      'i.e. b times each step\'s mean-reduced gradient (exactly b times when b divides samplesPerTrial; a short last step uses its own size)',
    referenceB: r.referenceB,
    points: r.points.map((p) => ({
      b: p.b,
      steps: p.steps,
      trials: p.trials,
      sumNorm: { mean: p.mean.sumNorm.mean, std: p.mean.sumNorm.std, p05: p.mean.sumNorm.p05, p50: p.mean.sumNorm.p50, p95: p.mean.sumNorm.p95 },
      stepNorm: { mean: p.mean.stepNorm.mean, std: p.mean.stepNorm.std, p05: p.mean.stepNorm.p05, p50: p.mean.stepNorm.p50, p95: p.mean.stepNorm.p95 },
      sumReduced: {
        sumNorm: { mean: p.sum.sumNorm.mean, std: p.sum.sumNorm.std },
        stepNorm: { mean: p.sum.stepNorm.mean, std: p.sum.stepNorm.std },
      },
      scaled: {
        sumNorm: { mean: p.scaled.mean.sumNorm.mean, std: p.scaled.mean.sumNorm.std },
        stepNorm: { mean: p.scaled.mean.stepNorm.mean, std: p.scaled.mean.stepNorm.std },
        sumReduced: {
          sumNorm: { mean: p.scaled.sum.sumNorm.mean, std: p.scaled.sum.sumNorm.std },
          stepNorm: { mean: p.scaled.sum.stepNorm.mean, std: p.scaled.sum.stepNorm.std },
        },
      },
      firstStepNorm2: { mean: p.firstStepNorm2.mean, std: p.firstStepNorm2.std },
      valueHistogram: {
        mean: { underflow: p.valueHist.mean.underflow, overflow: p.valueHist.mean.overflow, nan: p.valueHist.mean.nan },
        sum: { underflow: p.valueHist.sum.underflow, overflow: p.valueHist.sum.overflow, nan: p.valueHist.sum.nan },
      },
    })),
    fits: r.fits,
    noiseScale: r.noiseScale,
    seconds: r.seconds,
  };
}

export async function gradStudyCommand(opts: GradStudyCommandOptions): Promise<void> {
  const device = resolveDevice(opts.device);
  if (device.note && !opts.json) process.stderr.write(`bsx: ${device.note}\n`);
  // every option and the memory of the regime run and of the trials, from the files' headers,
  // before any work
  const sizes = await peekMnist({
    ...(opts.data !== undefined ? { dir: opts.data } : {}),
    ...(opts.trainLimit !== undefined ? { trainLimit: opts.trainLimit } : {}),
  });
  const settings = gradStudySettings(
    { batchSizes: opts.batchSizes, trials: opts.trials, seed: opts.seed, samplesPerTrial: opts.samplesPerTrial, lr: opts.lr },
    sizes.train.count,
    opts.chunk,
  );
  // the regime's model is the study's 784-1024-1024-10: layers 1 to 3
  const layers = DEFAULT_WIDTHS.length - 1;
  const layer = opts.layer ?? layers;
  if (layer > layers) throw new BsxError('BSX_INVALID_ARGUMENT', `--layer must be a layer of ${DEFAULT_WIDTHS.join('-')} (1 to ${layers}), got ${layer}`);
  const exportDir = opts.export !== undefined ? resolve(opts.export) : undefined;
  if (exportDir !== undefined && statSync(exportDir, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new BsxError('BSX_INVALID_ARGUMENT', `--export ${exportDir} is not a directory`);
  }
  checkMemory(
    estimateTrainingMemory({
      replicas: 1,
      phases: [{ batchSize: 1024, optimizer: 'sgd' }],
      trainCount: sizes.train.count,
      testCount: sizes.test.count,
      backend: device.kind,
      checkpoints: true,
      what: `regime ${opts.regime}: b1024 for ${REGIME_EPOCHS[opts.regime]} epochs`,
    }),
  );
  checkMemory(
    estimateGradStudyMemory({
      ...settings,
      trainCount: sizes.train.count,
      backend: device.kind,
      exportS: exportDir !== undefined,
      layer: layer - 1,
    }),
  );
  if (exportDir !== undefined) {
    try {
      await mkdir(exportDir, { recursive: true });
    } catch (err) {
      throw new BsxError('BSX_INVALID_ARGUMENT', `--export ${exportDir} cannot be made a folder (${(err as Error).message})`, { cause: err });
    }
  }
  const data = await loadData({ ...opts, testLimit: undefined, store: resolve(opts.out) });
  const store = new RunStore(resolve(opts.out));
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  const say = (s: string): void => {
    if (!opts.json) process.stderr.write(`bsx: ${s}\n`);
  };
  let bar: ProgressBar | undefined;
  try {
    let regimeBar: ProgressBar | undefined;
    const model = await regimeModel(opts.regime, data, {
      store,
      data: data.identity,
      seed: opts.seed,
      backend: device.kind,
      signal: ac.signal,
      onStatus: say,
      onEvent: (e) => {
        if (e.type === 'start') regimeBar = new ProgressBar({ total: e.totalEpochs * e.stepsPerEpoch[0]!, label: `regime ${opts.regime}` });
        if (e.type === 'progress') regimeBar?.update((e.epoch - 1) * e.stepsInEpoch + e.step, `epoch ${e.epoch}/${e.totalEpochs}`);
      },
    });
    regimeBar?.finish();
    bar = new ProgressBar({ total: settings.trials * settings.batchSizes.length, label: 'trials' });
    const result = await gradientStudy(
      { regime: model, layer: layer - 1, batchSizes: settings.batchSizes, trials: settings.trials, seed: settings.seed, samplesPerTrial: settings.samplesPerTrial, lr: settings.lr },
      data.train,
      {
        chunk: settings.chunk,
        backend: device.kind,
        signal: ac.signal,
        ...(exportDir !== undefined ? { exportDir } : {}),
        onEvent: (e) => {
          if (e.type === 'progress') bar!.update(e.overallDone, `b ${e.b}: ${e.trialsDone}/${e.trials} trials, ${e.trialsPerSec.toFixed(1)} trials/s`);
        },
      },
    );
    bar.finish();
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(gradStudyJson(result, layer), null, 2)}\n`);
      return;
    }
    const rows = result.points.map((p) => [
      p.b,
      p.steps,
      sig(p.mean.sumNorm.mean),
      sig(p.mean.sumNorm.std),
      sig(p.mean.stepNorm.mean),
      sig(p.sum.sumNorm.mean),
      sig(p.sum.stepNorm.mean),
      sig(p.scaled.mean.sumNorm.std),
    ]);
    process.stdout.write(
      `\nregime ${result.regime}, layer ${layer}, ${result.trials} trials per batch size, ${result.samplesPerTrial} samples per trial, lr ${result.lr}\n` +
        `${table(['b', 'steps', '|S| mean-red.', 'std', 'mean|g| mean-red.', '|S| sum-red.', 'mean|g| sum-red.', 'std |S| scaled'], rows)}\n`,
    );
    if (result.fits) {
      process.stdout.write('\npower laws mu(b) = c b^k (95% intervals):\n');
      process.stdout.write(`${fitLine('|S|, mean-reduced', result.fits.sumNorm.mean)}\n`);
      process.stdout.write(`${fitLine('|S|, sum-reduced', result.fits.sumNorm.sum)}\n`);
      process.stdout.write(`${fitLine('mean |g|, mean-reduced', result.fits.stepNorm.mean)}\n`);
      process.stdout.write(`${fitLine('mean |g|, sum-reduced', result.fits.stepNorm.sum)}\n`);
    }
    if (result.noiseScale) {
      const n = result.noiseScale;
      process.stdout.write(
        `\ngradient noise scale B_simple = ${sig(n.bSimple)} [${sig(n.ci95[0])}, ${sig(n.ci95[1])}] (|G|^2 ${sig(n.gradNorm2)}, tr(Sigma) ${sig(n.traceCov)}; layer ${layer}, at the regime's weights)\n`,
      );
    }
    process.stdout.write(`\n${result.seconds.toFixed(1)} s\n`);
  } catch (err) {
    if (err instanceof BsxError && err.code === 'BSX_CANCELLED') throw new BsxError('BSX_CANCELLED', 'interrupted');
    throw err;
  } finally {
    bar?.finish();
    process.removeListener('SIGINT', onSigint);
  }
}
