import { configDefaults, defineConfig } from 'vitest/config';

// test/consumer.test.ts packs bsx, installs it with npm and compiles the engine in a scratch
// project: the heaviest file by far, so it runs after the others, on its own.
const CONSUMER = 'test/consumer.test.ts';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // native engine: separate processes, and not more at once than the machine has cores
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'bsx',
          include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, CONSUMER],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'consumer', include: [CONSUMER], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
