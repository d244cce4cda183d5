// A real Slurm: a one-node cluster on this machine (Debian's slurm-wlm; no munge: auth/none and
// cred/none; its own ports, state and spool folders in a temporary folder), slurmctld and slurmd
// started here as child processes and stopped by their pids whatever happens. The example
// sbatch script runs the lr-scaling study as `sbatch --array=0-2 --wait`: the same numbers as one
// process, bit for bit, and `bsx sweep report` of the folder. Then a study with longer units: one
// array task is cancelled with scancel in the middle of a unit, the array is submitted again and
// completes with the same numbers as one process, nothing completed twice. Skipped, with a
// message, where Slurm is not installed (.ci/run installs it) or this is not root.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDigest } from '../packages/core-ts/test/helpers/store-digest.js';

const ROOT = join(import.meta.dirname, '..');
const BSX = join(ROOT, 'packages', 'cli', 'dist', 'bsx.js');
const SBATCH_SCRIPT = join(ROOT, 'examples', 'slurm', 'sweep.sbatch');
const LR_STUDY = join(ROOT, 'examples', 'lr-scaling.yaml');
const KILL_STUDY = join(ROOT, 'test', 'fixtures', 'sweep-kill.yaml');

const which = (cmd: string): string | undefined => {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) if (d && existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
};
const slurmctld = which('slurmctld');
const slurmd = which('slurmd');
const root = process.getuid?.() === 0;
const haveFashion = existsSync('/usr/share/datasets/fashion-mnist');
const why = !slurmctld || !slurmd || !which('sbatch') ? 'Slurm is not installed (apt-get install slurm-wlm)' : !root ? 'the test cluster runs its daemons as root' : !haveFashion ? 'dataset-fashion-mnist is not installed' : '';
const title = why === '' ? 'a Slurm job array' : `a Slurm job array (skipped: ${why})`;

