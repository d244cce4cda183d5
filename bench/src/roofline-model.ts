// The roofline model of one training step of the study's MLP (784-1024-1024-10, ReLU,
// log-softmax + NLL, plain SGD) at batch b, and of evaluation: per phase the FLOPs, the bytes
// that must move at least, the cache level each buffer lives in, and the time bound
// max(FLOPs / FMA ceiling, sum of bytes / bandwidth of their level). Pure arithmetic, no
// native code: `roofline.ts` measures the ceilings and the phases and prints both.
// Reference: S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual
// performance model for multicore architectures", CACM 52(4), 2009; LRU stack distance:
// R. Mattson et al., "Evaluation techniques for storage hierarchies", IBM Systems J. 9(2), 1970.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LAYERS } from './peer.js';

/** Bytes of one fp32 value (and of one int32 label). */
export const F32 = 4;
/** Samples of the MNIST training set (the gather reads random rows of it). */
export const TRAIN_SAMPLES = 60000;
/** Samples of the MNIST test set (evaluation streams it). */
export const TEST_SAMPLES = 10000;
/**
 * Operations per logit of the loss head: max, subtract, exp, sum, divide, subtract the
 * one-hot, scale by 1/b (the gradient); plus one log per row. Only an estimate: the head's
 * bound is microseconds either way.
 */
export const LOSS_OPS_PER_LOGIT = 7;

export const LEVELS = ['L1', 'L2', 'L3', 'DRAM'] as const;
export type Level = (typeof LEVELS)[number];

/** Capacity in bytes of each level for the engine's threads (DRAM: Infinity). */
export type Capacities = Record<Level, number>;
/** Bytes per second of each level. */
export type Bandwidths = Record<Level, number>;

export type Access = 'r' | 'w' | 'rw';

/** One buffer a phase touches: read, written, or read and written (bytes move twice). */
export interface BufferUse {
  buffer: string;
  access: Access;
  /**
   * A stream from memory that is never reused within the window (random rows of the
   * dataset): it always comes from DRAM and adds `bytes` to the other buffers' distances.
   */
  stream?: { bytes: number };
}

export type PhaseKind = 'gather' | 'forward' | 'loss' | 'dgrad' | 'wgrad+update';

export interface PhaseModel {
  /** 'fwd1', 'dgrad3', 'wgrad2', 'loss', 'gather'. */
  id: string;
  kind: PhaseKind;
  /** 1-based layer (forward, dgrad, wgrad+update). */
  layer?: number;
  label: string;
  flops: number;
  uses: BufferUse[];
}

export interface StepModel {
  b: number;
  /** Footprint in bytes of every named buffer. */
  buffers: Record<string, number>;
  /** The phases in the order one step runs them (the sequence repeats step after step). */
  phases: PhaseModel[];
}

const widths = LAYERS as readonly number[];

/** Buffer names: input rows x0, activations a1..a{L-1}, logits z, deltas d1..dL, weights W1.., biases b1... */
function act(l: number): string {
  return l === 0 ? 'x0' : l === widths.length - 1 ? 'z' : `a${l}`;
}

/**
 * The phases of one SGD step at batch b, in an order a minimal implementation can run them
 * (the weight gradient and the SGD update fused into one pass over W, after W's last read
 * by the backward-data GEMM of that layer):
 *   gather, forward 1..L, loss head, then for l = L..1: backward-data l (l > 1),
 *   weight gradient + update l.
 * FLOPs: 2*b*in*out per GEMM (multiply-adds; bias and ReLU epilogues not counted), the loss
 * head LOSS_OPS_PER_LOGIT per logit plus a log per row, the weight-gradient phase adds the
 * bias gradient (b*out adds) and the update (2 per parameter: p -= lr*g).
 * Bytes: each operand once (perfect blocking inside a GEMM): forward reads W, bias and its
 * input and writes its output; backward-data reads delta, W and the ReLU mask (the layer's
 * input activation) and writes the input delta; weight gradient + update reads delta and the
 * input activation and reads and writes W and the bias. No gradient buffer: fused, the
 * weight gradient never goes to memory.
 */
