import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // native engine: separate processes, and not more at once than the machine has cores
    pool: 'forks',
    maxWorkers: 2,
  },
});
