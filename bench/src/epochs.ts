// `pnpm bench epochs` (= node bench/dist/run.js epochs): what each optimiser costs per epoch
// against plain SGD, in every epoch of a long run. One bsx ensemble per optimiser, all from the
// same Glorot weights and the same batch order; the optimisers take turns on sixteenths of each
// epoch, so a change in the machine's speed during the run falls on all of them alike and the
// per-epoch ratio to SGD stays comparable. After each epoch: the share
// of subnormal first moments (Adam, AdamW), which a slow subnormal path would show up with.
//
//   node bench/dist/run.js epochs [--epochs 30] [--batch-size 64] [--optimizers sgd,adam,adamw]
//        [--data DIR] [--json] [--out FILE]

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Dataset, Ensemble, engineInfo, type OptimizerOptions } from '@bsx/core';
import { fmt, table } from './format.js';
import { describeMachine, machine, mnistDir, type Machine } from './machine.js';
import { ADAM, BatchOrder, LR, glorotWeights, loadSplit, subnormalShare } from './peer.js';

/** Slices of an epoch the optimisers take turns on (a slowdown of the machine for a few seconds then falls on all of them). */
const CHUNKS = 16;

export const EPOCH_OPTIMIZERS = ['sgd', 'adam', 'adamw'] as const;
export type EpochOptimizer = (typeof EPOCH_OPTIMIZERS)[number];

export interface EpochRow {
  epoch: number;
  /** Per optimiser: samples per second of this epoch's train() call. */
  samplesPerSec: Partial<Record<EpochOptimizer, number>>;
  /** Per optimiser with a first moment: its subnormal share after the epoch. */
  subnormalM: Partial<Record<EpochOptimizer, number>>;
  /** Per optimiser: the epoch's mean training loss. */
  meanLoss: Partial<Record<EpochOptimizer, number>>;
}

export interface EpochsReport {
  date: string;
  machine: Machine;
  engine: string;
  batchSize: number;
  stepsPerEpoch: number;
  optimizers: EpochOptimizer[];
  rows: EpochRow[];
}

const USAGE = `usage: node bench/dist/run.js epochs [--epochs 30] [--batch-size 64] [--optimizers ${EPOCH_OPTIMIZERS.join(',')}]
       [--data DIR] [--json] [--out FILE]`;

function optimizerOptions(name: EpochOptimizer): OptimizerOptions {
  // PyTorch's defaults (AdamW's decoupled weight decay 0.01), as the adam workload
  if (name === 'sgd') return { name: 'sgd' };
  return { name, beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps };
}

/** Seconds per epoch per optimiser, the optimisers taking turns; `log` gets a line per epoch. */
export async function measureEpochs(opts: {
  dataDir: string;
  epochs: number;
  batchSize: number;
  optimizers: EpochOptimizer[];
  log: (m: string) => void;
  /** Use only the first N training samples (tests); default all. */
  trainLimit?: number;
}): Promise<EpochsReport> {
  const full = loadSplit(opts.dataDir, 'train');
  const count = Math.min(full.count, opts.trainLimit ?? full.count);
  const train = { ...full, count, x: full.x.subarray(0, count * 784), labels: full.labels.subarray(0, count) };
  const ds = Dataset.fromArrays(train.x, train.labels, { dim: 784, classes: 10, name: 'mnist/train' });
  const b = opts.batchSize;
  const steps = Math.floor(train.count / b);
  const weights = glorotWeights();
  const runs = opts.optimizers.map((name) => {
    const ens = new Ensemble({ replicas: 1, backend: 'cpu' });
    ens.init([0]);
    for (let l = 0; l < 3; l++) {
      ens.setTensorBroadcast(2 * l, weights[l]!);
      ens.setTensorBroadcast(2 * l + 1, new Float32Array(ens.tensorShape(2 * l + 1)[0]!));
    }
    ens.setOptimizer(optimizerOptions(name));
    return { name, ens, order: new BatchOrder(train.count, b) };
  });
  const rows: EpochRow[] = [];
  try {
    for (let e = 1; e <= opts.epochs; e++) {
      const row: EpochRow = { epoch: e, samplesPerSec: {}, subnormalM: {}, meanLoss: {} };
      // the epoch in CHUNKS slices, the optimisers taking turns slice by slice
      const seconds = runs.map(() => 0);
      const lossSum = runs.map(() => 0);
      for (let c = 0; c < CHUNKS; c++) {
        const lo = Math.floor((c * steps) / CHUNKS);
        const n = Math.floor(((c + 1) * steps) / CHUNKS) - lo;
        if (n === 0) continue;
        for (const [i, r] of runs.entries()) {
          const idx = new Int32Array(n * b);
          for (let s = 0; s < n; s++) idx.set(r.order.next(), s * b);
          const t0 = performance.now();
          const loss = await r.ens.train(ds, idx, { batchSize: b, lr: LR });
          seconds[i] += (performance.now() - t0) / 1000;
          lossSum[i] += loss[0]! * n;
        }
      }
      for (const [i, r] of runs.entries()) {
        row.samplesPerSec[r.name] = (steps * b) / seconds[i]!;
        row.meanLoss[r.name] = lossSum[i]! / steps;
        if (r.name !== 'sgd') row.subnormalM[r.name] = subnormalShare(Array.from({ length: 6 }, (_, t) => r.ens.getTensor(t, 'expAvg').data));
      }
      rows.push(row);
      opts.log(`epoch ${e}/${opts.epochs}: ${runs.map((r) => `${r.name} ${fmt(row.samplesPerSec[r.name])}`).join(', ')} samples/s`);
    }
  } finally {
    for (const r of runs) r.ens.dispose();
  }
  const info = engineInfo();
  return {
    date: new Date().toISOString(),
    machine: machine(),
    engine: `bsx ${info.version}, ${info.cpu.simdPath} kernels, ${info.cpu.threads} threads, subnormals ${info.cpu.flushDenormals ? 'flushed to zero' : 'kept'}`,
    batchSize: b,
    stepsPerEpoch: steps,
    optimizers: opts.optimizers,
    rows,
  };
}

