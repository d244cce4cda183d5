// Experiments as data: phases, seeds as replicas, divergence, the run store's reuse and
// resume (an interrupted run ends with the same numbers as an uninterrupted one), bad specs.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BsxError,
  Dataset,
  RunStore,
  normalizeSpec,
  parsePhases,
  formatPhases,
  runTraining,
  train,
  type EpochMetrics,
  type TrainCheckpoint,
  type TrainResult,
  type TrainSpec,
} from '../src/index.js';

const WIDTHS = [12, 16, 8, 4];

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** A learnable synthetic task: the label is the arg-max of 4 fixed projections of x. */
function makeSplit(count: number, seed: number): Dataset {
  const rnd = lcg(seed);
  const proj = lcg(99);
  const P = Array.from({ length: 4 * 12 }, () => proj() - 0.5);
  const x = new Float32Array(count * 12).map(() => rnd() * 2 - 1);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < 4; c++) {
      let v = 0;
      for (let k = 0; k < 12; k++) v += P[c * 12 + k]! * x[i * 12 + k]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    y[i] = best;
  }
  return Dataset.fromArrays(x, y, { dim: 12, classes: 4, name: 'synthetic' });
}

const data = { train: makeSplit(300, 1), test: makeSplit(100, 2) };

const spec = (over: Partial<TrainSpec> = {}): TrainSpec => ({
  widths: WIDTHS,
  seeds: [0, 1],
  phases: [
    { epochs: 2, batchSize: 32, lr: 0.1, optimizer: 'sgd' },
    { epochs: 2, batchSize: 8, lr: 0.05, optimizer: 'sgd' },
  ],
  ...over,
});

/** Every metric but the timing. */
function numbers(r: Pick<TrainResult, 'seeds'>): unknown {
  return r.seeds.map((s) => ({
    seed: s.seed,
    initial: s.initial,
    epochs: s.epochs.map(({ samplesPerSec: _t, ...m }: EpochMetrics) => m),
  }));
}

describe('phases', () => {
  it('parses and formats the command-line syntax', () => {
    const p = parsePhases('1024x1@0.01, 64x30@0.01,64x30@0.01:adam');
    expect(p).toEqual([
      { batchSize: 1024, epochs: 1, lr: 0.01, optimizer: 'sgd' },
      { batchSize: 64, epochs: 30, lr: 0.01, optimizer: 'sgd' },
      { batchSize: 64, epochs: 30, lr: 0.01, optimizer: 'adam' },
    ]);
    expect(formatPhases(p)).toBe('1024x1@0.01,64x30@0.01,64x30@0.01:adam');
  });

  it.each([
    ['', /empty/],
    ['64x30', /phases\[0\]: '64x30' is not/],
    ['64x30@0.01,1024x1', /phases\[1\]/],
    ['0x3@0.1', /phases\[0\]\.batchSize/],
    ['64x0@0.1', /phases\[0\]\.epochs/],
    ['64x3@0', /phases\[0\]\.lr/],
    ['64x3@0.1:rmsprop', /phases\[0\]\.optimizer/],
  ])('rejects %j naming the field', (text, re) => {
    expect(() => parsePhases(text)).toThrow(re);
  });

  it('a two-phase run equals phase 1, a checkpoint, then phase 2 from it', async () => {
    const full = await train(spec(), data);
    let cp: TrainCheckpoint | undefined;
    const first = await train({ ...spec(), phases: spec().phases.slice(0, 1) }, data, {
      onEpochEnd: (ctx) => {
        cp = ctx.checkpoint();
      },
    });
    const second = await train(spec(), data, { resume: { checkpoint: cp!, seeds: first.seeds } });
    expect(numbers(second)).toEqual(numbers(full));
    expect(second.seeds[0]!.epochs).toHaveLength(4);
  });

  it('Adam state carries from one phase to the next with the same optimiser', async () => {
    const adam = spec({
      phases: [
        { epochs: 1, batchSize: 16, lr: 0.01, optimizer: 'adam' },
        { epochs: 1, batchSize: 16, lr: 0.01, optimizer: 'adam' },
      ],
    });
    const one = await train({ ...adam, phases: [{ epochs: 2, batchSize: 16, lr: 0.01, optimizer: 'adam' }] }, data);
    const two = await train(adam, data);
    expect(two.seeds.map((s) => s.epochs.map((e) => e.testLoss))).toEqual(one.seeds.map((s) => s.epochs.map((e) => e.testLoss)));
  });
});

