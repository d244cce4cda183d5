export * from './descriptive.js';
export * from './tdist.js';
export * from './regression.js';
export * from './noise-scale.js';
