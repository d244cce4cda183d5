// A real interruption: `bsx train` killed with SIGKILL after its first epoch, run again, ends
// with exactly the numbers of an uninterrupted run; a second process on the same run is
// refused while the first holds it.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BSX = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bsx.js');
const ARGS = ['train', '--train-limit', '1000', '--test-limit', '200', '--epochs', '3', '--batch-size', '50', '--seed', '5', '--device', 'cpu', '--checkpoint-every', '0', '--json'];

function runDir(out: string): string | undefined {
  const runs = join(out, 'runs');
  if (!existsSync(runs)) return undefined;
  const d = readdirSync(runs)[0];
  return d ? join(runs, d) : undefined;
}

function withoutTiming(out: { epochs: Record<string, unknown>[] }): unknown {
  return out.epochs.map(({ samplesPerSec: _t, ...m }) => m);
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bsx train: interrupted and resumed', () => {
  it('kill -9 after epoch 1, run again: same numbers as an uninterrupted run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bsx-resume-'));
    const ref = spawnSync(process.execPath, [BSX, ...ARGS, '--out', join(root, 'ref')], { encoding: 'utf8' });
    expect(ref.status, ref.stderr).toBe(0);
    const refOut = JSON.parse(ref.stdout);

    const out = join(root, 'cut');
    const child = spawn(process.execPath, [BSX, ...ARGS, '--out', out], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(() => {
      const d = runDir(out);
      return d !== undefined && existsSync(join(d, 'checkpoint', 'state.json'));
    }, 120_000);
    child.kill('SIGKILL');
    await exited;

    // a second process while none holds it: resumes
    const again = spawnSync(process.execPath, [BSX, ...ARGS, '--out', out], { encoding: 'utf8' });
    expect(again.status, again.stderr).toBe(0);
    const res = JSON.parse(again.stdout);
    expect(res.resumedFromEpoch).toBeGreaterThanOrEqual(1);
    expect(res.resumedFromEpoch).toBeLessThan(3);
    expect(withoutTiming(res)).toEqual(withoutTiming(refOut));
    const csv = readFileSync(join(runDir(out)!, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(1 + 3);

    // finished: read back, nothing trained
    const third = spawnSync(process.execPath, [BSX, ...ARGS, '--out', out], { encoding: 'utf8' });
    expect(JSON.parse(third.stdout).reused).toBe(true);
  });

  it('a second process on a run in progress is refused with a clear message', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-lock-'));
    // a long run (killed below), so that it surely holds the run while the second one starts
    const args = ['train', '--train-limit', '5000', '--test-limit', '200', '--epochs', '50', '--batch-size', '8', '--device', 'cpu', '--out', out];
    const first = spawn(process.execPath, [BSX, ...args], { stdio: 'ignore' });
    const exited = new Promise((r) => first.on('exit', r));
    await waitFor(() => {
      const d = runDir(out);
      return d !== undefined && existsSync(join(d, 'lock'));
    }, 60_000);
    const second = spawnSync(process.execPath, [BSX, ...args], { encoding: 'utf8' });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`in use by process ${first.pid}`));
    first.kill('SIGKILL');
    await exited;
  });
});
