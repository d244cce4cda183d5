// @bsx/core: datasets, the replicated-MLP engine, experiments.
export const version = '0.1.0';
export * from './errors.js';
export * from './datasets/index.js';
export * from './engine/binding.js';
export * from './engine/tensor.js';
export * from './engine/dataset.js';
export * from './engine/ensemble.js';
export * from './engine/device.js';
export * from './rng/philox.js';
export * from './experiments/metrics.js';
export * from './experiments/train.js';
export * from './experiments/phases.js';
export * from './experiments/run.js';
export * from './store/index.js';
export * from './stats/index.js';
export * from './experiments/grad-study.js';
