// Every training run of the finding suite, as data. Findings name the runs they need by key;
// a run shared by several findings (the b64 baseline above all) is trained once.

import type { Phase, TrainSpec } from '../experiments/train.js';
import { DEFAULT_WIDTHS } from '../engine/ensemble.js';
import { ADAMW_DECAYS, criticalBatchGrid } from './beyond-runs.js';
import { scaleEpochs, type Profile } from './profiles.js';

export type SuiteRunKey =
  | 'b2'
  | 'b64'
  | 'b256'
  | 'b1024'
  | 'b64-lr0.1'
  | 'b256-lr0.1'
  | 'b1024-lr0.1'
  | 'b1024x60'
  | 'b1024x1-b64'
  | 'b1024x30-b64'
  | 'b1024x30-lr0.1'
  | 'b1024x480'
  | 'adam-b64'
  | 'regime-early'
  /** F15's grid: batch size and learning rate (e.g. 'cbs-b256-lr0.2'). */
  | `cbs-b${number}-lr${number}`
  /** F16: AdamW at b64 with a decoupled weight decay (e.g. 'adamw-b64-wd0.1'). */
  | `adamw-b64-wd${number}`;

export interface CatalogRun {
  key: SuiteRunKey;
  label: string;
  spec: TrainSpec;
}

export const sgd = (batchSize: number, epochs: number, lr = 0.01): Phase => ({ batchSize, epochs, lr, optimizer: 'sgd' });

/** Adam is compared over at least this many seeds (its runs spread: F11, F16). */
export const ADAM_MIN_SEEDS = 3;

/** The runs of the suite at a profile's scale, for `seeds` seeds starting at `firstSeed`. */
export function catalog(p: Profile, seeds: number, firstSeed = 0): Map<SuiteRunKey, CatalogRun> {
  const seedList = Array.from({ length: seeds }, (_, i) => firstSeed + i);
  const widths = [...DEFAULT_WIDTHS];
  const runs = studyRuns(p, seedList, widths);
  const adamSeeds = Array.from({ length: Math.max(seeds, ADAM_MIN_SEEDS) }, (_, i) => firstSeed + i);
  const E30 = scaleEpochs(p, 30);
  runs.push({ key: 'adam-b64', label: 'Adam b64 lr0.01', spec: { widths, seeds: adamSeeds, phases: [{ batchSize: 64, epochs: E30, lr: 0.01, optimizer: 'adam' }] } });
  for (const wd of ADAMW_DECAYS) {
    runs.push({
      key: `adamw-b64-wd${wd}`,
      label: `AdamW b64 lr0.01 wd${wd}`,
      spec: { widths, seeds: seedList, phases: [{ batchSize: 64, epochs: E30, lr: 0.01, optimizer: { name: 'adamw', weightDecay: wd } }] },
    });
  }
  // F15's grid: a cell whose run is already above (the suite's seeds, the same phase) is that run
  const grid = criticalBatchGrid(p);
  const cellSeeds = grid.seeds === 'suite' ? seedList : seedList.slice(0, grid.seeds);
  for (const c of criticalBatchCells(p)) {
    if (runs.some((r) => r.key === c.key)) continue;
    runs.push({ key: c.key, label: `b${c.b} lr${c.lr} x${c.epochs} epochs`, spec: { widths, seeds: cellSeeds, phases: [sgd(c.b, c.epochs, c.lr)] } });
  }
  return new Map(runs.map((r) => [r.key, r]));
}

/** The runs of the study's own findings (F1-F12) but Adam's. */
function studyRuns(p: Profile, seedList: number[], widths: number[]): CatalogRun[] {
  const E30 = scaleEpochs(p, 30);
  const E60 = scaleEpochs(p, 60);
  const E480 = scaleEpochs(p, 480);
  const firstSeed = seedList[0] ?? 0;
  const runs: CatalogRun[] = [
    { key: 'b64', label: 'b64 lr0.01', spec: { widths, seeds: seedList, phases: [sgd(64, E30)] } },
    { key: 'b256', label: 'b256 lr0.01', spec: { widths, seeds: seedList, phases: [sgd(256, E30)] } },
    { key: 'b1024', label: 'b1024 lr0.01', spec: { widths, seeds: seedList, phases: [sgd(1024, E30)] } },
    { key: 'b64-lr0.1', label: 'b64 lr0.1', spec: { widths, seeds: seedList, phases: [sgd(64, E30, 0.1)] } },
    { key: 'b256-lr0.1', label: 'b256 lr0.1', spec: { widths, seeds: seedList, phases: [sgd(256, E30, 0.1)] } },
    { key: 'b1024-lr0.1', label: 'b1024 lr0.1', spec: { widths, seeds: seedList, phases: [sgd(1024, E30, 0.1)] } },
    { key: 'b1024x60', label: `b1024 x${E60} epochs`, spec: { widths, seeds: seedList, phases: [sgd(1024, E60)] } },
    { key: 'b1024x1-b64', label: 'b1024 x1, then b64', spec: { widths, seeds: seedList, phases: [sgd(1024, 1), sgd(64, E30)] } },
    { key: 'b1024x30-b64', label: `b1024 x${E30}, then b64`, spec: { widths, seeds: seedList, phases: [sgd(1024, E30), sgd(64, E30)] } },
    { key: 'b1024x30-lr0.1', label: `b1024 x${E30}, then lr 0.1`, spec: { widths, seeds: seedList, phases: [sgd(1024, E30), sgd(1024, E30, 0.1)] } },
    { key: 'b1024x480', label: `b1024 x${E480} epochs`, spec: { widths, seeds: seedList, phases: [sgd(1024, E480)] } },
    { key: 'regime-early', label: `b1024 x${p.earlyRegimeEpochs} (early regime)`, spec: { widths, seeds: [firstSeed], phases: [sgd(1024, p.earlyRegimeEpochs)] } },
  ];
  if (p.includeB2) runs.push({ key: 'b2', label: 'b2 lr0.01', spec: { widths, seeds: seedList, phases: [sgd(2, E30)] } });
  return runs;
}

export interface CriticalBatchCell {
  b: number;
  lr: number;
  epochs: number;
  /** Its run: its own ('cbs-b64-lr0.2'), or a run of the study's findings with the same phase and seeds. */
  key: SuiteRunKey;
}

/** F15's grid at this profile, batch size by batch size, each cell with the key of its run. */
export function criticalBatchCells(p: Profile): CriticalBatchCell[] {
  const grid = criticalBatchGrid(p);
  // the study's runs take the suite's seeds, so only a grid on the suite's seeds can share them
  const shared = grid.seeds === 'suite' ? studyRuns(p, [0], []) : [];
  const cells: CriticalBatchCell[] = [];
  for (const b of grid.batchSizes) {
    for (const lr of grid.lrs) {
      const epochs = grid.epochs(b);
      const phase = JSON.stringify([sgd(b, epochs, lr)]);
      const same = shared.find((r) => JSON.stringify(r.spec.phases) === phase);
      cells.push({ b, lr, epochs, key: same?.key ?? `cbs-b${b}-lr${lr}` });
    }
  }
  return cells;
}