export function stepModel(b: number): StepModel {
  if (!Number.isInteger(b) || b < 1) throw new RangeError(`stepModel: batch must be a positive integer, got ${b}`);
  const L = widths.length - 1;
  const C = widths[L]!;
  const buffers: Record<string, number> = { labels: b * F32 };
  for (let l = 0; l <= L; l++) buffers[act(l)] = b * widths[l]! * F32;
  for (let l = 1; l <= L; l++) {
    buffers[`d${l}`] = b * widths[l]! * F32;
    buffers[`W${l}`] = widths[l - 1]! * widths[l]! * F32;
    buffers[`b${l}`] = widths[l]! * F32;
  }
  const phases: PhaseModel[] = [];
  phases.push({
    id: 'gather',
    kind: 'gather',
    label: 'gather the batch',
    flops: 0,
    uses: [
      { buffer: 'dataset', access: 'r', stream: { bytes: b * widths[0]! * F32 } },
      { buffer: 'x0', access: 'w' },
      { buffer: 'labels', access: 'w' },
    ],
  });
  for (let l = 1; l <= L; l++) {
    const inW = widths[l - 1]!;
    const outW = widths[l]!;
    phases.push({
      id: `fwd${l}`,
      kind: 'forward',
      layer: l,
      label: `forward ${l} ${inW}->${outW}`,
      flops: 2 * b * inW * outW,
      uses: [
        { buffer: `W${l}`, access: 'r' },
        { buffer: `b${l}`, access: 'r' },
        { buffer: act(l - 1), access: 'r' },
        { buffer: act(l), access: 'w' },
      ],
    });
  }
  phases.push({
    id: 'loss',
    kind: 'loss',
    label: 'loss head (log-softmax + NLL)',
    flops: LOSS_OPS_PER_LOGIT * b * C + b,
    uses: [
      { buffer: 'z', access: 'r' },
      { buffer: 'labels', access: 'r' },
      { buffer: `d${L}`, access: 'w' },
    ],
  });
  for (let l = L; l >= 1; l--) {
    const inW = widths[l - 1]!;
    const outW = widths[l]!;
    if (l > 1) {
      phases.push({
        id: `dgrad${l}`,
        kind: 'dgrad',
        layer: l,
        label: `backward-data ${l} ${outW}->${inW}`,
        flops: 2 * b * inW * outW,
        uses: [
          { buffer: `d${l}`, access: 'r' },
          { buffer: `W${l}`, access: 'r' },
          { buffer: act(l - 1), access: 'r' },
          { buffer: `d${l - 1}`, access: 'w' },
        ],
      });
    }
    phases.push({
      id: `wgrad${l}`,
      kind: 'wgrad+update',
      layer: l,
      label: `weight grad + SGD ${l} ${inW}x${outW}`,
      flops: 2 * b * inW * outW + b * outW + 2 * (inW * outW + outW),
      uses: [
        { buffer: `d${l}`, access: 'r' },
        { buffer: act(l - 1), access: 'r' },
        { buffer: `W${l}`, access: 'rw' },
        { buffer: `b${l}`, access: 'rw' },
      ],
    });
  }
  return { b, buffers, phases };
}

/**
 * Evaluation of one chunk of `chunk` test samples: forward 1..L, then the loss head without
 * its gradient (loss and accuracy); the chunk's rows stream from the test set. Divide by
 * `chunk` for the per-sample figures.
 */
export function evalModel(chunk: number): StepModel {
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`evalModel: chunk must be a positive integer, got ${chunk}`);
  const L = widths.length - 1;
  const C = widths[L]!;
  const buffers: Record<string, number> = {};
  for (let l = 1; l <= L; l++) {
    buffers[act(l)] = chunk * widths[l]! * F32;
    buffers[`W${l}`] = widths[l - 1]! * widths[l]! * F32;
    buffers[`b${l}`] = widths[l]! * F32;
  }
  const phases: PhaseModel[] = [];
  for (let l = 1; l <= L; l++) {
    const inW = widths[l - 1]!;
    const outW = widths[l]!;
    const input: BufferUse = l === 1 ? { buffer: 'testset', access: 'r', stream: { bytes: chunk * inW * F32 } } : { buffer: act(l - 1), access: 'r' };
    phases.push({
      id: `fwd${l}`,
      kind: 'forward',
      layer: l,
      label: `forward ${l} ${inW}->${outW}`,
      flops: 2 * chunk * inW * outW,
      uses: [{ buffer: `W${l}`, access: 'r' }, { buffer: `b${l}`, access: 'r' }, input, { buffer: act(l), access: 'w' }],
    });
  }
  phases.push({
    id: 'loss',
    kind: 'loss',
    label: 'loss + accuracy',
    // the gradient's three operations per logit are not needed; an argmax compare instead
    flops: (LOSS_OPS_PER_LOGIT - 3 + 1) * chunk * C + chunk,
    uses: [
      { buffer: 'z', access: 'r' },
      { buffer: 'testlabels', access: 'r', stream: { bytes: chunk } },
    ],
  });
  return { b: chunk, buffers, phases };
}

