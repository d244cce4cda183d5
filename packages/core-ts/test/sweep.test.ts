// Sweeps: study files (the schema, each kind of mistake refused naming the field, the grid and
// the learning-rate scaling expanded as written), the assignment of units to shards and where a
// shard comes from, and training packs: runs trained together as replicas of one ensemble (with
// other learning rates and hyperparameters) leave the same run folders, byte for byte but the
// timing, as each run trained alone, also when the pack is interrupted and resumed.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BsxError, Dataset, RunStore, runTraining } from '../src/index.js';
import { runTrainingPack } from '../src/experiments/run.js';
import type { TrainSpec } from '../src/experiments/train.js';
import { assignShards, chooseShard, parseShard, unitsOfShard } from '../src/sweeps/shards.js';
import { loadStudy, parseStudy } from '../src/sweeps/study.js';
import { sweepUnits } from '../src/sweeps/sweep.js';
import { storeDigest } from './helpers/store-digest.js';

const roots: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'bsx-sweep-'));
  roots.push(d);
  return d;
}
afterAll(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

const BASE = `
name: t
data: { set: mnist, trainLimit: 500 }
model: { widths: [784, 16, 10] }
train:
  batchSizes: [16, 64]
  epochs: 3
  lrs: [0.01, 0.1]
  seeds: 2
grad:
  - name: g
    from: { run: { batchSize: 64, lr: 0.1 }, epoch: 2 }
    batchSizes: [4, 16]
    trials: 4
    samplesPerTrial: 64
`;

function refused(text: string, ...patterns: (string | RegExp)[]): BsxError {
  let err: unknown;
  try {
    parseStudy(text, { file: '/x/study.yaml' });
  } catch (e) {
    err = e;
  }
  expect(err, 'the study was accepted').toBeInstanceOf(BsxError);
  const e = err as BsxError;
  expect(e.code).toBe('BSX_INVALID_ARGUMENT');
  expect(e.message.startsWith('/x/study.yaml: ')).toBe(true);
  for (const p of patterns) expect(e.message).toMatch(p);
  return e;
}

describe('study files', () => {
  it('expand the grid: every batch size x learning rate x optimiser, with every seed, lr scaled as asked', () => {
    const s = parseStudy(BASE, { file: '/x/study.yaml' });
    expect(s.runs.map((r) => r.id)).toEqual(['b16-lr0.01-sgd', 'b16-lr0.1-sgd', 'b64-lr0.01-sgd', 'b64-lr0.1-sgd']);
    expect(s.runs.every((r) => r.spec.seeds.join() === '0,1' && r.spec.widths.join() === '784,16,10')).toBe(true);
    expect(s.grad[0]!.from).toEqual({ kind: 'run', run: 'b64-lr0.1-sgd', epoch: 2, seed: 0 });
    expect(s.grad[0]!.layers).toEqual([2]);
    const lin = parseStudy(BASE.replace('seeds: 2', 'seeds: [3, 5]\n  lrScaling: { rule: linear, baseBatchSize: 16 }'));
    expect(lin.runs.map((r) => r.spec.phases[0]!.lr)).toEqual([0.01, 0.1, 0.01 * (64 / 16), 0.1 * (64 / 16)]);
    expect(lin.seeds).toEqual([3, 5]);
    const sq = parseStudy(BASE.replace('seeds: 2', 'seeds: 1\n  lrScaling: { rule: sqrt, baseBatchSize: 16 }'));
    expect(sq.runs.map((r) => r.spec.phases[0]!.lr)).toEqual([0.01, 0.1, 0.01 * Math.sqrt(4), 0.1 * Math.sqrt(4)]);
    // schedules, optimisers with hyperparameters, JSON as well as YAML
    const json = JSON.stringify({
      name: 'j',
      data: { set: 'mnist' },
      train: { schedules: [[{ batchSize: 1024, epochs: 1 }, { batchSize: 64, epochs: 2 }]], optimizers: ['sgd(momentum=0.9,nesterov)', { name: 'adam', beta2: 0.99 }] },
    });
    const j = parseStudy(json);
    expect(j.runs.map((r) => r.spec.phases.map((p) => `${p.batchSize}x${p.epochs}@${p.lr}`).join(','))).toEqual(['1024x1@0.01,64x2@0.01', '1024x1@0.01,64x2@0.01']);
    expect(j.runs.map((r) => r.optimizer)).toEqual([{ name: 'sgd', momentum: 0.9, nesterov: true }, { name: 'adam', beta2: 0.99 }]);
    // the hash follows the content, not its spelling
    expect(parseStudy(BASE).hash).toBe(parseStudy(BASE.replace('epochs: 3', 'epochs:   3  # the same')).hash);
    expect(parseStudy(BASE).hash).not.toBe(parseStudy(BASE.replace('epochs: 3', 'epochs: 4')).hash);
  });

  it('refuse an unknown field, naming it, its place and the line', () => {
    const e = refused(BASE.replace('epochs: 3', 'epochs: 3\n  batchsize: 32'), /train\.batchsize: unknown field/, /train has: batchSizes, epochs/, /\(line 8\)/);
    expect(e.path).toBe('/x/study.yaml');
    refused(BASE.replace('name: t', 'name: t\ncolour: blue'), /colour: unknown field/);
  });

  it('refuse a wrong type, naming the field and the value', () => {
    refused(BASE.replace('epochs: 3', 'epochs: "3"'), /train\.epochs must be integer, got "3"/, /line 7/);
    refused(BASE.replace('lrs: [0.01, 0.1]', 'lrs: [0.01, -1]'), /train\.lrs\[1\] must be > 0, got -1/);
    refused(BASE.replace('seeds: 2', 'seeds: two'), /train\.seeds must be a number of seeds \(an integer >= 1\) or a list of distinct seeds \(integers >= 0\), got "two"/);
    refused(BASE.replace('set: mnist', 'set: cifar'), /data\.set must be one of "mnist", "fashion-mnist", got "cifar"/);
    refused(BASE.replace('epochs: 3', 'epochs: 3\n  optimizers: [sgd(momentum=2)]'), /train\.optimizers\[0\] is not an optimiser of the engine: .*momentum/);
  });

  it('refuse an empty grid', () => {
    refused(BASE.replace('batchSizes: [16, 64]', 'batchSizes: []'), /train\.batchSizes must NOT have fewer than 1 items, got \[\]/);
    refused(BASE.replace('lrs: [0.01, 0.1]', 'lrs: []'), /train\.lrs must NOT have fewer than 1 items/);
    refused(BASE.replace('batchSizes: [16, 64]\n  epochs: 3', 'lrs0: 1').replace('lrs0: 1', ''), /train must give either batchSizes \(with epochs\) or schedules/);
  });

  it('refuse a gradient study from a run that is not in the grid, or past its end', () => {
    refused(BASE.replace('run: { batchSize: 64, lr: 0.1 }', 'run: { batchSize: 32, lr: 0.1 }'), /grad\[0\]\.from\.run\.batchSize is 32, not in the grid \(16, 64\)/);
    refused(BASE.replace('run: { batchSize: 64, lr: 0.1 }', 'run: { batchSize: 64, lr: 0.05 }'), /grad\[0\]\.from\.run\.lr is 0.05, not in the grid \(train\.lrs: 0.01, 0.1\)/);
    refused(BASE.replace('run: { batchSize: 64, lr: 0.1 }', 'run: { batchSize: 64 }'), /grad\[0\]\.from\.run\.lr is missing: the grid has 2 \(0.01, 0.1\)/);
    refused(BASE.replace('epoch: 2', 'epoch: 4'), /grad\[0\]\.from\.epoch is 4, past the end of the run b64 lr 0.1 \(3 epochs\)/, /line 12/);
    refused(BASE.replace('epoch: 2', 'epoch: 2, seed: 7'), /grad\[0\]\.from\.seed is 7, not a seed of the grid/);
    refused(BASE.replace('trials: 4', 'trials: 4\n    layers: [3]'), /grad\[0\]\.layers\[0\] is 3, not a layer of the model 784-16-10/);
    expect(parseStudy(BASE.replace('trials: 4', 'trials: 4\n    layers: all')).grad[0]!.layers).toEqual([1, 2]);
    expect(parseStudy(BASE.replace('trials: 4', 'trials: 4\n    layers: [1]')).grad[0]!.layers).toEqual([1]);
    refused(BASE.replace('batchSizes: [4, 16]', 'batchSizes: [4, 128]'), /grad\[0\]\.batchSizes\[1\] is 128, more than the samples per trial \(64\)/);
  });

  it('the example studies pass their own schema', async () => {
    const dir = join(import.meta.dirname, '..', '..', '..', 'examples');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const s = await loadStudy(join(dir, f));
      expect(s.runs.length, f).toBeGreaterThan(0);
    }
  });
});

