// Memory estimates of training runs and gradient studies, made from their sizes alone before
// anything is allocated, and the check that refuses (BSX_TOO_LARGE) what this machine cannot
// hold, with the estimate and the machine's memory in the message.
//
// What is counted follows the engines (packages/core-native: src/cpu/cpu_ensemble.cpp and
// src/cuda/cuda_ensemble.cu) and the trainers (train.ts, grad-study.ts): per replica, the
// parameters, their snapshot, the gradients and the optimiser state (Adam: two more copies,
// SGD with momentum one); the layer activations and their deltas for one batch (the CPU engine
// works one replica at a time, the CUDA engine all at once) and for an evaluation chunk; the
// per-epoch data order [R, N] int32 that train() builds in JS; the data sets in the engine;
// and, when checkpoints are written, the copies of the state taken out of the engine.

import { freemem, totalmem } from 'node:os';
import { DEFAULT_WIDTHS } from '../engine/ensemble.js';
import { engineInfo } from '../engine/device.js';
import { BsxError } from '../errors.js';

const F32 = 4;
const I32 = 4;
const F64 = 8;
/** Rows of an evaluation chunk of the CPU engine. */
const CPU_EVAL_ROWS = 512;
/** The CUDA engine's evaluation workspace: at most 2^28 floats, at most 4096 rows. */
const CUDA_EVAL_FLOATS = 2 ** 28;
const CUDA_EVAL_ROWS = 4096;
/** Samples per replica train() hands the engine at once (TrainOptions.chunkSamples). */
const TRAIN_CHUNK_SAMPLES = 8192;

export type MemoryPlace = 'host' | 'device';

export interface MemoryPart {
  name: string;
  bytes: number;
  /** Host memory, or the GPU's (CUDA backend). */
  where: MemoryPlace;
}

export interface MemoryEstimate {
  /** What it is for, e.g. "train: 2000 replicas of 784-1024-1024-10". */
  what: string;
  parts: MemoryPart[];
  /** Bytes of host memory. */
  host: number;
  /** Bytes of GPU memory (0 on the CPU backend). */
  device: number;
  /** `what` names one thing ("1 replica"): the message says "needs". */
  singular?: boolean;
}

export interface MachineMemory {
  /** Host memory (the container's limit where it is lower than the machine's). */
  total: number;
  free: number;
  /** The GPU's memory, when the CUDA backend is used and it is known. */
  device?: number;
}

/** The memory of this machine (and of its GPU when `backend` is cuda). */
export function machineMemory(backend: 'cpu' | 'cuda' = 'cpu'): MachineMemory {
  let total = totalmem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  if (typeof limit === 'number' && limit > 0 && limit < total) total = limit;
  const m: MachineMemory = { total, free: Math.min(freemem(), total) };
  if (backend === 'cuda') {
    const d = engineInfo().cuda.totalMemoryBytes;
    if (typeof d === 'number' && d > 0) m.device = d;
  }
  return m;
}

/** Bytes as text: "14.9 GB", "480.0 MB". */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [1e18, 'EB'],
    [1e15, 'PB'],
    [1e12, 'TB'],
    [1e9, 'GB'],
    [1e6, 'MB'],
    [1e3, 'kB'],
  ];
  for (const [u, name] of units) if (bytes >= u) return `${(bytes / u).toFixed(1)} ${name}`;
  return `${Math.round(bytes)} B`;
}

function parametersPerReplica(widths: readonly number[]): number {
  let p = 0;
  for (let l = 0; l + 1 < widths.length; l++) p += widths[l]! * widths[l + 1]! + widths[l + 1]!;
  return p;
}

function largestTensor(widths: readonly number[]): number {
  let m = 0;
  for (let l = 0; l + 1 < widths.length; l++) m = Math.max(m, widths[l]! * widths[l + 1]!);
  return m;
}

/**
 * Copies of the parameters an optimiser keeps as its state: Adam two (first and second
 * moments), SGD with momentum one, plain SGD none. The optimiser is 'sgd', 'adam' or an object
 * {name, momentum?}; an unknown one counts as two.
 */