/** A free TCP port on this machine. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(why !== '')(title, () => {
  let dir = '';
  let conf = '';
  const daemons: ChildProcess[] = [];
  let env: NodeJS.ProcessEnv = {};

  const slurm = (cmd: string, args: string[], timeout = 60_000) => spawnSync(cmd, args, { encoding: 'utf8', timeout, env });
  const bsx = (args: string[]) => spawnSync(process.execPath, [BSX, ...args], { encoding: 'utf8', timeout: 300_000 });

  /** Waits (polling) until `ok` holds, at most `ms`. */
  async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(200);
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bsx-slurm-'));
    for (const d of ['state', 'spool', 'log', 'jobs']) mkdirSync(join(dir, d));
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    conf = join(dir, 'slurm.conf');
    writeFileSync(
      conf,
      [
        'ClusterName=bsxtest',
        'SlurmctldHost=localhost',
        `SlurmctldPort=${ctldPort}`,
        `SlurmdPort=${dPort}`,
        'AuthType=auth/none',
        'CredType=cred/none',
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU',
        'MpiDefault=none',
        'ReturnToService=2',
        'SlurmUser=root',
        'SlurmdUser=root',
        `StateSaveLocation=${dir}/state`,
        `SlurmdSpoolDir=${dir}/spool`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd.pid`,
        `SlurmctldLogFile=${dir}/log/slurmctld.log`,
        `SlurmdLogFile=${dir}/log/slurmd.log`,
        // one CPU per task: two tasks of the array run at once on a 2-core machine
        'NodeName=bsxnode NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN',
        'PartitionName=bsx Nodes=bsxnode Default=YES MaxTime=INFINITE State=UP',
        '',
      ].join('\n'),
    );
    env = { ...process.env, SLURM_CONF: conf, BSX: `${process.execPath} ${BSX}` };
    daemons.push(spawn(slurmctld!, ['-D', '-f', conf], { stdio: 'ignore', env }));
    daemons.push(spawn(slurmd!, ['-D', '-f', conf, '-N', 'bsxnode'], { stdio: 'ignore', env }));
    await until(
      'the node to come up (sinfo)',
      () => {
        if (daemons.some((d) => d.exitCode !== null)) throw new Error(`a Slurm daemon exited: ${readLogs()}`);
        return /idle/.test(slurm('sinfo', ['-h', '-o', '%T'], 5000).stdout ?? '');
      },
      30_000,
    );
  }, 60_000);

  function readLogs(): string {
    return ['slurmctld.log', 'slurmd.log'].map((f) => (existsSync(join(dir, 'log', f)) ? readFileSync(join(dir, 'log', f), 'utf8').split('\n').slice(-15).join('\n') : '')).join('\n');
  }

  function jobLogs(): string {
    const d = join(dir, 'jobs');
    return readdirSync(d).map((f) => `${f}:\n${readFileSync(join(d, f), 'utf8')}`).join('\n');
  }

  afterAll(async () => {
    // cancel what is left, wait for the steps to end, then stop the daemons by their pids
    if (conf !== '') {
      slurm('scancel', ['--user=root'], 10_000);
      const t0 = Date.now();
      while (Date.now() - t0 < 20_000 && (slurm('squeue', ['-h'], 5000).stdout ?? '').trim() !== '') await sleep(300);
    }
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGTERM');
    const t0 = Date.now();
    while (Date.now() - t0 < 5000 && daemons.some((d) => d.exitCode === null && d.signalCode === null)) await sleep(100);
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  function sbatch(study: string, out: string, wait: boolean): string {
    const r = slurm(
      'sbatch',
      ['--parsable', '--array=0-2', '--cpus-per-task=1', `--chdir=${ROOT}`, `--output=${dir}/jobs/%A_%a.out`, ...(wait ? ['--wait'] : []), SBATCH_SCRIPT, study, out],
      240_000,
    );
    expect(r.status, `sbatch failed: ${r.stderr}\n${jobLogs()}\n${readLogs()}`).toBe(0);
    return r.stdout.trim().split(';')[0]!;
  }

  it('the lr-scaling study as sbatch --array=0-2 --wait: the numbers of one process; bsx sweep report', () => {
    const ref = join(dir, 'ref-lr');
    const one = bsx(['sweep', 'run', LR_STUDY, '--out', ref, '--device', 'cpu']);
    expect(one.status, one.stderr).toBe(0);
    const out = join(dir, 'lr');
    const t0 = performance.now();
    sbatch(LR_STUDY, out, true);
    process.stderr.write(`slurm: the lr-scaling array (3 tasks, 2 at a time) took ${((performance.now() - t0) / 1000).toFixed(1)} s with scheduling\n`);
    const logs = jobLogs();
    for (const k of [1, 2, 3]) expect(logs).toContain(`bsx: shard ${k}/3 (from SLURM_ARRAY_TASK_ID=${k - 1} of 3 tasks`);
    expect(storeDigest(out)).toEqual(storeDigest(ref));
    const rep = bsx(['sweep', 'report', out, '--json']);
    expect(rep.status, rep.stderr).toBe(0);
    const r = JSON.parse(rep.stdout);
    expect(r.missing).toEqual([]);
    expect(existsSync(r.files.html)).toBe(true);
  }, 300_000);

  it('scancel of one task in the middle of a unit, then the array again: complete, the same numbers, nothing completed twice', async () => {
    const ref = join(dir, 'ref-kill');
    const one = bsx(['sweep', 'run', KILL_STUDY, '--out', ref, '--device', 'cpu']);
    expect(one.status, one.stderr).toBe(0);
    const out = join(dir, 'kill');
    const job = sbatch(KILL_STUDY, out, false);
    // a task inside a training unit: it started the unit and one of its runs finished an epoch
    let task: string | undefined;
    await until(
      'an array task in the middle of a unit',
      () => {
        const runs = join(out, 'runs');
        const journal = join(out, 'journal');
        if (!existsSync(runs) || !existsSync(journal)) return false;
        const mid = readdirSync(runs).some((d) => {
          const m = join(runs, d, 'metrics.csv');
          return existsSync(m) && readFileSync(m, 'utf8').trim().split('\n').length > 1 && !existsSync(join(runs, d, 'summary.json'));
        });
        if (!mid) return false;
        for (const f of readdirSync(journal)) {
          for (const line of readFileSync(join(journal, f), 'utf8').split('\n')) {
            const m = /"shard":"(\d)\/3","event":"start","unit":"train:/.exec(line);
            if (m) task = String(Number(m[1]) - 1);
          }
        }
        return task !== undefined;
      },
      120_000,
    );
    const c = slurm('scancel', [`${job}_${task}`]);
    expect(c.status, c.stderr).toBe(0);
    await until('the first array to end', () => (slurm('squeue', ['-h', '-j', job], 5000).stdout ?? '').trim() === '', 120_000);
    // the cancelled task stopped inside its unit (Slurm's SIGTERM: bsx stops after the current chunk)
    const cancelled = readdirSync(join(out, 'journal'))
      .flatMap((f) => readFileSync(join(out, 'journal', f), 'utf8').split('\n'))
      .filter((l) => l.includes(`"shard":"${Number(task) + 1}/3","event":"failed"`));
    expect(cancelled.length, jobLogs()).toBe(1);
    expect(cancelled[0]).toMatch(/"unit":"train:.*"error":"training cancelled"/);
    sbatch(KILL_STUDY, out, true);
    expect(storeDigest(out)).toEqual(storeDigest(ref));
    // every run and point completed exactly once, over both arrays
    const n = new Map<string, number>();
    for (const f of readdirSync(join(out, 'journal'))) {
      for (const line of readFileSync(join(out, 'journal', f), 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        const e = JSON.parse(line) as { event: string; detail?: string };
        if (e.event === 'run-finished' || e.event === 'point-finished') n.set(e.detail!, (n.get(e.detail!) ?? 0) + 1);
      }
    }
    expect(n.size).toBe(Object.keys(storeDigest(ref)).filter((k) => k.endsWith('summary.json') || k.endsWith('point.json')).length);
    for (const [what, count] of n) expect(count, what).toBe(1);
    const st = bsx(['sweep', 'status', out, '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ running: 0, todo: 0 });
  }, 400_000);
});
