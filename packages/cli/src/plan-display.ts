// What the suite (bsx run) and the sweeps (bsx sweep run) show while they work, the same way:
// the plan (every unit of work with its state, estimate and who holds it), then one progress
// bar over all of it with its ETA, and a line as each unit ends.

import { hostname } from 'node:os';
import type { LockInfo, PlanItem, SpeedModel } from '@bsx/core';
import { table } from './format.js';
import { ProgressBar } from './progress.js';

/** Seconds as "0.4 s", "42 s", "12 min" or "1.5 h". */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 9.95) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Who holds a unit: "pid 12 on node-3". */
export function holders(h: readonly LockInfo[] | undefined): string {
  if (!h || h.length === 0) return '';
  return [...new Set(h.map((x) => `pid ${x.pid}${x.hostname !== hostname() ? ` on ${x.hostname}` : ''}`))].join(', ');
}

/** The plan as a table: unit, (shard), status, estimate, held by. */
export function planTable(items: readonly PlanItem[], withShard = false): string {
  return table(
    ['unit', ...(withShard ? ['shard'] : []), 'status', 'estimate', 'held by'],
    items.map((i) => [i.label, ...(withShard ? [i.shard ?? '-'] : []), i.status, i.status === 'done' ? '-' : fmtSeconds(i.estimate), holders(i.heldBy)]),
  );
}

/** The events of a runner of units, as the suite and the sweeps send them. */
export type DisplayEvent =
  | { type: 'plan'; items: PlanItem[]; estimate: number; speed: SpeedModel }
  | { type: 'start'; item: PlanItem }
  | { type: 'progress'; item: PlanItem; fraction: number; overall: number; detail: string }
  | { type: 'done'; item: PlanItem; seconds: number; reused?: boolean };

/** A display on stderr (nothing with --json): `of` names what is planned ("", " of shard 2/3"), `label` the bar. */
export function unitDisplay(opts: { json?: boolean; label: string; of?: string }): { onEvent: (e: DisplayEvent) => void; finish: () => void } {
  let bar: ProgressBar | undefined;
  const say = (s: string): void => {
    if (opts.json) return;
    if (bar) bar.log(s);
    else process.stderr.write(`${s}\n`);
  };
  return {
    onEvent(e) {
      if (e.type === 'plan') {
        say(`\nplan${opts.of ?? ''} (estimates from the engine measured just now):`);
        say(planTable(e.items));
        say(`estimated total: ${fmtSeconds(e.estimate)}\n`);
        if (!opts.json) bar = new ProgressBar({ total: 1000, label: opts.label });
      } else if (e.type === 'progress') {
        bar?.update(Math.round(e.overall * 1000), `${e.item.label}: ${e.detail}`);
      } else if (e.type === 'done') {
        say(e.reused ? `done already: ${e.item.label}` : `done: ${e.item.label} (${fmtSeconds(e.seconds)})`);
      }
    },
    finish() {
      bar?.finish();
      bar = undefined;
    },
  };
}