/** Bytes a buffer use moves: its footprint once per direction. */
export function movedBytes(model: StepModel, use: BufferUse): number {
  if (use.stream) return use.stream.bytes;
  const size = model.buffers[use.buffer];
  if (size === undefined) throw new Error(`roofline model: unknown buffer '${use.buffer}'`);
  return use.access === 'rw' ? 2 * size : size;
}

/**
 * The reuse distance of buffer use `u` of phase `p`: the bytes of every distinct buffer the
 * step touches from the previous phase using u.buffer to phase p, both included (cyclic: the
 * sequence repeats every step), plus the streams of those phases. With LRU caches the buffer
 * is still in a level at phase p when its capacity holds that much.
 */
export function reuseDistance(model: StepModel, p: number, buffer: string): number {
  const n = model.phases.length;
  let prev = -1;
  for (let k = 1; k <= n; k++) {
    const q = (p - k + n) % n;
    if (model.phases[q]!.uses.some((u) => u.buffer === buffer && !u.stream)) {
      prev = q;
      break;
    }
  }
  if (prev < 0) throw new Error(`roofline model: buffer '${buffer}' is not used in phase ${model.phases[p]?.id}`);
  const seen = new Set<string>();
  let bytes = 0;
  // the window prev .. p (cyclic); prev === p: the whole step, each phase once
  const span = prev === p ? n - 1 : (p - prev + n) % n;
  for (let k = 0; k <= span; k++) {
    const ph = model.phases[(prev + k) % n]!;
    for (const u of ph.uses) {
      if (u.stream) bytes += u.stream.bytes;
      else if (!seen.has(u.buffer)) {
        seen.add(u.buffer);
        bytes += model.buffers[u.buffer]!;
      }
    }
  }
  return bytes;
}

/** The smallest level whose capacity holds `bytes`. */
export function levelFor(bytes: number, caps: Capacities): Level {
  for (const l of LEVELS) if (bytes <= caps[l]) return l;
  return 'DRAM';
}

export interface PhaseBound {
  id: string;
  kind: PhaseKind;
  layer?: number;
  label: string;
  flops: number;
  /** Bytes moved from/to each level. */
  bytes: Record<Level, number>;
  /** FLOPs / FMA ceiling, seconds. */
  computeSeconds: number;
  /** Sum over levels of bytes / bandwidth, seconds. */
  memorySeconds: number;
  /** max(computeSeconds, memorySeconds). */
  boundSeconds: number;
  /** 'compute' or the level whose traffic takes the longest. */
  boundBy: 'compute' | Level;
}

export interface Ceilings {
  /** FMA ceiling, FLOP/s. */
  flops: number;
  bandwidth: Bandwidths;
}

/** Where each buffer use of each phase lives, and the bytes per level per phase. */
export function placeBytes(model: StepModel, caps: Capacities): Record<Level, number>[] {
  return model.phases.map((ph, p) => {
    const bytes: Record<Level, number> = { L1: 0, L2: 0, L3: 0, DRAM: 0 };
    for (const u of ph.uses) {
      const level = u.stream ? 'DRAM' : levelFor(reuseDistance(model, p, u.buffer), caps);
      bytes[level] += movedBytes(model, u);
    }
    return bytes;
  });
}

