// End to end: `bsx sweep` on the example learning-rate-scaling study (Fashion-MNIST from
// Debian's dataset-fashion-mnist; skipped with a message where it is not installed) and on a
// small MNIST study: one process and three shards in sequence leave bit-identical metrics and
// trial statistics; a shard killed with kill -9 in the middle of a unit, then every shard run
// again, completes with the same numbers and no run or point completed twice; the report and
// its CSV files (read by pandas where it is installed; loaded by headless Chromium where it is
// installed); a study with a mistake is refused before anything is written.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { storeDigest } from '../packages/core-ts/test/helpers/store-digest.js';

const ROOT = join(import.meta.dirname, '..');
const BSX = join(ROOT, 'packages', 'cli', 'dist', 'bsx.js');
const LR_STUDY = join(ROOT, 'examples', 'lr-scaling.yaml');
const KILL_STUDY = join(ROOT, 'test', 'fixtures', 'sweep-kill.yaml');
const FASHION = '/usr/share/datasets/fashion-mnist';
const haveFashion = existsSync(FASHION);

const roots: string[] = [];
function tmp(prefix = 'bsx-sweep-e2e-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  roots.push(d);
  return d;
}
afterAll(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

function bsx(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BSX, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

interface Journal {
  event: string;
  unit: string;
  detail?: string;
  shard: string | null;
}

function journal(out: string): Journal[] {
  const dir = join(out, 'journal');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Journal];
        } catch {
          return []; // a line cut short by kill -9
        }
      }),
  );
}

/** How many times each run and each gradient point was completed, over every process. */
function completions(out: string): Map<string, number> {
  const n = new Map<string, number>();
  for (const e of journal(out)) {
    if (e.event === 'run-finished' || e.event === 'point-finished') n.set(e.detail!, (n.get(e.detail!) ?? 0) + 1);
  }
  return n;
}

const sweepTest = haveFashion ? 'the lr-scaling example' : `the lr-scaling example (skipped: ${FASHION} is missing; apt-get install dataset-fashion-mnist)`;

