// Profiles: the scale at which the finding suite runs. `full` is the study's exact setup;
// `quick` keeps every experiment but trains on a slice of the training set for fewer epochs
// (keeping the ratios between runs, e.g. b1024 for 16x the epochs of b64) and runs fewer
// gradient trials, so that a 2-core CPU finishes in about half an hour; `smoke` is the same at a
// scale of seconds, for tests.

import { DEFAULT_BATCH_SIZES } from '../experiments/grad-study.js';
import type { ProfileName } from './types.js';

export interface Profile {
  name: ProfileName;
  /** Training samples used (undefined: all 60,000). */
  trainLimit?: number;
  /** Test samples used (undefined: all 10,000). */
  testLimit?: number;
  /** The study's 30 epochs become this many; other epoch counts scale with it. */
  epochs30: number;
  /** Epochs of b1024 that make the early regime (the late regime is the b1024 run itself). */
  earlyRegimeEpochs: number;
  trials: number;
  batchSizes: number[];
  /** Seeds per training run, unless --seeds says otherwise. */
  seeds: number;
  /** Also train batch size 2 for F1 (costly on a CPU: about a million steps at full scale). */
  includeB2: boolean;
  /** One sentence on what differs from the study's setup. */
  note: string;
}

export const PROFILES: Record<ProfileName, Profile> = {
  full: {
    name: 'full',
    epochs30: 30,
    earlyRegimeEpochs: 2,
    trials: 1000,
    batchSizes: [...DEFAULT_BATCH_SIZES],
    seeds: 3,
    includeB2: true,
    note: "the study's setup: all 60,000 training and 10,000 test images, 30 epochs (60 and 480 where the study used them), 1000 gradient trials per batch size",
  },
  quick: {
    name: 'quick',
    trainLimit: 10000,
    epochs30: 10,
    earlyRegimeEpochs: 2,
    trials: 100,
    batchSizes: [...DEFAULT_BATCH_SIZES],
    seeds: 2,
    includeB2: false,
    note: 'reduced for a CPU: the first 10,000 training images, 10 epochs where the study used 30 (20 for 60, 160 for 480), 100 gradient trials per batch size, no batch-size-2 run; the test set is complete',
  },
  smoke: {
    name: 'smoke',
    trainLimit: 1024,
    testLimit: 500,
    epochs30: 2,
    earlyRegimeEpochs: 1,
    trials: 3,
    batchSizes: [2, 16, 128, 1024],
    seeds: 2,
    includeB2: false,
    note: 'a functional test, not a measurement: 1,024 training and 500 test images, 2 epochs where the study used 30, 3 gradient trials at 4 batch sizes',
  },
};

/** `auto`: `full` on a GPU, `quick` on a CPU. */
export function resolveProfile(name: ProfileName | 'auto', backend: 'cpu' | 'cuda'): Profile {
  if (name === 'auto') return PROFILES[backend === 'cuda' ? 'full' : 'quick'];
  const p = PROFILES[name];
  if (!p) throw new RangeError(`profile must be smoke, quick, full or auto, got '${String(name)}'`);
  return p;
}

/** The study's epoch count `e` (30, 60, 480, 1...) at this profile's scale (at least 1). */
export function scaleEpochs(p: Profile, e: number): number {
  return Math.max(1, Math.round((e * p.epochs30) / 30));
}