export function optimizerStateCopies(optimizer: unknown): number {
  const o = optimizer as { name?: unknown; momentum?: unknown } | string | null | undefined;
  const name = typeof o === 'string' ? o : typeof o?.name === 'string' ? o.name : undefined;
  if (name === 'sgd') {
    const m = typeof o === 'object' && o !== null ? o.momentum : undefined;
    return typeof m === 'number' && m !== 0 ? 1 : 0;
  }
  return 2;
}

function estimate(what: string, parts: MemoryPart[], singular: boolean): MemoryEstimate {
  const kept = parts.filter((p) => p.bytes > 0);
  const sum = (w: MemoryPlace): number => kept.filter((p) => p.where === w).reduce((a, p) => a + p.bytes, 0);
  return { what, parts: kept, host: sum('host'), device: sum('device'), ...(singular ? { singular } : {}) };
}

function describeModel(count: number, unit: string, widths: readonly number[]): string {
  return `${count} ${unit}${count === 1 ? '' : 's'} of ${widths.join('-')}`;
}

export interface TrainingMemoryInput {
  /** Seeds trained together. */
  replicas: number;
  /** Layer widths, input first (default 784-1024-1024-10). */
  widths?: readonly number[];
  /** The run's phases (batch size and optimiser of each). */
  phases: readonly { batchSize: number; optimizer: unknown }[];
  trainCount: number;
  testCount: number;
  backend?: 'cpu' | 'cuda';
  /** Checkpoints are written (runTraining): the state is copied out of the engine. */
  checkpoints?: boolean;
  /** What the estimate is for, in messages (default "train: R replicas of ..."). */
  what?: string;
}

/** The memory a training run needs, estimated from its sizes. */
export function estimateTrainingMemory(i: TrainingMemoryInput): MemoryEstimate {
  const widths = i.widths ?? DEFAULT_WIDTHS;
  const R = i.replicas;
  const N = i.trainCount;
  const cuda = i.backend === 'cuda';
  const dev: MemoryPlace = cuda ? 'device' : 'host';
  const P = parametersPerReplica(widths);
  const perRow = widths.reduce((a, w, l) => a + (l > 0 ? 2 : 1) * w, 0); // activations and deltas
  const b = Math.max(1, ...i.phases.map((p) => Math.min(p.batchSize, N)));
  const copies = Math.max(0, ...i.phases.map((p) => optimizerStateCopies(p.optimizer)));
  const state = R * P * F32;
  const chunk = Math.min(N, Math.max(b, TRAIN_CHUNK_SAMPLES));
  const evalRows = cuda
    ? Math.max(1, Math.min(Math.floor(CUDA_EVAL_FLOATS / (perRow * R)), CUDA_EVAL_ROWS, Math.max(N, i.testCount)))
    : CPU_EVAL_ROWS;
  const parts: MemoryPart[] = [
    { name: 'parameters', bytes: state, where: dev },
    { name: 'snapshot', bytes: state, where: dev },
    { name: 'gradients', bytes: state, where: dev },
    { name: 'optimiser state', bytes: copies * state, where: dev },
    // one workspace, as large as the larger of a batch and an evaluation chunk
    { name: 'activations', bytes: (cuda ? R : 1) * Math.max(b, evalRows) * perRow * F32, where: dev },
    { name: 'data order', bytes: (R * N + N + R * chunk) * I32, where: 'host' },
    { name: 'data sets', bytes: (N + i.testCount) * (widths[0]! * F32 + 1), where: 'host' },
  ];
  if (cuda) {
    parts.push({ name: 'data order on the GPU', bytes: 2 * R * chunk * I32, where: 'device' });
    parts.push({ name: 'data sets on the GPU', bytes: (N + i.testCount) * (widths[0]! + 1) * F32, where: 'device' });
  }
  if (i.checkpoints) {
    parts.push({ name: 'checkpoint copies', bytes: (2 + copies) * state + R * largestTensor(widths) * F32, where: 'host' });
  }
  return estimate(i.what ?? `train: ${describeModel(R, 'replica', widths)}`, parts, R === 1);
}

export interface GradStudyMemoryInput {
  /** Trials run at once (replicas). */
  chunk: number;
  trials: number;
  batchSizes: readonly number[];
  samplesPerTrial: number;
  widths?: readonly number[];
  /** Training samples the trials draw from (the data set in the engine). */
  trainCount: number;
  backend?: 'cpu' | 'cuda';
  /** Every trial's S is exported. */
  exportS?: boolean;
  /** The layer whose weight gradient is measured, from 0 (default: the last). */
  layer?: number;
  what?: string;
}