/** The bound of every phase of the model under the given capacities and ceilings. */
export function boundPhases(model: StepModel, caps: Capacities, ceil: Ceilings): PhaseBound[] {
  const placed = placeBytes(model, caps);
  return model.phases.map((ph, i) => {
    const bytes = placed[i]!;
    const computeSeconds = ph.flops / ceil.flops;
    let memorySeconds = 0;
    let worst: Level = 'L1';
    let worstT = -1;
    for (const l of LEVELS) {
      const t = bytes[l] / ceil.bandwidth[l];
      memorySeconds += t;
      if (t > worstT) {
        worstT = t;
        worst = l;
      }
    }
    const boundSeconds = Math.max(computeSeconds, memorySeconds);
    return {
      id: ph.id,
      kind: ph.kind,
      ...(ph.layer !== undefined ? { layer: ph.layer } : {}),
      label: ph.label,
      flops: ph.flops,
      bytes,
      computeSeconds,
      memorySeconds,
      boundSeconds,
      boundBy: computeSeconds >= memorySeconds ? 'compute' : worst,
    };
  });
}

/** Total footprint of the model's buffers, in bytes (streams excluded). */
export function workingSet(model: StepModel): number {
  return Object.values(model.buffers).reduce((a, b) => a + b, 0);
}

/** Bytes of the gradient buffers bsx keeps beside the weights (one per parameter tensor). */
export function gradientBufferBytes(): number {
  let n = 0;
  for (let l = 1; l < widths.length; l++) n += (widths[l - 1]! * widths[l]! + widths[l]!) * F32;
  return n;
}

// ---------------------------------------------------------------------------
// The machine's caches

export interface CacheInfo {
  level: number;
  /** Bytes of one instance. */
  size: number;
  /** Instances across the machine's CPUs. */
  instances: number;
  /** CPUs sharing one instance. */
  sharedBy: number;
}

/** '32K', '1024K', '32M', '65536' -> bytes. */
export function parseCacheSize(text: string): number {
  const m = /^\s*(\d+)\s*([KMG]?)i?B?\s*$/i.exec(text);
  if (!m) throw new Error(`cache size '${text}' is not a number with an optional K/M/G suffix`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

/** '0-3,8' -> 5 */
function cpuListCount(text: string): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  return n;
}

/**
 * The data and unified caches of the machine from sysfs (`root` =
 * /sys/devices/system/cpu): per level the size of one instance, how many instances there
 * are, and how many CPUs share one. Throws naming the path when it cannot be read.
 */
export function readCaches(root = '/sys/devices/system/cpu'): CacheInfo[] {
  let cpus: string[];
  try {
    cpus = readdirSync(root).filter((d) => /^cpu\d+$/.test(d));
  } catch (err) {
    throw new Error(`cannot list the CPUs in ${root}: ${(err as Error).message}`);
  }
  const byLevel = new Map<number, { size: number; lists: Set<string> }>();
  for (const cpu of cpus) {
    const dir = join(root, cpu, 'cache');
    let entries: string[];
    try {
      entries = readdirSync(dir).filter((d) => /^index\d+$/.test(d));
    } catch {
      continue; // offline CPU
    }
    for (const idx of entries) {
      const read = (f: string) => readFileSync(join(dir, idx, f), 'utf8').trim();
      const type = read('type');
      if (type !== 'Data' && type !== 'Unified') continue;
      const level = Number(read('level'));
      const size = parseCacheSize(read('size'));
      const shared = read('shared_cpu_list');
      const e = byLevel.get(level) ?? { size, lists: new Set<string>() };
      e.lists.add(shared);
      byLevel.set(level, e);
    }
  }
  if (byLevel.size === 0) throw new Error(`no data caches found under ${root}/cpu*/cache`);
  return [...byLevel.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([level, e]) => {
      const first = [...e.lists][0]!;
      return { level, size: e.size, instances: e.lists.size, sharedBy: cpuListCount(first) };
    });
}

/**
 * Capacity of L1, L2, L3 for `threads` threads on distinct cores: a cache shared by s CPUs
 * serves ceil(threads / s) instances (at most all of them). Levels the machine lacks get the
 * capacity of the level below.
 */
export function capacities(caches: CacheInfo[], threads: number): Capacities {
  const caps: Capacities = { L1: 0, L2: 0, L3: 0, DRAM: Infinity };
  let last = 0;
  for (const [i, name] of (['L1', 'L2', 'L3'] as const).entries()) {
    const c = caches.find((x) => x.level === i + 1);
    if (c) last = c.size * Math.min(c.instances, Math.ceil(threads / c.sharedBy));
    caps[name] = last;
  }
  return caps;
}
