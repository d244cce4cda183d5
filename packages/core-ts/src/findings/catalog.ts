// Every training run of the finding suite, as data. Findings name the runs they need by key;
// a run shared by several findings (the b64 baseline above all) is trained once.

import type { Phase, TrainSpec } from '../experiments/train.js';
import { DEFAULT_WIDTHS } from '../engine/ensemble.js';
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
  | 'regime-early';

export interface CatalogRun {
  key: SuiteRunKey;
  label: string;
  spec: TrainSpec;
}

const sgd = (batchSize: number, epochs: number, lr = 0.01): Phase => ({ batchSize, epochs, lr, optimizer: 'sgd' });

/** The runs of the suite at a profile's scale, for `seeds` seeds starting at `firstSeed`. */
export function catalog(p: Profile, seeds: number, firstSeed = 0): Map<SuiteRunKey, CatalogRun> {
  const E30 = scaleEpochs(p, 30);
  const E60 = scaleEpochs(p, 60);
  const E480 = scaleEpochs(p, 480);
  const seedList = Array.from({ length: seeds }, (_, i) => firstSeed + i);
  const widths = [...DEFAULT_WIDTHS];
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
    { key: 'adam-b64', label: 'Adam b64 lr0.01', spec: { widths, seeds: seedList, phases: [{ batchSize: 64, epochs: E30, lr: 0.01, optimizer: 'adam' }] } },
    { key: 'regime-early', label: `b1024 x${p.earlyRegimeEpochs} (early regime)`, spec: { widths, seeds: [firstSeed], phases: [sgd(1024, p.earlyRegimeEpochs)] } },
  ];
  if (p.includeB2) runs.push({ key: 'b2', label: 'b2 lr0.01', spec: { widths, seeds: seedList, phases: [sgd(2, E30)] } });
  return new Map(runs.map((r) => [r.key, r]));
}