describe('shards', () => {
  const study = parseStudy(BASE.replace('seeds: 2', 'seeds: 2\n  packReplicas: 2'));
  const units = sweepUnits(study, { trainCount: 500, testCount: 1000 });

  it('give every unit to exactly one shard, the same way every time, balancing the cost', () => {
    expect(units.map((u) => u.id)).toEqual([
      'train:b16-lr0.01-sgd',
      'train:b16-lr0.1-sgd',
      'train:b64-lr0.01-sgd',
      'train:b64-lr0.1-sgd',
      'grad:g:L2:b4',
      'grad:g:L2:b16',
    ]);
    for (const n of [1, 2, 3, 4, 7]) {
      const shards = assignShards(units, n);
      expect(shards.flat().map((u) => u.id).sort()).toEqual(units.map((u) => u.id).sort());
      expect(assignShards([...units].reverse(), n).map((s) => s.map((u) => u.id).sort())).toEqual(shards.map((s) => s.map((u) => u.id).sort()));
      // longest-first greedy: no shard exceeds another by more than the largest unit
      const loads = shards.map((s) => s.reduce((a, u) => a + u.cost, 0));
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(Math.max(...units.map((u) => u.cost)) + 1e-9);
      for (let k = 1; k <= n; k++) expect(unitsOfShard(units, { index: k, count: n })).toEqual(shards[k - 1]);
    }
    // small batches cost more per sample: the two b16 packs go to different shards of 2
    const two = assignShards(units, 2).map((s) => s.filter((u) => u.id.startsWith('train:b16')).length);
    expect(two).toEqual([1, 1]);
  });

  it('come from --shard, Slurm or a Kubernetes Indexed Job, which is said', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', 'a/b', '2']) expect(() => parseShard(bad)).toThrow(/--shard must be k\/N/);
    expect(chooseShard({ env: {} })).toBeUndefined();
    expect(chooseShard({ shard: '1/2', env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' } })).toEqual({ shard: { index: 1, count: 2 }, source: '--shard 1/2' });
    const slurm = chooseShard({ env: { SLURM_ARRAY_TASK_ID: '11', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_MAX: '12' } })!;
    expect(slurm.shard).toEqual({ index: 2, count: 3 });
    expect(slurm.source).toMatch(/SLURM_ARRAY_TASK_ID=11 of 3 tasks/);
    expect(() => chooseShard({ env: { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '8' } })).toThrow(/not 3 consecutive ids/);
    const k8s = chooseShard({ env: { JOB_COMPLETION_INDEX: '0', BSX_SHARDS: '4' } })!;
    expect(k8s.shard).toEqual({ index: 1, count: 4 });
    expect(k8s.source).toMatch(/JOB_COMPLETION_INDEX=0 of 4 completions \(BSX_SHARDS\)/);
    expect(chooseShard({ shards: 5, env: { JOB_COMPLETION_INDEX: '4' } })!.shard).toEqual({ index: 5, count: 5 });
    expect(() => chooseShard({ env: { JOB_COMPLETION_INDEX: '2' } })).toThrow(/give the number of shards/);
    expect(() => chooseShard({ env: { JOB_COMPLETION_INDEX: '5', BSX_SHARDS: '5' } })).toThrow(/not below the 5 shards/);
    expect(() => chooseShard({ shards: 3, env: {} })).toThrow(/--shards is given but no shard/);
  });
});

// ---------------------------------------------------------------------------
// Packs

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function split(count: number, seed: number): Dataset {
  const rnd = lcg(seed);
  const x = new Float32Array(count * 12).map(() => rnd() * 2 - 1);
  const y = new Uint8Array(count).map((_, i) => (x[i * 12]! + x[i * 12 + 1]! > 0 ? 1 : 0) + (x[i * 12 + 2]! > 0 ? 2 : 0));
  return Dataset.fromArrays(x, y, { dim: 12, classes: 4, name: 'synthetic' });
}
const data = { train: split(200, 1), test: split(80, 2) };
const identity = { name: 'synthetic' };
const W = [12, 16, 4];

/** Specs that pack together: the same schedule and optimiser name, other learning rates, seeds and hyperparameters. */
function packSpecs(optimizer: 'plain' | 'momentum'): TrainSpec[] {
  const o = (m: number) => (optimizer === 'plain' ? ('sgd' as const) : { name: 'sgd', momentum: m });
  return [
    { widths: W, seeds: [0, 1], phases: [{ epochs: 2, batchSize: 4, lr: 0.05, optimizer: o(0.9) }, { epochs: 1, batchSize: 32, lr: 0.05, optimizer: o(0.9) }] },
    { widths: W, seeds: [2], phases: [{ epochs: 2, batchSize: 4, lr: 0.01, optimizer: o(0.5) }, { epochs: 1, batchSize: 32, lr: 0.2, optimizer: o(0.5) }] },
    { widths: W, seeds: [0, 3], phases: [{ epochs: 2, batchSize: 4, lr: 0.1, optimizer: o(0.9) }, { epochs: 1, batchSize: 32, lr: 0.1, optimizer: o(0.9) }] },
  ];
}

describe('training packs', () => {
  for (const kind of ['plain', 'momentum'] as const) {
    it(`leave each run folder as the run alone does (${kind === 'plain' ? 'plain SGD, fused small-batch path' : 'SGD with momentum per replica'})`, async () => {
      const specs = packSpecs(kind);
      const alone = tmp();
      for (const s of specs) await runTraining(s, data, { store: new RunStore(alone), data: identity, checkpointEverySeconds: 0 });
      const packed = tmp();
      const res = await runTrainingPack(specs, data, { store: new RunStore(packed), data: identity, checkpointEverySeconds: 0 });
      expect(res.map((r) => r.reused)).toEqual([false, false, false]);
      const a = storeDigest(alone);
      expect(Object.keys(a).length).toBeGreaterThan(3 * 5);
      expect(storeDigest(packed)).toEqual(a);
      // a second call reads every run back
      const again = await runTrainingPack(specs, data, { store: new RunStore(packed), data: identity });
      expect(again.map((r) => r.reused)).toEqual([true, true, true]);
    });
  }

  it('resume after an interruption to the same folders, runs that stopped at other epochs trained apart', async () => {
    const specs = packSpecs('momentum');
    const alone = tmp();
    for (const s of specs) await runTraining(s, data, { store: new RunStore(alone), data: identity, checkpointEverySeconds: 0 });
    const packed = tmp();
    // the first run alone, stopped after its first epoch; the pack then resumes it apart from the others
    const ac = new AbortController();
    await expect(
      runTraining(specs[0]!, data, {
        store: new RunStore(packed),
        data: identity,
        checkpointEverySeconds: 0,
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === 'epoch' && e.epoch === 1) ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    // the whole pack: run 0 resumes, the others start; stopped during their second epoch
    const ac2 = new AbortController();
    const first: string[] = [];
    await expect(
      runTrainingPack(specs, data, {
        store: new RunStore(packed),
        data: identity,
        checkpointEverySeconds: 0,
        signal: ac2.signal,
        onStatus: (i, s) => first.push(`${i}:${s.type}`),
        onEvent: (e) => {
          if (e.type === 'progress' && e.epoch === 2) ac2.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    expect(first).toEqual(['0:resumed', '1:fresh', '2:fresh']);
    const statuses: string[] = [];
    await runTrainingPack(specs, data, { store: new RunStore(packed), data: identity, checkpointEverySeconds: 0, onStatus: (i, s) => statuses.push(`${i}:${s.type}${s.type === 'resumed' ? s.epoch : ''}`) });
    expect(statuses).toEqual(['0:resumed1', '1:resumed1', '2:resumed1']);
    expect(storeDigest(packed)).toEqual(storeDigest(alone));
  });

  it('refuse runs that cannot share an ensemble', async () => {
    const [a, b] = packSpecs('momentum');
    const other = { ...b!, phases: b!.phases.map((p) => ({ ...p, batchSize: 8 })) };
    await expect(runTrainingPack([a!, other], data, { store: new RunStore(tmp()), data: identity })).rejects.toThrow(/run 1 cannot be packed with run 0/);
    const plain = { ...b!, phases: b!.phases.map((p) => ({ ...p, optimizer: 'sgd' as const })) };
    await expect(runTrainingPack([a!, plain], data, { store: new RunStore(tmp()), data: identity })).rejects.toThrow(/cannot be packed/);
  });
});
