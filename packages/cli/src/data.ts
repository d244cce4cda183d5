// Loads the training and test sets into the engine for a command.

import { Dataset, loadMnist, type LoadMnistOptions } from '@bsx/core';

export interface LoadedData {
  train: Dataset;
  test: Dataset;
  dir: string;
}

export async function loadData(opts: { data?: string; trainLimit?: number; testLimit?: number }): Promise<LoadedData> {
  const lo: LoadMnistOptions = {};
  if (opts.data !== undefined) lo.dir = opts.data;
  if (opts.trainLimit !== undefined) lo.trainLimit = opts.trainLimit;
  if (opts.testLimit !== undefined) lo.testLimit = opts.testLimit;
  const m = await loadMnist(lo);
  return { train: Dataset.fromImages(m.train), test: Dataset.fromImages(m.test), dir: m.dir };
}
