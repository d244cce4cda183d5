// Loads the native engine. Its surface is typed once, in @bsx/core-native's index.d.ts; nothing
// else in @bsx/core touches the raw binding: the wrappers in this folder validate arguments
// and keep the caller's stack.

import { createRequire } from 'node:module';
import type { NativeBinding } from '@bsx/core-native';
import { BsxError } from '../errors.js';

export type {
  NativeBinding,
  NativeDataset,
  NativeDescription,
  NativeEnsemble,
  NativeError,
  NativeGemm,
  NativeGemmOptions,
  NativeHyperparameter,
  NativeInfo,
  NativeOptimizerDescriptor,
  NativeOptimizerOptions,
  NativeSlot,
} from '@bsx/core-native';

let cached: NativeBinding | undefined;

/** Loads the compiled engine once; a failure says what was tried and how to build it. */
export function binding(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let where = '@bsx/core-native';
  try {
    where = require.resolve('@bsx/core-native');
    cached = require('@bsx/core-native') as NativeBinding;
    return cached;
  } catch (err) {
    throw new BsxError(
      'BSX_NATIVE_LOAD',
      `could not load the bsx native engine (${where}): ${(err as Error).message}. ` +
        'Build it with `pnpm install` (or `pnpm --filter @bsx/core-native rebuild`); ' +
        'it needs cmake >= 3.18 and a C++17 compiler.',
      { cause: err },
    );
  }
}