/** The memory a gradient study needs, estimated from its sizes. */
export function estimateGradStudyMemory(i: GradStudyMemoryInput): MemoryEstimate {
  const widths = i.widths ?? DEFAULT_WIDTHS;
  const cuda = i.backend === 'cuda';
  const dev: MemoryPlace = cuda ? 'device' : 'host';
  const R = Math.min(i.chunk, i.trials);
  // one ensemble per chunk size: the full chunks and the last, shorter one
  const rest = i.trials > i.chunk ? i.trials % i.chunk : 0;
  const held = R + rest;
  const P = parametersPerReplica(widths);
  const perRow = widths.reduce((a, w, l) => a + (l > 0 ? 2 : 1) * w, 0);
  const b = Math.max(1, ...i.batchSizes.map((x) => Math.min(x, i.samplesPerTrial)));
  const l = i.layer ?? widths.length - 2;
  const last = widths[l + 1]! * widths[l]!;
  const state = held * P * F32;
  const parts: MemoryPart[] = [
    { name: 'parameters', bytes: state, where: dev },
    { name: 'snapshot', bytes: state, where: dev },
    { name: 'gradients', bytes: state, where: dev },
    { name: 'activations', bytes: (cuda ? R : 1) * b * perRow * F32, where: dev },
    { name: 'summed gradients', bytes: 2 * R * last * F64, where: dev },
    // the regime's tensors are broadcast to every replica through one staging copy
    { name: 'broadcast staging', bytes: R * largestTensor(widths) * F32, where: 'host' },
    { name: 'trial samples', bytes: R * i.samplesPerTrial * I32 * (cuda ? 2 : 1), where: 'host' },
    { name: 'per-trial results', bytes: i.trials * i.batchSizes.length * 5 * 2 * F64, where: 'host' },
    { name: 'data set', bytes: i.trainCount * (widths[0]! * F32 + 1), where: 'host' },
  ];
  if (i.exportS) parts.push({ name: 'exported S', bytes: 3 * R * last * F32, where: 'host' });
  if (cuda) parts.push({ name: 'data set on the GPU', bytes: i.trainCount * (widths[0]! + 1) * F32, where: 'device' });
  return estimate(i.what ?? `gradient study: ${describeModel(R, 'trial', widths)} at once`, parts, R === 1);
}

function partsText(parts: MemoryPart[], where: MemoryPlace): string {
  const mine = parts.filter((p) => p.where === where).sort((a, z) => z.bytes - a.bytes);
  const total = mine.reduce((a, p) => a + p.bytes, 0);
  const shown = mine.filter((p, k) => k < 5 && p.bytes >= total / 100);
  const more = mine.length > shown.length ? ', ...' : '';
  return shown.map((p) => `${p.name} ${formatBytes(p.bytes)}`).join(', ') + more;
}

/**
 * Refuses (BSX_TOO_LARGE) an estimate above the machine's memory, or above the GPU's for what
 * lives there; the message gives the estimate, its largest parts and the memory there is.
 */
export function checkMemory(e: MemoryEstimate, machine?: MachineMemory): void {
  const m = machine ?? machineMemory(e.device > 0 ? 'cuda' : 'cpu');
  const hostOver = e.host > m.total;
  const deviceOver = e.device > 0 && m.device !== undefined && e.device > m.device;
  if (!hostOver && !deviceOver) return;
  const here = `this machine has ${formatBytes(m.total)} of memory (${formatBytes(m.free)} free)`;
  const need = e.singular ? 'needs' : 'need';
  let message: string;
  if (e.device === 0) {
    message = `${e.what} ${need} about ${formatBytes(e.host)} (${partsText(e.parts, 'host')}); ${here}`;
  } else {
    message =
      `${e.what} ${need} about ${formatBytes(e.device)} on the GPU (${partsText(e.parts, 'device')}) ` +
      `and ${formatBytes(e.host)} here (${partsText(e.parts, 'host')}); ` +
      `the GPU has ${m.device !== undefined ? formatBytes(m.device) : 'an unknown amount'}, ${here}`;
  }
  throw new BsxError('BSX_TOO_LARGE', message);
}
