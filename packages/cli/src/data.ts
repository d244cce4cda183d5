// Loads the training and test sets into the engine for a command, with the identity of the data
// in the run store (its name, limits and the fingerprint of the files' content).

import { join, resolve } from 'node:path';
import { Dataset, FINGERPRINT_CACHE_FILE, fingerprintFiles, loadMnist, type LoadMnistOptions, type RunData } from '@bsx/core';

export interface LoadedData {
  train: Dataset;
  test: Dataset;
  dir: string;
  /** What identifies the data of a run in the run store. */
  identity: RunData;
}

/** `store`: the run store's root, where the files' hashes are cached. */
export async function loadData(opts: { data?: string; trainLimit?: number; testLimit?: number; store: string }): Promise<LoadedData> {
  const lo: LoadMnistOptions = {};
  if (opts.data !== undefined) lo.dir = opts.data;
  if (opts.trainLimit !== undefined) lo.trainLimit = opts.trainLimit;
  if (opts.testLimit !== undefined) lo.testLimit = opts.testLimit;
  const m = await loadMnist(lo);
  const identity: RunData = { name: opts.data === undefined ? 'mnist' : `idx:${resolve(opts.data)}` };
  if (opts.trainLimit !== undefined) identity.trainLimit = m.train.count;
  if (opts.testLimit !== undefined) identity.testLimit = m.test.count;
  identity.fingerprint = await fingerprintFiles([m.train.files.images, m.train.files.labels, m.test.files.images, m.test.files.labels], {
    cacheFile: join(opts.store, FINGERPRINT_CACHE_FILE),
  });
  return { train: Dataset.fromImages(m.train), test: Dataset.fromImages(m.test), dir: m.dir, identity };
}
