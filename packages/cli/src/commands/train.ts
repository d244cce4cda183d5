// bsx train: one training run (one or more seeds, one or more phases) through the run store,
// with per-epoch evaluation on the full train and test sets.

import { resolve } from 'node:path';
import {
  BsxError,
  RunStore,
  checkMemory,
  estimateTrainingMemory,
  parsePhases,
  peekMnist,
  resolveDevice,
  runTraining,
  normalizeOptimizer,
  optimizerDescriptor,
  optimizers,
  parseOptimizer,
  type EpochMetrics,
  type OptimizerSpec,
  type Phase,
  type StoredRunResult,
  type TrainEvent,
} from '@bsx/core';
import { loadData } from '../data.js';
import { num, pct, table } from '../format.js';
import { ProgressBar } from '../progress.js';

export interface TrainCommandOptions {
  batchSize: number;
  lr: number;
  epochs: number;
  /** NAME or NAME(key=value,...) */
  optimizer: string;
  phases?: string;
  /** Hyperparameter options (--momentum, --weight-decay, ...), by the engine's names. */
  [hyperparameter: string]: unknown;
  seed: number;
  seeds: number;
  trainLimit?: number;
  testLimit?: number;
  data?: string;
  device: 'auto' | 'cpu' | 'cuda';
  out: string;
  resume: boolean;
  wait?: boolean;
  export?: boolean;
  checkpointEvery: number;
  json?: boolean;
}

/**
 * The optimiser of the single-phase options: --optimizer NAME[(k=v,...)] plus the
 * hyperparameter options, each of which must belong to that optimiser.
 */
