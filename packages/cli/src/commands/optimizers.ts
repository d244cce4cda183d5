// bsx optimizers: the engine's optimisers, their hyperparameters (default, valid range) and
// state slots, read from the engine's table.

import { optimizers } from '@bsx/core';

/** "0.9 in [0, 1)" or "false (flag)": a hyperparameter's default and range. */
export function describeHyperparameter(h: ReturnType<typeof optimizers>[number]['hyperparameters'][number]): string {
  if (h.type === 'boolean') return `${h.name}=${String(h.default)} (flag)`;
  const lo = h.minExclusive ? '(' : '[';
  const hi = h.maxExclusive ? ')' : ']';
  return `${h.name}=${h.default} in ${lo}${h.min}, ${h.max}${hi}`;
}

export function optimizersCommand(opts: { json?: boolean }): void {
  const table = optimizers();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(table, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const o of table) {
    lines.push(`${o.name}  (as ${o.reference}; state: ${o.state.join(', ') || 'none'})`);
    for (const h of o.hyperparameters) lines.push(`  ${describeHyperparameter(h).padEnd(34)} ${h.doc}`);
  }
  lines.push('', 'Give one as --optimizer NAME with --<hyperparameter> options, or NAME(key=value,flag) in --optimizer and --phases,');
  lines.push('e.g. --phases "64x2@0.01:sgd(momentum=0.9,nesterov)" or --optimizer adamw --weight-decay 0.05.');
  process.stdout.write(`${lines.join('\n')}\n`);
}