describe('seeds as replicas', () => {
  it('seed s among K gives the same numbers as seed s alone', async () => {
    const many = await train(spec({ seeds: [3, 4, 5] }), data);
    const alone = await train(spec({ seeds: [4] }), data);
    const a = alone.seeds[0]!.epochs;
    const b = many.seeds[1]!.epochs;
    expect(many.seeds[1]!.seed).toBe(4);
    a.forEach((m, i) => {
      expect(b[i]!.testLoss).toBeCloseTo(m.testLoss, 5);
      expect(b[i]!.trainLoss).toBeCloseTo(m.trainLoss, 5);
      expect(b[i]!.weightDistance).toBeCloseTo(m.weightDistance, 5);
      expect(b[i]!.testAcc).toBeCloseTo(m.testAcc, 2);
    });
  });

  it('a diverging replica leaves the others untouched', async () => {
    const { Ensemble } = await import('../src/index.js');
    const a = new Ensemble({ replicas: 3, widths: WIDTHS });
    const b = new Ensemble({ replicas: 3, widths: WIDTHS });
    a.init([0, 1, 2]);
    b.init([0, 1, 2]);
    const idx = new Int32Array(3 * 64).map((_, i) => (i * 7) % 300);
    const la = await a.train(data.train, idx, { batchSize: 4, lr: [0.1, 1e30, 0.1] });
    const lb = await b.train(data.train, idx, { batchSize: 4, lr: [0.1, 0.1, 0.1] });
    expect(Number.isFinite(la[1]!)).toBe(false);
    expect(la[0]).toBe(lb[0]);
    expect(la[2]).toBe(lb[2]);
    expect(Array.from(a.getTensor(0).slice0(2).data)).toEqual(Array.from(b.getTensor(0).slice0(2).data));
  });

  it('a diverged seed is recorded with its epoch and training goes on to the end', async () => {
    const r = await train(spec({ seeds: [0], phases: [{ epochs: 3, batchSize: 4, lr: 1e6, optimizer: 'sgd' }] }), data);
    const s = r.seeds[0]!;
    expect(s.divergedAtEpoch).toBe(1);
    expect(s.epochs.every((e) => e.diverged)).toBe(true);
    expect(s.epochs).toHaveLength(3);
  });
});

describe('bad specs', () => {
  it.each([
    [{ phases: [{ epochs: 1, batchSize: 0, lr: 0.1, optimizer: 'sgd' }] }, /phases\[0\]\.batchSize/],
    [{ phases: [{ epochs: 1, batchSize: 301, lr: 0.1, optimizer: 'sgd' }] }, /phases\[0\]\.batchSize.*300/],
    [{ phases: [{ epochs: 1, batchSize: 4, lr: 0, optimizer: 'sgd' }] }, /phases\[0\]\.lr/],
    [{ phases: [{ epochs: 1, batchSize: 4, lr: -1, optimizer: 'sgd' }] }, /phases\[0\]\.lr/],
    [{ phases: [{ epochs: 1, batchSize: 4, lr: 0.1, optimizer: 'lbfgs' }] }, /phases\[0\]\.optimizer/],
    [{ phases: [{ epochs: 0, batchSize: 4, lr: 0.1, optimizer: 'sgd' }] }, /phases\[0\]\.epochs/],
    [{ phases: [] }, /phases must list/],
    [{ seeds: [] }, /seeds must list/],
    [{ seeds: [1, 1] }, /seeds must not repeat/],
    [{ seeds: [-1] }, /seeds\[0\]/],
    [{ widths: [12] }, /widths/],
  ])('%j is rejected naming the field', (over, re) => {
    expect(() => normalizeSpec(spec(over as Partial<TrainSpec>), 300)).toThrow(re);
    expect(() => normalizeSpec(spec(over as Partial<TrainSpec>), 300)).toThrow(BsxError);
  });
});