export function optimizerOf(opts: Record<string, unknown>): OptimizerSpec {
  const base = parseOptimizer(String(opts.optimizer ?? 'sgd'), '--optimizer');
  const spec: Record<string, unknown> = typeof base === 'string' ? { name: base } : { ...base };
  const d = optimizerDescriptor(spec.name as string, '--optimizer');
  const all = new Set(optimizers().flatMap((o) => o.hyperparameters.map((h) => h.name)));
  for (const name of all) {
    if (opts[name] === undefined) continue;
    const flag = `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    if (!d.hyperparameters.some((h) => h.name === name)) {
      throw new BsxError(
        'BSX_INVALID_ARGUMENT',
        `${flag}: not a hyperparameter of ${d.name} (its hyperparameters: ${d.hyperparameters.map((h) => h.name).join(', ') || 'none'})`,
      );
    }
    spec[name] = opts[name];
  }
  return normalizeOptimizer(spec as OptimizerSpec, '--optimizer');
}

/** The phases of the run: --phases when given, else one phase from the single-phase options. */
export function phasesOf(opts: TrainCommandOptions): Phase[] {
  if (opts.phases !== undefined) {
    const all = optimizers().flatMap((o) => o.hyperparameters.map((h) => h.name));
    const extra = all.find((n) => opts[n] !== undefined);
    if (extra !== undefined) {
      throw new BsxError('BSX_INVALID_ARGUMENT', `--phases gives each phase its own optimizer; write ${extra} inside it, e.g. 64x2@0.01:sgd(momentum=0.9)`);
    }
    return parsePhases(opts.phases);
  }
  return [{ epochs: opts.epochs, batchSize: opts.batchSize, lr: opts.lr, optimizer: optimizerOf(opts) }];
}

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(v) };
}

/** Mean and sample standard deviation over seeds of the last epoch's metrics. */
export function acrossSeeds(result: StoredRunResult): Record<string, { mean: number; std: number }> {
  const last = result.seeds.map((s) => s.epochs[s.epochs.length - 1]!).filter((m) => m !== undefined);
  const keys: (keyof EpochMetrics)[] = ['trainLoss', 'trainAcc', 'testLoss', 'testAcc', 'weightDistance', 'biasDistance', 'weightNorm', 'biasNorm'];
  const out: Record<string, { mean: number; std: number }> = {};
  for (const k of keys) out[k] = meanStd(last.map((m) => m[k] as number));
  return out;
}

export async function trainCommand(opts: TrainCommandOptions): Promise<void> {
  const phases = phasesOf(opts);
  const device = resolveDevice(opts.device);
  if (device.note && !opts.json) process.stderr.write(`bsx: ${device.note}\n`);
  // the memory the run needs, from the sizes in the files' headers, before anything is loaded
  const sizes = await peekMnist({
    ...(opts.data !== undefined ? { dir: opts.data } : {}),
    ...(opts.trainLimit !== undefined ? { trainLimit: opts.trainLimit } : {}),
    ...(opts.testLimit !== undefined ? { testLimit: opts.testLimit } : {}),
  });
  checkMemory(
    estimateTrainingMemory({
      replicas: opts.seeds,
      phases,
      trainCount: sizes.train.count,
      testCount: sizes.test.count,
      backend: device.kind,
      checkpoints: true,
    }),
  );
  const data = await loadData({ ...opts, store: resolve(opts.out) });
  const seeds = Array.from({ length: opts.seeds }, (_, i) => opts.seed + i);
  const spec = { seeds, phases };
  const store = new RunStore(resolve(opts.out));

  let bar: ProgressBar | undefined;
  let stepsDone = 0;
  let stepsPerEpoch: number[] = [];
  const say = (line: string): void => {
    if (opts.json) return;
    if (bar) bar.log(line);
    else process.stderr.write(`${line}\n`);
  };
  const onEvent = (e: TrainEvent): void => {
    if (e.type === 'start') {
      stepsPerEpoch = e.stepsPerEpoch;
      const total = phases.reduce((a, p, i) => a + p.epochs * stepsPerEpoch[i]!, 0);
      bar = new ProgressBar({ total, label: 'train' });
    } else if (e.type === 'progress') {
      bar?.update(
        stepsDone + e.step,
        `epoch ${e.epoch}/${e.totalEpochs} step ${e.step}/${e.stepsInEpoch} loss ${e.loss.toFixed(4)} ${Math.round(e.samplesPerSec)} samples/s`,
      );
    } else if (e.type === 'evaluating') {
      bar?.update(stepsDone, `epoch ${e.epoch}: evaluating`, true);
    } else if (e.type === 'epoch') {
      stepsDone += stepsPerEpoch[e.metrics[0]!.phase]!;
      const acc = e.metrics.map((m) => pct(m.testAcc)).join(' ');
      const loss = e.metrics.map((m) => num(m.trainLoss)).join(' ');
      say(`epoch ${e.epoch}/${e.totalEpochs}: train loss ${loss} | test acc ${acc} | ${Math.round(e.metrics[0]!.samplesPerSec)} samples/s`);
    }
  };
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
    say('bsx: interrupted; stopping after the current chunk (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  let result: StoredRunResult;
  try {
    result = await runTraining(spec, data, {
      store,
      data: data.identity,
      backend: device.kind,
      resume: opts.resume,
      wait: opts.wait ?? false,
      exportWeights: opts.export ?? false,
      checkpointEverySeconds: opts.checkpointEvery,
      onEvent,
      signal: ac.signal,
      onStatus: (s) => {
        if (s.type === 'reused') say(`bsx: this run has finished before; reading it from ${s.dir}`);
        else if (s.type === 'resumed') say(`bsx: resuming ${s.dir} after epoch ${s.epoch}`);
        else say(`bsx: run directory ${s.dir}`);
      },
    });
  } catch (err) {
    if (err instanceof BsxError && err.code === 'BSX_CANCELLED') {
      bar?.finish();
      throw new BsxError('BSX_CANCELLED', 'interrupted; the last finished epoch is saved: run the same command again to resume');
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
    bar?.finish();
  }

  if (opts.json) {
    const seedOut = result.seeds.map((s) => ({
      seed: s.seed,
      initial: s.initial,
      epochs: s.epochs,
      ...(s.divergedAtEpoch !== undefined ? { divergedAtEpoch: s.divergedAtEpoch } : {}),
    }));
    const common = {
      spec: result.spec,
      description: result.description,
      runDir: result.dir,
      reused: result.reused,
      ...(result.resumedFromEpoch !== undefined ? { resumedFromEpoch: result.resumedFromEpoch } : {}),
      ...(result.exportDir ? { exportDir: result.exportDir } : {}),
      backend: result.backend,
      data: { ...data.identity, dir: data.dir, trainCount: result.trainCount, testCount: result.testCount },
      seconds: result.seconds,
    };
    const out =
      seedOut.length === 1
        ? { ...common, ...seedOut[0]! }
        : { ...common, seeds: seedOut, acrossSeeds: acrossSeeds(result) };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }

  for (const s of result.seeds) {
    process.stdout.write(
      `\nseed ${s.seed}: initial weight norm ${num(s.initial.weightNorm, 3)}, bias norm ${num(s.initial.biasNorm, 3)}${
        s.divergedAtEpoch !== undefined ? `, DIVERGED at epoch ${s.divergedAtEpoch}` : ''
      }\n`,
    );
    const rows = s.epochs.map((m) => [
      m.epoch,
      num(m.trainLoss),
      pct(m.trainAcc),
      num(m.testLoss),
      pct(m.testAcc),
      num(m.weightDistance, 3),
      num(m.biasDistance, 3),
      num(m.weightNorm, 3),
      m.cosine.map((c) => c.toFixed(3)).join(' '),
      Math.round(m.samplesPerSec),
    ]);
    process.stdout.write(
      `${table(['epoch', 'train loss', 'train acc', 'test loss', 'test acc', 'W dist', 'b dist', 'W norm', 'cosine/layer', 'samples/s'], rows)}\n`,
    );
  }
  if (result.seeds.length > 1) {
    const a = acrossSeeds(result);
    process.stdout.write(
      `\nacross ${result.seeds.length} seeds (last epoch): test acc ${pct(a.testAcc!.mean)} +- ${pct(a.testAcc!.std)}, W dist ${num(a.weightDistance!.mean, 3)} +- ${num(a.weightDistance!.std, 3)}\n`,
    );
  }
  process.stdout.write(`\n${result.description}\n${result.reused ? 'read from' : `${result.seconds.toFixed(1)} s on ${result.backend}; saved in`} ${result.dir}\n`);
  if (result.exportDir) process.stdout.write(`weights exported to ${result.exportDir}\n`);
}
