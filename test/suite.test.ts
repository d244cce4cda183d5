// End to end: `bsx run all --profile smoke` on real MNIST writes the report, the summary and
// findings.json; `bsx report` rebuilds them from the store without training.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { storeDigest } from '../packages/core-ts/test/helpers/store-digest.js';

const BSX = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bsx.js');
const VERDICTS = ['reproduced', 'partly', 'not reproduced'];

describe('bsx run all --profile smoke', () => {
  it('produces report.html, summary.md and findings.json with all sixteen findings; bsx report rebuilds them', () => {
    const out = mkdtempSync(join(tmpdir(), 'bsx-suite-'));
    const r = spawnSync(process.execPath, [BSX, 'run', 'all', '--profile', 'smoke', '--device', 'cpu', '--out', out], { encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/plan \(estimates/);
    expect(r.stderr).toMatch(/estimated total: /);

    const findings = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8'));
    expect(findings).toHaveLength(16);
    expect(findings.map((f: { id: string }) => f.id)).toEqual(['F1', 'F2', 'F3', 'F4', 'F5', 'F6', 'F7', 'F8', 'F9', 'F10', 'F11', 'F12', 'F13', 'F14', 'F15', 'F16']);
    for (const f of findings) {
      expect(VERDICTS).toContain(f.verdict);
      expect(f.profile).toBe('smoke');
    }

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(16);
    for (const svg of svgs) {
      // every figure has drawn marks: paths with coordinates
      expect(svg).toMatch(/<path[^>]+d="M[\d.-]/);
    }
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // the findings beyond the study have their own section; accuracies read as percentages
    expect(html).toMatch(/<section id="beyond" class="beyond"><h2>Beyond the study<\/h2>[\s\S]*id="finding-F13"/);
    expect(html).toMatch(/<td>test accuracy, b64 lr0\.01<\/td><td class="num">\d{1,3}\.\d\d ± \d+\.\d\d%<\/td><td class="num">98%<\/td>/);
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(md).toMatch(/\| *F12 *\|/);

    // rebuilt from the store without training: fast, same verdicts
    const before = statSync(join(out, 'report.html')).mtimeMs;
    const t0 = Date.now();
    const again = spawnSync(process.execPath, [BSX, 'report', out, '--json'], { encoding: 'utf8', timeout: 300_000 });
    expect(again.status, again.stderr).toBe(0);
    const rebuilt = JSON.parse(again.stdout);
    expect(rebuilt.findings.map((f: { verdict: string }) => f.verdict)).toEqual(findings.map((f: { verdict: string }) => f.verdict));
    expect(statSync(join(out, 'report.html')).mtimeMs).toBeGreaterThan(before);
    expect(Date.now() - t0).toBeLessThan(60_000);

    // a second `bsx run` finds everything done
    const third = spawnSync(process.execPath, [BSX, 'run', 'F1', 'F9', '--profile', 'smoke', '--device', 'cpu', '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(third.status, third.stderr).toBe(0);
    expect(third.stderr).not.toMatch(/\btodo\b/);
  }, 900_000); // the smoke suite, its report and a rerun: about a minute on an idle 2-core machine

  it('as 2 shards (--shard k/N): the same runs, gradient points and findings as one process; the last shard writes the report', () => {
    const one = mkdtempSync(join(tmpdir(), 'bsx-suite-one-'));
    const two = mkdtempSync(join(tmpdir(), 'bsx-suite-two-'));
    const args = ['run', 'F1', 'F4', '--profile', 'smoke', '--device', 'cpu', '--json'];
    const a = spawnSync(process.execPath, [BSX, ...args, '--out', one], { encoding: 'utf8', timeout: 300_000 });
    expect(a.status, a.stderr).toBe(0);
    const first = spawnSync(process.execPath, [BSX, ...args, '--out', two, '--shard', '1/2'], { encoding: 'utf8', timeout: 300_000 });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/bsx: shard 1\/2 \(from --shard 1\/2\)/);
    const part = JSON.parse(first.stdout);
    expect(part.complete).toBe(false);
    const second = spawnSync(process.execPath, [BSX, ...args, '--out', two, '--shard', '2/2'], { encoding: 'utf8', timeout: 300_000 });
    expect(second.status, second.stderr).toBe(0);
    expect(part.units.length).toBeGreaterThan(0);
    // every unit ran on one shard only: together, the work of one process
    expect(storeDigest(two)).toEqual(storeDigest(one));
    expect(readFileSync(join(two, 'findings.json'), 'utf8')).toBe(readFileSync(join(one, 'findings.json'), 'utf8'));
    expect(JSON.parse(second.stdout).findings.map((f: { id: string }) => f.id)).toEqual(['F1', 'F4']);
  }, 300_000);

  it('rejects an unknown finding id', () => {
    const r = spawnSync(process.execPath, [BSX, 'run', 'F17', '--profile', 'smoke'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown finding 'F17'/);
  });

  it('bsx report names a folder that holds no suite', () => {
    const r = spawnSync(process.execPath, [BSX, 'report', mkdtempSync(join(tmpdir(), 'bsx-empty-'))], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/suite\.json not found/);
  });
});
