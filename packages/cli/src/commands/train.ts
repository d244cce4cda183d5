// bsx train: one training run (one or more seeds) with per-epoch evaluation on the full
// train and test sets.

import { resolveDevice, train, type OptimizerKind, type TrainEvent } from '@bsx/core';
import { loadData } from '../data.js';
import { num, pct, table } from '../format.js';
import { ProgressBar } from '../progress.js';

export interface TrainCommandOptions {
  batchSize: number;
  lr: number;
  epochs: number;
  optimizer: OptimizerKind;
  seed: number;
  trainLimit?: number;
  testLimit?: number;
  data?: string;
  device: 'auto' | 'cpu' | 'cuda';
  json?: boolean;
}

export async function trainCommand(opts: TrainCommandOptions): Promise<void> {
  const device = resolveDevice(opts.device);
  if (device.note && !opts.json) process.stderr.write(`bsx: ${device.note}\n`);
  const data = await loadData(opts);
  const spec = {
    seeds: [opts.seed],
    phases: [{ epochs: opts.epochs, batchSize: opts.batchSize, lr: opts.lr, optimizer: opts.optimizer }],
  };
  let bar: ProgressBar | undefined;
  let stepsDone = 0;
  let stepsPerEpoch: number[] = [];
  const onEvent = (e: TrainEvent): void => {
    if (e.type === 'start') {
      stepsPerEpoch = e.stepsPerEpoch;
      const total = spec.phases.reduce((a, p, i) => a + p.epochs * stepsPerEpoch[i]!, 0);
      bar = new ProgressBar({ total, label: 'train' });
    } else if (e.type === 'progress') {
      bar?.update(stepsDone + e.step, `epoch ${e.epoch}/${e.totalEpochs} step ${e.step}/${e.stepsInEpoch} loss ${e.loss.toFixed(4)} ${Math.round(e.samplesPerSec)} samples/s`);
    } else if (e.type === 'evaluating') {
      bar?.update(stepsDone + (stepsPerEpoch[0] ?? 0), `epoch ${e.epoch}: evaluating`, true);
    } else if (e.type === 'epoch') {
      const phase = e.metrics[0]!.phase;
      stepsDone += stepsPerEpoch[phase]!;
      const m = e.metrics[0]!;
      if (!opts.json) {
        bar?.log(
          `epoch ${e.epoch}: train loss ${num(m.trainLoss)} acc ${pct(m.trainAcc)} | test loss ${num(m.testLoss)} acc ${pct(m.testAcc)} | ${Math.round(m.samplesPerSec)} samples/s`,
        );
      }
    }
  };
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const result = await train(spec, data, { backend: device.kind, onEvent, signal: ac.signal });
    bar?.finish();
    const s = result.seeds[0]!;
    if (opts.json) {
      const out = {
        spec: result.spec,
        backend: result.backend,
        data: { dir: data.dir, trainCount: result.trainCount, testCount: result.testCount },
        seed: s.seed,
        initial: s.initial,
        epochs: s.epochs,
        seconds: result.seconds,
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    process.stdout.write(
      `\ninitial weights: norm ${num(s.initial.weightNorm, 3)}, bias norm ${num(s.initial.biasNorm, 3)}\n\n`,
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
    process.stdout.write(`\n${result.seconds.toFixed(1)} s on ${result.backend}\n`);
  } finally {
    process.removeListener('SIGINT', onSigint);
    bar?.finish();
  }
}