describe.skipIf(!haveFashion)(sweepTest, () => {
  const one = tmp();
  const sharded = tmp();
  const times: Record<string, number> = {};

  it('as one process and as 3 shards in sequence: the same metrics and trial statistics, bit for bit', () => {
    const a = bsx(['sweep', 'run', LR_STUDY, '--out', one, '--device', 'cpu', '--json']);
    expect(a.code, a.stderr).toBe(0);
    times.one = a.seconds;
    const ra = JSON.parse(a.stdout);
    expect(ra.shard).toBeNull();
    expect(ra.complete).toBe(true);
    expect(ra.ran).toHaveLength(3 + 6); // 3 training packs, 2 layers x 3 batch sizes
    let three = 0;
    const ran: string[] = [];
    for (const k of [1, 2, 3]) {
      const s = bsx(['sweep', 'run', LR_STUDY, '--out', sharded, '--device', 'cpu', '--shard', `${k}/3`, '--json']);
      expect(s.code, s.stderr).toBe(0);
      three += s.seconds;
      const rs = JSON.parse(s.stdout);
      expect(rs.shard).toBe(`${k}/3`);
      expect(rs.complete).toBe(k === 3); // the last shard completes the study and writes the report
      ran.push(...rs.ran);
    }
    times.three = three;
    // every unit ran once, on one shard
    expect(ran.sort()).toEqual([...ra.ran].sort());
    const da = storeDigest(one);
    expect(Object.keys(da).filter((k) => k.endsWith('metrics.csv')).length).toBe(6 + 1); // the grid, and the grad study's run to epoch 1
    expect(Object.keys(da).filter((k) => k.endsWith('point.json')).length).toBe(6);
    expect(storeDigest(sharded)).toEqual(da);
    // every run (the grad study's own run to epoch 1 included) and point completed once
    const n = completions(sharded);
    expect(n.size).toBe(Object.keys(da).filter((k) => k.endsWith('summary.json') || k.endsWith('point.json')).length);
    for (const count of n.values()) expect(count).toBe(1);
    process.stderr.write(`sweep lr-scaling: one process ${times.one!.toFixed(1)} s, 3 shards in sequence ${times.three!.toFixed(1)} s\n`);
  });

  it('a second run finds everything done; status counts it', () => {
    const r = bsx(['sweep', 'run', LR_STUDY, '--out', one, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ran).toEqual([]);
    const st = bsx(['sweep', 'status', one, '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ study: 'lr-scaling', done: 9, running: 0, todo: 0 });
  });

  it('the report: tidy CSV files (pandas reads them) and an HTML page that loads in headless Chromium', () => {
    const r = bsx(['sweep', 'report', one, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.missing).toEqual([]);
    const runs = readFileSync(rep.files.runsCsv, 'utf8').trimEnd().split('\n');
    expect(runs[0]).toBe('study,run,schedule,batch_size,base_lr,lr,lr_scaling,optimizer,seed,epoch,phase,train_loss,test_loss,test_acc,weight_distance,diverged');
    expect(runs.length - 1).toBe(6 * 2 * 3); // runs x seeds x epochs
    // the learning rate of each row is the base rate scaled linearly from b16
    for (const line of runs.slice(1)) {
      const c = line.split(',');
      expect(Number(c[5])).toBe(Number(c[4]) * (Number(c[3]) / 16));
    }
    const trials = readFileSync(rep.files.trialsCsv, 'utf8').trimEnd().split('\n');
    expect(trials[0]).toBe('study,grad_study,layer,batch_size,trial,statistic,value');
    expect(trials.length - 1).toBe(2 * 3 * 16 * 5); // layers x batch sizes x trials x statistics
    // Debian's python3-pandas is for /usr/bin/python3 (another python3 may come first on PATH)
    const py = spawnSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', 'import pandas, sys; a = pandas.read_csv(sys.argv[1]); b = pandas.read_csv(sys.argv[2]); print(len(a), len(b), str(a["test_acc"].dtype), str(b["value"].dtype))', rep.files.runsCsv, rep.files.trialsCsv], { encoding: 'utf8' });
    if (py.status === 0) expect(py.stdout.trim()).toBe(`${6 * 2 * 3} ${2 * 3 * 16 * 5} float64 float64`);
    else process.stderr.write('sweep report: pandas is not installed; the CSV files were checked without it\n');

    const html = readFileSync(rep.files.html, 'utf8');
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    // heatmaps of test accuracy and W distance, curves by batch size and by learning rate, the gradient study's two layers
    expect(svgs.length).toBe(6);
    for (const svg of svgs) expect(svg).toMatch(/<path[^>]+d="M[\d.-]/);
    expect(html).toContain('Complete: all 6 runs and 6 gradient points are in.');
    expect(html).toMatch(/B<sub>simple<\/sub> = /);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const chromium = '/usr/bin/chromium';
    if (!existsSync(chromium)) {
      process.stderr.write('sweep report: /usr/bin/chromium is not installed; the browser check was skipped\n');
      return;
    }
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
    const shot = join(tmp(), 'sweep.png');
    const url = pathToFileURL(rep.files.html).href;
    const a = spawnSync(chromium, [...flags, `--user-data-dir=${tmp('bsx-chromium-')}`, '--enable-logging=stderr', '--v=0', `--screenshot=${shot}`, '--window-size=1280,4000', url], { encoding: 'utf8', timeout: 90_000 });
    expect(a.error).toBeUndefined();
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    expect((a.stderr ?? '').split('\n').filter((l) => /Uncaught|CONSOLE\(\d+\)|ERROR:CONSOLE|Failed to load resource/.test(l))).toEqual([]);
    const b = spawnSync(chromium, [...flags, `--user-data-dir=${tmp('bsx-chromium-')}`, '--dump-dom', url], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
    expect(b.stdout).toContain('id="report-end"');
    expect((b.stdout.match(/<svg\b/g) ?? []).length).toBe(6);
  });
});

describe('a shard killed in the middle of a unit', () => {
  it('kill -9, then every shard again: complete, the same numbers, nothing completed twice', async () => {
    const ref = tmp();
    const a = bsx(['sweep', 'run', KILL_STUDY, '--out', ref, '--device', 'cpu', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const out = tmp();
    const child = spawn(process.execPath, [BSX, 'sweep', 'run', KILL_STUDY, '--out', out, '--device', 'cpu', '--shard', '1/3'], { stdio: 'ignore' });
    // wait until the shard is inside a unit: it started one and a run has finished its first epoch
    const t0 = Date.now();
    let mid = false;
    while (!mid && Date.now() - t0 < 60_000 && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
      const started = journal(out).some((e) => e.event === 'start');
      const runsDir = join(out, 'runs');
      mid =
        started &&
        existsSync(runsDir) &&
        readdirSync(runsDir).some((d) => {
          const m = join(runsDir, d, 'metrics.csv');
          return existsSync(m) && readFileSync(m, 'utf8').trim().split('\n').length > 1 && !existsSync(join(runsDir, d, 'summary.json'));
        });
    }
    expect(mid, 'the shard did not reach the middle of a unit').toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const killed = journal(out).filter((e) => e.event === 'start').map((e) => e.unit);
    expect(journal(out).filter((e) => e.event === 'done' && killed.includes(e.unit))).toEqual([]);
    // the array again: every shard, the killed one resumes its unit (its lock is taken over at once)
    for (const k of [1, 2, 3]) {
      const s = bsx(['sweep', 'run', KILL_STUDY, '--out', out, '--device', 'cpu', '--shard', `${k}/3`, '--json']);
      expect(s.code, s.stderr).toBe(0);
    }
    expect(storeDigest(out)).toEqual(storeDigest(ref));
    const n = completions(out);
    expect(n.size).toBe(Object.keys(storeDigest(ref)).filter((k) => k.endsWith('summary.json') || k.endsWith('point.json')).length);
    for (const [what, count] of n) expect(count, what).toBe(1);
    const done = journal(out).filter((e) => e.event === 'done').map((e) => e.unit);
    expect(new Set(done).size).toBe(done.length);
  }, 180_000);
});

describe('the cluster examples', () => {
  it('the Kubernetes Indexed Job: as many shards as completions, the results on the shared volume, a study bsx accepts', () => {
    // the yaml package @bsx/core reads study files with
    const { parseAllDocuments } = createRequire(join(ROOT, 'packages', 'core-ts', 'package.json'))('yaml') as typeof import('yaml');
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'examples', 'k8s', 'sweep-job.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const job = docs.find((d) => d.kind === 'Job')!;
    const claim = docs.find((d) => d.kind === 'PersistentVolumeClaim')!;
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    expect(job.spec.completionMode).toBe('Indexed');
    const c = job.spec.template.spec.containers[0];
    const args: string[] = c.command;
    expect(args.slice(1, 3)).toEqual(['sweep', 'run']);
    expect(Number(args[args.indexOf('--shards') + 1])).toBe(job.spec.completions);
    expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
    const results = c.volumeMounts.find((m: { name: string }) => m.name === 'results');
    expect(job.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'results').persistentVolumeClaim.claimName).toBe(claim.metadata.name);
    expect(args[args.indexOf('--out') + 1]!.startsWith(`${results.mountPath}/`)).toBe(true);
    // the study it mounts is one bsx accepts, with the units of the lr-scaling example
    const dir = tmp();
    writeFileSync(join(dir, 'study.yaml'), cm.data['study.yaml']);
    const plan = bsx(['sweep', 'plan', join(dir, 'study.yaml'), '--out', join(dir, 'out'), '--device', 'cpu', '--shards', String(job.spec.completions), '--json']);
    const example = bsx(['sweep', 'plan', LR_STUDY, '--out', join(dir, 'out'), '--device', 'cpu', '--json']);
    if (haveFashion) {
      expect(plan.code, plan.stderr).toBe(0);
      const ids = (o: string) => (JSON.parse(o).units as { id: string }[]).map((u) => u.id);
      expect(ids(plan.stdout)).toEqual(ids(example.stdout));
      expect(JSON.parse(plan.stdout).perShard).toHaveLength(3);
    }
  });
});

describe('a study with a mistake', () => {
  it('is refused before anything is written, naming the field', () => {
    const dir = tmp();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, readFileSync(KILL_STUDY, 'utf8').replace('epochs: 3', 'epochs: 3\n  momentum: 0.9'));
    const out = join(dir, 'out');
    for (const cmd of ['run', 'plan']) {
      const r = bsx(['sweep', cmd, file, '--out', out, '--device', 'cpu']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^bsx: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: train\\.momentum: unknown field \\(train has: batchSizes, epochs, .*\\) \\(line 10\\)\\n$`));
      expect(existsSync(out)).toBe(false);
    }
    writeFileSync(file, readFileSync(KILL_STUDY, 'utf8').replace('batchSizes: [8, 64]', 'batchSizes: [8, 64, 7000]'));
    const big = bsx(['sweep', 'run', file, '--out', out, '--device', 'cpu']);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/train\.batchSizes holds batch size 7000, more than the 6000 training images/);
    expect(existsSync(join(out, 'runs'))).toBe(false);
  });
});
