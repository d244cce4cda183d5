// What the engine was built with and what this machine offers: backends, CPU features,
// threads, and CUDA (with the reason when it is unavailable).

import { binding, type NativeInfo } from './binding.js';

export type DeviceKind = 'cpu' | 'cuda';
export type DeviceRequest = DeviceKind | 'auto';

export type EngineInfo = NativeInfo;

export function engineInfo(): EngineInfo {
  return binding().info();
}

/** Worker threads of the CPU engine (BSX_THREADS overrides the default of one per core). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`threads must be a positive integer, got ${n}`);
  binding().setThreads(n);
}

export interface ResolvedDevice {
  kind: DeviceKind;
  /** Why `auto` chose the CPU, when it did. */
  note?: string;
}

/**
 * Resolves a device request: `cpu` always works; `cuda` needs a usable GPU (else an error that
 * says why); `auto` takes CUDA when usable and otherwise the CPU, saying why.
 */
export function resolveDevice(request: DeviceRequest = 'auto'): ResolvedDevice {
  if (request === 'cpu') return { kind: 'cpu' };
  const info = engineInfo();
  if (request === 'cuda') {
    if (!info.cuda.available) {
      throw new Error(`device cuda: unavailable (${info.cuda.reason ?? 'unknown reason'})`);
    }
    return { kind: 'cuda' };
  }
  if (request !== 'auto') throw new RangeError(`device must be auto, cpu or cuda, got '${String(request)}'`);
  if (info.cuda.available) return { kind: 'cuda' };
  return { kind: 'cpu', note: `cuda unavailable (${info.cuda.reason ?? 'unknown reason'}); using the CPU` };
}
