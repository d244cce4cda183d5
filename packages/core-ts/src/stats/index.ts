export * from './descriptive.js';
export * from './tdist.js';
export * from './regression.js';
export * from './noise-scale.js';
export * from './noise-model.js';
export * from './critical-batch.js';
