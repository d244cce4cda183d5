// The roofline command end to end (bench/dist/roofline.js, built by `pnpm install`): one small
// batch size with tiny budgets on real MNIST. Checks the report's shape, that every GEMM phase
// was timed, and that each bound is what the model gives with the ceilings the run measured.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderRoofline, type RooflineReport } from '../src/roofline.js';

const dist = join(import.meta.dirname, '..', 'dist');

function node(script: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(dist, script), ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('roofline', () => {
  it('bounds and times every phase of a step at b = 8 (tiny budgets)', () => {
    const r = node('roofline.js', ['--sizes', '8', '--seconds', '0.03', '--eval-chunk', '200', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as RooflineReport;
    expect(rep.schema).toBe('bsx-roofline/1');
    expect(rep.ceilings.gflops).toBeGreaterThan(0);
    expect(rep.ceilings.bandwidth.map((x) => x.level)).toEqual(['L1', 'L2', 'L3', 'DRAM']);
    for (const x of rep.ceilings.bandwidth) {
      for (const k of ['bsxRead', 'bsxUpdate', 'jsRead', 'jsCopy', 'jsTriad'] as const) expect(x[k]).toBeGreaterThan(0);
      expect(x.used).toBe(Math.max(x.bsxRead, x.bsxUpdate, x.jsRead, x.jsCopy, x.jsTriad));
      expect(x[x.usedProbe]).toBe(x.used);
    }
    expect(rep.batches).toHaveLength(1);
    const bt = rep.batches[0]!;
    expect(bt.b).toBe(8);
    const bw = Object.fromEntries(rep.ceilings.bandwidth.map((x) => [x.level, x.used])) as Record<string, number>;
    for (const p of bt.phases) {
      // the bound from the run's own ceilings
      expect(p.computeSeconds).toBeCloseTo(p.flops / (rep.ceilings.gflops * 1e9), 12);
      const mem = Object.entries(p.bytes).reduce((a, [l, bytes]) => a + bytes / bw[l]!, 0);
      expect(p.memorySeconds).toBeCloseTo(mem, 12);
      expect(p.boundSeconds).toBe(Math.max(p.computeSeconds, p.memorySeconds));
      // every GEMM phase is timed through the binding; gather and the loss head are not
      if (p.kind === 'gather' || p.kind === 'loss') expect(p.measuredSeconds).toBeUndefined();
      else {
        expect(p.measuredSeconds).toBeGreaterThan(0);
        expect(p.ratio).toBeCloseTo(p.measuredSeconds! / p.boundSeconds, 9);
      }
    }
    expect(bt.phases.find((p) => p.id === 'fwd1')!.flops).toBe(2 * 8 * 784 * 1024);
    // the replayed GEMM calls compute what the engine computes on the same batch
    expect(Math.abs(bt.replayCheck.loss - bt.replayCheck.engineLoss)).toBeLessThan(1e-5);
    expect(bt.replayCheck.gradRelDiff).toBeLessThan(1e-5);
    const s = bt.step;
    expect(s.measuredSeconds).toBeGreaterThan(0);
    expect(s.boundSeconds).toBeCloseTo(bt.phases.reduce((a, p) => a + p.boundSeconds, 0), 12);
    expect(s.residualSeconds).toBeCloseTo(s.measuredSeconds - s.timedSeconds, 12);
    expect(bt.phases.map((p) => p.id)).toContain(s.boundingPhase);
    expect(rep.eval.chunk).toBe(200);
    expect(rep.eval.perSample.flops).toBeGreaterThan(2 * (784 * 1024 + 1024 * 1024 + 1024 * 10));
    expect(rep.eval.perSample.measuredSeconds).toBeGreaterThan(0);
    // the text form of the same report
    const text = renderRoofline(rep);
    expect(text).toMatch(/^b = 8: /m);
    expect(text).toMatch(/^forward 2 1024->1024 /m);
    expect(text).toMatch(/JavaScript loop may under-estimate/);
  });

  it('runs as `pnpm bench roofline` and rejects bad options', () => {
    const help = node('run.js', ['roofline', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/roofline\.js \[--sizes/);
    const bad = node('roofline.js', ['--sizes', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--sizes: '0' is not a positive integer/);
  });
});
