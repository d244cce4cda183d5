// The run store of @bsx/core: run directories keyed by spec hash, atomic writes, locks,
// metrics CSV, checkpoints and NPY exports.
export * from './atomic.js';
export * from './hash.js';
export * from './lock.js';
export * from './run-store.js';
export * from '../io/npy.js';