/** Time relative to SGD's in the same epoch (> 1: slower). */
export function costRatio(row: EpochRow, name: EpochOptimizer): number | undefined {
  const s = row.samplesPerSec.sgd;
  const o = row.samplesPerSec[name];
  return s !== undefined && o !== undefined ? s / o : undefined;
}

export function renderEpochs(r: EpochsReport): string {
  const others = r.optimizers.filter((o) => o !== 'sgd');
  const withSgd = r.optimizers.includes('sgd');
  const out = [
    `bsx epochs ${r.date}`,
    `machine: ${describeMachine(r.machine)}`,
    `engine: ${r.engine}`,
    `${r.rows.length} epochs of ${r.stepsPerEpoch} steps of b=${r.batchSize} (full MNIST), lr ${LR}, from the same init and batch order, taking turns on sixteenths of each epoch`,
    '',
  ];
  const header = ['epoch', ...r.optimizers.map((o) => `${o} samples/s`), ...(withSgd ? others.map((o) => `${o}/sgd time`) : []), ...others.map((o) => `${o} subnormal m`)];
  const rows = r.rows.map((row) => [
    String(row.epoch),
    ...r.optimizers.map((o) => fmt(row.samplesPerSec[o])),
    ...(withSgd ? others.map((o) => `${fmt(costRatio(row, o))}x`) : []),
    ...others.map((o) => `${(100 * (row.subnormalM[o] ?? 0)).toFixed(2)}%`),
  ]);
  out.push(table(header, rows));
  if (withSgd) {
    out.push('');
    for (const o of others) {
      const ratios = r.rows.map((row) => costRatio(row, o)!).filter((x) => x !== undefined);
      const sorted = [...ratios].sort((a, z) => a - z);
      const worst = r.rows.reduce((a, row) => ((costRatio(row, o) ?? 0) > (costRatio(a, o) ?? 0) ? row : a), r.rows[0]!);
      out.push(`${o}/sgd time per epoch: median ${fmt(sorted[Math.floor(sorted.length / 2)])}x, worst ${fmt(sorted[sorted.length - 1])}x (epoch ${worst.epoch}), best ${fmt(sorted[0])}x`);
    }
  }
  return out.join('\n');
}

export async function epochsMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      epochs: { type: 'string', default: '30' },
      'batch-size': { type: 'string', default: '64' },
      optimizers: { type: 'string', default: EPOCH_OPTIMIZERS.join(',') },
      data: { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const int = (name: string, v: string, lo: number, hi: number): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < lo || n > hi) throw new Error(`--${name}: '${v}' is not an integer from ${lo} to ${hi}`);
    return n;
  };
  const epochs = int('epochs', values.epochs!, 1, 1000);
  const batchSize = int('batch-size', values['batch-size']!, 1, 60000);
  const optimizers = values.optimizers!.split(',').map((s) => s.trim());
  for (const o of optimizers) {
    if (!(EPOCH_OPTIMIZERS as readonly string[]).includes(o)) throw new Error(`--optimizers: '${o}' is not one of ${EPOCH_OPTIMIZERS.join(', ')}`);
  }
  if (new Set(optimizers).size !== optimizers.length) throw new Error('--optimizers: an optimiser is named twice');
  const dataDir = mnistDir(values.data);
  const report = await measureEpochs({
    dataDir,
    epochs,
    batchSize,
    optimizers: optimizers as EpochOptimizer[],
    log: (m) => process.stderr.write(`[epochs] ${m}\n`),
  });
  process.stdout.write(`${values.json ? JSON.stringify(report, null, 2) : renderEpochs(report)}\n`);
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`JSON report written to ${values.out}\n`);
  }
  return 0;
}