describe('run store', () => {
  it('a finished run is read back without training', async () => {
    const store = new RunStore(mkdtempSync(join(tmpdir(), 'bsx-store-')));
    const a = await runTraining(spec(), data, { store, data: { name: 'synthetic' } });
    expect(a.reused).toBe(false);
    let trained = false;
    const b = await runTraining(spec(), data, { store, data: { name: 'synthetic' }, onEvent: () => (trained = true) });
    expect(b.reused).toBe(true);
    expect(trained).toBe(false);
    expect(b.dir).toBe(a.dir);
    expect(numbers(b)).toEqual(numbers(a));
  });

  it('an interrupted run resumes from its checkpoint and ends with the same numbers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bsx-store-'));
    const ref = await runTraining(spec(), data, { store: new RunStore(join(root, 'ref')), data: { name: 'synthetic' } });
    const store = new RunStore(join(root, 'cut'));
    const ac = new AbortController();
    await expect(
      runTraining(spec(), data, {
        store,
        data: { name: 'synthetic' },
        checkpointEverySeconds: 0,
        signal: ac.signal,
        onEvent: (e) => {
          // abort in the middle of epoch 3 (phase 2), after checkpoint 2 was written
          if (e.type === 'progress' && e.epoch === 3) ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    const again = await runTraining(spec(), data, { store, data: { name: 'synthetic' } });
    expect(again.resumedFromEpoch).toBe(2);
    expect(numbers(again)).toEqual(numbers(ref));
    const rows = await (await store.open({ spec: normalizeSpec(spec(), 300), data: { name: 'synthetic' } })).readMetrics();
    expect(rows).toHaveLength(8);
  });

  it('--no-resume starts an interrupted run over', async () => {
    const store = new RunStore(mkdtempSync(join(tmpdir(), 'bsx-store-')));
    const ac = new AbortController();
    await expect(
      runTraining(spec(), data, {
        store,
        data: { name: 'synthetic' },
        checkpointEverySeconds: 0,
        signal: ac.signal,
        onEvent: (e) => e.type === 'epoch' && e.epoch === 1 && ac.abort(),
      }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    let status = '';
    const r = await runTraining(spec(), data, { store, data: { name: 'synthetic' }, resume: false, onStatus: (s) => (status = s.type) });
    expect(status).toBe('fresh');
    expect(r.resumedFromEpoch).toBeUndefined();
    expect(r.seeds[0]!.epochs).toHaveLength(4);
  });

  it('exports the final weights as .npy', async () => {
    const store = new RunStore(mkdtempSync(join(tmpdir(), 'bsx-store-')));
    const r = await runTraining(spec(), data, { store, data: { name: 'synthetic' }, exportWeights: true });
    const { readFileSync } = await import('node:fs');
    const { decodeNpy } = await import('../src/index.js');
    const w1 = decodeNpy(readFileSync(join(r.exportDir!, 'W1.npy')), 'W1.npy');
    expect(w1.shape).toEqual([2, 16, 12]);
    expect(w1.dtype).toBe('<f4');
  });
});

describe('files read back', () => {
  it('a corrupt file is reported with the file and the field, never a TypeError from inside bsx', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const { Ensemble, gradientStudy, readGradPoint, readSuiteFile } = await import('../src/index.js');
    const root = mkdtempSync(join(tmpdir(), 'bsx-corrupt-'));
    const store = new RunStore(root);
    const id = { name: 'synthetic' };
    // a finished run, and an interrupted one (checkpoint after epoch 1, no summary)
    const small = spec({ phases: [{ epochs: 2, batchSize: 32, lr: 0.1, optimizer: 'sgd' }] });
    const finished = await runTraining(small, data, { store, data: id });
    const cut = spec({ seeds: [7], phases: [{ epochs: 3, batchSize: 32, lr: 0.1, optimizer: 'sgd' }] });
    const ac = new AbortController();
    await expect(
      runTraining(cut, data, { store, data: id, checkpointEverySeconds: 0, signal: ac.signal, onEvent: (e) => e.type === 'epoch' && ac.abort() }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    const cutDir = store.runDir({ spec: normalizeSpec(cut, 300), data: id });
    // a suite file as `bsx run` writes it, and a gradient-study point as the suite saves it
    const suiteFile = join(root, 'suite.json');
    writeFileSync(suiteFile, JSON.stringify({ format: 1, bsx: '0.1.0', profile: 'smoke', seeds: 2, ids: ['F1'], backend: 'cpu', createdAt: 'now' }));
    const e = new Ensemble({ replicas: 1, widths: WIDTHS });
    e.init([3]);
    const regime = { name: 'test', code: 3, widths: WIDTHS, tensors: e.parameters().map((t) => t.data) };
    const pointFile = join(root, 'b0004.json');
    await gradientStudy({ regime, batchSizes: [4], trials: 2, samplesPerTrial: 8 }, data.train, {
      savePoint: async ({ scaled: _s, ...rest }) => writeFileSync(pointFile, JSON.stringify(rest)),
    });
    expect((await readGradPoint(pointFile, { b: 4, trials: 2 })).b).toBe(4);
    expect((await readSuiteFile(suiteFile)).ids).toEqual(['F1']);

    const json = (f: (j: Record<string, unknown>) => unknown) => (text: string) => JSON.stringify(f(JSON.parse(text)));
    const readFinished = () => runTraining(small, data, { store, data: id });
    const readCut = () => runTraining(cut, data, { store, data: id });
    const cases: [string, (text: string) => string, () => Promise<unknown>, RegExp][] = [
      [join(finished.dir, 'summary.json'), () => '{}', readFinished, /spec is missing/],
      [join(finished.dir, 'summary.json'), () => '42', readFinished, /must be an object, got 42/],
      [join(finished.dir, 'summary.json'), json((j) => ({ ...j, seeds: 42 })), readFinished, /seeds must be an array, got 42/],
      [join(finished.dir, 'summary.json'), json((j) => ({ ...j, seeds: [{ seed: 0, initial: {}, epochs: [] }] })), readFinished, /seeds\[0\]\.initial\.weightDistance is missing/],
      [join(finished.dir, 'spec.json'), () => '{"format": 1}', readFinished, /hash is missing/],
      [join(cutDir, 'metrics.csv'), (t) => t.replace(/\n7,1,0,[^,]*,/, '\n7,1,0,lots,'), readCut, /line 2: column train_loss: "lots" is not a number/],
      [join(cutDir, 'checkpoint', 'state.json'), json((j) => ({ ...j, tensors: {} })), readCut, /tensors must be an array, got \{\}/],
      [join(cutDir, 'checkpoint', 'state.json'), json(({ checksum: _c, ...j }) => ({ ...j, extra: { ...(j.extra as object), initial: 5 } })), readCut, /extra\.initial must be an array, got 5/],
      [suiteFile, json((j) => ({ ...j, ids: 42 })), () => readSuiteFile(suiteFile), /ids must be an array, got 42/],
      [suiteFile, json((j) => ({ ...j, seeds: '2' })), () => readSuiteFile(suiteFile), /seeds must be an integer >= 1, got "2"/],
      [pointFile, json((j) => ({ ...j, perTrial: 5 })), () => readGradPoint(pointFile, { b: 4, trials: 2 }), /perTrial must be an object, got 5/],
      [pointFile, json((j) => ({ ...j, mean: { ...(j.mean as object), sumNorm: { n: 2 } } })), () => readGradPoint(pointFile, { b: 4, trials: 2 }), /mean\.sumNorm\.mean is missing/],
    ];
    for (const [file, corrupt, read, field] of cases) {
      const before = readFileSync(file, 'utf8');
      writeFileSync(file, corrupt(before));
      let err: unknown;
      try {
        await read();
      } catch (x) {
        err = x;
      }
      writeFileSync(file, before);
      expect(err, `${file}: ${field}`).toBeInstanceOf(BsxError);
      expect((err as BsxError).code).toBe('BSX_RUN_CORRUPT');
      expect((err as BsxError).message).toContain(file);
      expect((err as BsxError).message).toMatch(field);
    }
    // what to do about a corrupt summary: the message says; --no-resume trains the run again
    writeFileSync(join(finished.dir, 'summary.json'), '{}');
    await expect(readFinished()).rejects.toThrow(/delete the run folder .* or rerun with --no-resume/);
    const again = await runTraining(small, data, { store, data: id, resume: false });
    expect(again.reused).toBe(false);
    expect(numbers(again)).toEqual(numbers(finished));
    expect((await readFinished()).reused).toBe(true);
  });
});

describe('checkpoint checks', () => {
  it('a checkpoint that disagrees with itself or with the run is refused; an untouched one resumes to the same numbers', async () => {
    const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
    const id = { name: 'synthetic' };
    // sgd, then Adam: the optimiser state starts over at epoch 3
    const s = spec({
      phases: [
        { epochs: 2, batchSize: 32, lr: 0.1, optimizer: 'sgd' },
        { epochs: 2, batchSize: 16, lr: 0.01, optimizer: 'adam' },
      ],
    });
    const root = mkdtempSync(join(tmpdir(), 'bsx-cp-'));
    const ref = await runTraining(s, data, { store: new RunStore(join(root, 'ref')), data: id });
    const cutRoot = join(root, 'cut');
    const ac = new AbortController();
    await expect(
      runTraining(s, data, {
        store: new RunStore(cutRoot),
        data: id,
        checkpointEverySeconds: 0,
        signal: ac.signal,
        onEvent: (e) => e.type === 'progress' && e.epoch === 4 && ac.abort(),
      }),
    ).rejects.toMatchObject({ code: 'BSX_CANCELLED' });
    const rel = join('runs', new RunStore(cutRoot).runDir({ spec: normalizeSpec(s, 300), data: id }).split('/runs/')[1]!);
    const state = JSON.parse(readFileSync(join(cutRoot, rel, 'checkpoint', 'state.json'), 'utf8'));
    // after epoch 3: phase 1 (Adam), one epoch of ceil(300 / 16) = 19 Adam steps
    expect([state.epoch, state.phase, state.rng.nextEpoch, state.optimizerSteps]).toEqual([3, 1, 4, [19, 19]]);

    let n = 0;
    const resumeEdited = async (edit: (st: Record<string, any>) => void, keepChecksum: boolean) => {
      const copy = join(root, `edit-${n++}`);
      cpSync(cutRoot, copy, { recursive: true });
      const file = join(copy, rel, 'checkpoint', 'state.json');
      const st = JSON.parse(readFileSync(file, 'utf8'));
      if (!keepChecksum) delete st.checksum;
      edit(st);
      writeFileSync(file, JSON.stringify(st, null, 2));
      const metrics = readFileSync(join(copy, rel, 'metrics.csv'), 'utf8');
      let err: unknown;
      let result: unknown;
      try {
        result = await runTraining(s, data, { store: new RunStore(copy), data: id });
      } catch (x) {
        err = x;
      }
      return { err: err as BsxError | undefined, result: result as Awaited<ReturnType<typeof runTraining>> | undefined, file, metricsKept: readFileSync(join(copy, rel, 'metrics.csv'), 'utf8') === metrics };
    };
    const refused = async (edit: (st: Record<string, any>) => void, keepChecksum: boolean, field: RegExp) => {
      const r = await resumeEdited(edit, keepChecksum);
      expect(r.err, String(field)).toBeInstanceOf(BsxError);
      expect(r.err!.code).toBe('BSX_RUN_CORRUPT');
      expect(r.err!.message).toContain(r.file);
      expect(r.err!.message).toMatch(field);
      expect(r.err!.message).toMatch(/--no-resume/);
      expect(r.metricsKept).toBe(true);
    };
    // the probe's edit, on a checkpoint with its checksum
    await refused((st) => (st.epoch = 2), true, /checksum/);
    // and on checkpoints without one (as written before checksums): the fields are cross-checked
    await refused((st) => (st.epoch = 2), false, /rng\.nextEpoch is 4, expected 3/);
    await refused((st) => ((st.epoch = 2), (st.rng.nextEpoch = 3)), false, /phase is 1, but epoch 2 belongs to phase 0/);
    await refused((st) => (st.optimizerSteps = [18, 19]), false, /optimizerSteps\[0\] is 18, expected 19/);
    await refused((st) => (st.rng.nextEpoch = 5), false, /rng\.nextEpoch is 5, expected 4/);
    await refused((st) => (st.phase = 0), false, /phase is 0, but epoch 3 belongs to phase 1/);
    await refused((st) => (st.optimizer = 'sgd'), false, /optimizer is "sgd", but phase 1 uses "adam"/);
    // untouched, with and without its checksum: resumes to the numbers of an uninterrupted run
    for (const keep of [true, false]) {
      const r = await resumeEdited(() => undefined, keep);
      expect(r.err).toBeUndefined();
      expect(r.result!.resumedFromEpoch).toBe(3);
      expect(numbers(r.result!)).toEqual(numbers(ref));
    }
  });
});

describe('sizes', () => {
  it('train, runTraining, gradientStudy and runSuite refuse what the machine cannot hold before allocating it', async () => {
    const { FINDINGS, PROFILES, gradientStudy, runSuite } = await import('../src/index.js');
    // 1000 replicas of two 65536-wide layers: about 17 TB per copy of the parameters
    const huge = spec({ widths: [12, 65536, 65536, 4], seeds: Array.from({ length: 1000 }, (_, i) => i) });
    const root = mkdtempSync(join(tmpdir(), 'bsx-size-'));
    const tooLarge = { code: 'BSX_TOO_LARGE', message: expect.stringMatching(/^train: 1000 replicas of 12-65536-65536-4 need about [\d.]+ TB \(.*\); this machine has/) };
    await expect(train(huge, data)).rejects.toMatchObject(tooLarge);
    await expect(runTraining(huge, data, { store: new RunStore(root), data: { name: 'synthetic' } })).rejects.toMatchObject(tooLarge);
    expect((await import('node:fs')).readdirSync(root)).toEqual([]);
    const regime = { name: 'huge', code: 3, widths: [12, 65536, 65536, 4], tensors: [] };
    await expect(gradientStudy({ regime, batchSizes: [4], trials: 1000, samplesPerTrial: 8 }, data.train, { chunk: 1000 })).rejects.toMatchObject({
      code: 'BSX_TOO_LARGE',
      message: expect.stringMatching(/^gradient study: 1000 trials of 12-65536-65536-4 at once need about/),
    });
    const suiteData = { ...data, train: { count: 1024 } as Dataset, test: { count: 500 } as Dataset, identity: { name: 'mnist' } };
    await expect(runSuite(suiteData, { findings: FINDINGS, profile: PROFILES.smoke, seeds: 1e9, storeDir: root })).rejects.toMatchObject({
      code: 'BSX_TOO_LARGE',
      message: expect.stringMatching(/with 1000000000 seeds of 784-1024-1024-10 need about [\d.]+ PB/),
    });
    expect((await import('node:fs')).readdirSync(root)).toEqual([]);
  });
});
