// Loads the training and test sets into the engine for a command.

import { resolve } from 'node:path';
import { Dataset, loadMnist, type LoadMnistOptions, type RunData } from '@bsx/core';

export interface LoadedData {
  train: Dataset;
  test: Dataset;
  dir: string;
  /** What identifies the data of a run in the run store. */
  identity: RunData;
}

export async function loadData(opts: { data?: string; trainLimit?: number; testLimit?: number }): Promise<LoadedData> {
  const lo: LoadMnistOptions = {};
  if (opts.data !== undefined) lo.dir = opts.data;
  if (opts.trainLimit !== undefined) lo.trainLimit = opts.trainLimit;
  if (opts.testLimit !== undefined) lo.testLimit = opts.testLimit;
  const m = await loadMnist(lo);
  const identity: RunData = { name: opts.data === undefined ? 'mnist' : `idx:${resolve(opts.data)}` };
  if (opts.trainLimit !== undefined) identity.trainLimit = m.train.count;
  if (opts.testLimit !== undefined) identity.testLimit = m.test.count;
  return { train: Dataset.fromImages(m.train), test: Dataset.fromImages(m.test), dir: m.dir, identity };
}
