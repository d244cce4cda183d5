// The training runs of the findings beyond the study, as data per profile: F15's grid of batch
// size x learning rate (docs/findings.md, F15) and F16's AdamW weight decays (F16). The
// catalogue (catalog.ts) turns them into runs.

import type { Profile } from './profiles.js';

export interface CriticalBatchGrid {
  batchSizes: number[];
  /** The learning rates tried at every batch size (the best one counts). */
  lrs: number[];
  /** Epochs of the run at batch size b: enough for the best learning rate to reach the target. */
  epochs: (b: number) => number;
  /** Seeds of every cell: the suite's, or this many from the first. */
  seeds: 'suite' | number;
  /** One sentence on how the grid is scaled at this profile. */
  note: string;
}

/**
 * F15's grid. `full` spans b 8 to 16384 with five learning rates and the suite's seeds, each run
 * long enough (30 epochs, and 30 x b / 1024 beyond b 1024) for a tuned learning rate to reach
 * the b64 baseline's accuracy. `quick` keeps four batch sizes a factor of 4 apart around the
 * knee, four learning rates a factor of 2 apart, one seed and the fewest epochs in which the
 * best learning rate reached the target when the grid was sized (plus a margin): about six
 * minutes on a 2-core CPU. `smoke` runs two cells for a few seconds.
 */
export function criticalBatchGrid(p: Profile): CriticalBatchGrid {
  switch (p.name) {
    case 'full':
      return {
        batchSizes: [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384],
        lrs: [0.01, 0.03, 0.1, 0.3, 1],
        epochs: (b) => Math.max(30, Math.round((30 * b) / 1024)),
        seeds: 'suite',
        note: 'batch sizes 8 to 16384, learning rates 0.01 to 1 (five), the suite\'s seeds, 30 epochs (30 x b / 1024 beyond b 1024)',
      };
    case 'quick':
      return {
        batchSizes: [16, 64, 256, 1024],
        lrs: [0.05, 0.1, 0.2, 0.4],
        epochs: (b) => (b <= 16 ? 3 : b <= 64 ? 4 : b <= 256 ? 8 : 12),
        seeds: 1,
        note: 'batch sizes 16, 64, 256 and 1024, learning rates 0.05 to 0.4 (four), one seed, 3 to 12 epochs (instead of b 8 to 16384, five learning rates, the suite\'s seeds, 30 epochs and more)',
      };
    default:
      return {
        batchSizes: [16, 256],
        lrs: [0.1],
        epochs: (b) => (b <= 16 ? 1 : 2),
        seeds: 1,
        note: 'two cells of a few seconds: a functional test',
      };
  }
}

/** F16: AdamW's decoupled weight decays at b64, lr 0.01 (PyTorch's default 0.01, then x10, x100). */
export const ADAMW_DECAYS: readonly number[] = Object.freeze([0.01, 0.1, 1]);
