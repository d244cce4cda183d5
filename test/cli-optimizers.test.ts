// End to end: the optimisers through the built `bsx` command on real MNIST (a slice), with the
// hyperparameter options and the phase syntax read from the engine's table.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BSX = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bsx.js');
const OUT = mkdtempSync(join(tmpdir(), 'bsx-cli-opt-'));
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

function bsx(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BSX, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SLICE = ['--train-limit', '2000', '--test-limit', '500', '--device', 'cpu', '--out', OUT, '--json'];

describe('bsx train with the optimisers of the table', () => {
  it('--phases with SGD momentum and Nesterov: trained, stored with its hyperparameters, different from plain SGD', () => {
    const r = bsx(['train', '--phases', '64x2@0.01:sgd(momentum=0.9,nesterov)', ...SLICE]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.epochs).toHaveLength(2);
    expect(out.epochs[1].testAcc).toBeGreaterThan(0.8);
    const spec = JSON.parse(readFileSync(join(out.runDir, 'spec.json'), 'utf8'));
    expect(spec.spec.phases[0].optimizer).toEqual({ name: 'sgd', momentum: 0.9, nesterov: true });
    expect(spec.description).toContain('sgd(momentum=0.9,nesterov)');
    const plain = JSON.parse(bsx(['train', '--phases', '64x2@0.01', ...SLICE]).stdout);
    // momentum 0.9 takes ~10x larger effective steps: it goes much further from the init
    expect(out.epochs[1].weightDistance).toBeGreaterThan(2 * plain.epochs[1].weightDistance);
  });

  it('--optimizer adamw --weight-decay: the option reaches the engine (a larger decay shrinks the weights)', () => {
    const a = bsx(['train', '--optimizer', 'adamw', '--weight-decay', '0.01', '--lr', '0.001', '-e', '1', ...SLICE]);
    const b = bsx(['train', '--optimizer', 'adamw', '--weight-decay', '20', '--lr', '0.001', '-e', '1', ...SLICE]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    // adamw's default decay is 0.01: the same run as the plain name
    const dflt = JSON.parse(bsx(['train', '--optimizer', 'adamw', '--lr', '0.001', '-e', '1', ...SLICE]).stdout);
    expect(dflt.runDir).toBe(ra.runDir);
    // decay 20 at lr 0.001 multiplies every weight by 0.98 per step (32 steps): norm well below
    expect(rb.epochs[0].weightNorm).toBeLessThan(0.8 * ra.epochs[0].weightNorm);
  });

  it('refuses a hyperparameter of another optimiser, a bad value, and options beside --phases', () => {
    const wrong = bsx(['train', '--optimizer', 'adam', '--momentum', '0.9']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--momentum: not a hyperparameter of adam/);
    const range = bsx(['train', '--optimizer', 'sgd', '--momentum', '1.5']);
    expect(range.code).toBe(1);
    expect(range.stderr).toMatch(/momentum must be in \[0, 1\), got 1\.5/);
    const nesterov = bsx(['train', '--optimizer', 'sgd(nesterov)']);
    expect(nesterov.code).toBe(1);
    expect(nesterov.stderr).toMatch(/nesterov needs momentum > 0/);
    const both = bsx(['train', '--phases', '64x1@0.01', '--weight-decay', '0.1']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--phases gives each phase its own optimizer/);
    for (const r of [wrong, range, nesterov, both]) expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('bsx optimizers lists the table the engine describes', () => {
    const r = bsx(['optimizers', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const table = JSON.parse(r.stdout) as { name: string; state: string[]; hyperparameters: { name: string }[] }[];
    expect(table.map((o) => o.name)).toEqual(['sgd', 'adam', 'adamw']);
    expect(table[0]!.hyperparameters.map((h) => h.name)).toEqual(['momentum', 'dampening', 'nesterov', 'weightDecay']);
    const text = bsx(['optimizers']);
    expect(text.stdout).toMatch(/^adamw +\(as torch\.optim\.AdamW; state: expAvg, expAvgSq\)$/m);
    expect(text.stdout).toMatch(/weightDecay=0\.01 in \[0, 1000000\]/);
    // the README shows the same listing: it cannot drift from the engine's table
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const block = /## Optimisers[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(text.stdout);
  });
});
