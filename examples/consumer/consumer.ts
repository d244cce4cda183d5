// consumer.mjs with types: what a TypeScript project sees of @bsx/core (ESM, NodeNext).
// `npm run typecheck` checks it.
import { Dataset, Ensemble, loadMnist, train, type TrainResult, type TrainSpec } from '@bsx/core';

interface SeedOutcome {
  seed: number;
  untrainedTestAcc: number;
  epochs: { epoch: number; trainLoss: number; trainAcc: number; testLoss: number; testAcc: number }[];
}

const mnist = await loadMnist({ trainLimit: 2000, testLimit: 1000 });
const data: { train: Dataset; test: Dataset } = {
  train: Dataset.fromImages(mnist.train),
  test: Dataset.fromImages(mnist.test),
};
const spec: TrainSpec = { seeds: [0, 1], phases: [{ epochs: 1, batchSize: 64, lr: 0.01, optimizer: 'sgd' }] };

// the initial weights of each seed (Xavier-uniform, zero biases), before any training
const untrained = new Ensemble({ replicas: spec.seeds.length });
untrained.init(spec.seeds);
const before = await untrained.evaluate(data.test);

const result: TrainResult = await train(spec, data);
const seeds: SeedOutcome[] = result.seeds.map((s, r) => ({
  seed: s.seed,
  untrainedTestAcc: before.accuracy[r],
  epochs: s.epochs.map((e) => ({
    epoch: e.epoch,
    trainLoss: e.trainLoss,
    trainAcc: e.trainAcc,
    testLoss: e.testLoss,
    testAcc: e.testAcc,
  })),
}));
console.log(
  JSON.stringify({
    mnistDir: mnist.dir,
    backend: result.backend,
    trainCount: result.trainCount,
    testCount: result.testCount,
    seconds: result.seconds,
    seeds,
  }),
);
