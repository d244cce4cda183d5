// The CUDA backend against the CPU backend, op by op (init bit-identical; forward, gradients,
// SGD and Adam steps, graph-replayed loops, evaluate, stats, gradient-study trials within
// per-op tolerances; a few epochs of training within a loose one). The cases live in
// cuda_parity_cases.mjs, shared with scripts/gpu-check.mjs (the same checks without vitest,
// for a GPU machine).
// Without a usable GPU every parity test is skipped, and the reason is printed.

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
// Plain ESM shared with scripts/gpu-check.mjs (no type declarations).
import { cudaUnavailableReason, parityCases } from './cuda_parity_cases.mjs';

const addon = createRequire(import.meta.url)('../index.cjs');
const unavailable: string | null = cudaUnavailableReason(addon);
if (unavailable !== null) {
  console.log(`cuda_parity: skipped, ${unavailable}`);
}

describe.skipIf(unavailable !== null)('CUDA vs CPU parity', () => {
  // listed even when skipped, so the report names what did not run
  for (const c of parityCases(addon)) {
    it(c.name, async () => {
      await c.run((line: string) => console.log(`  ${c.name}: ${line}`));
    }, c.timeoutMs);
  }
});

describe.runIf(unavailable !== null)('CUDA unavailable', () => {
  it('new Ensemble({ backend: "cuda" }) says why', () => {
    expect(() => new addon.Ensemble({ replicas: 1, widths: [2, 2], backend: 'cuda' })).toThrow(
      /cuda: unavailable \(.+\)/,
    );
  });
});
