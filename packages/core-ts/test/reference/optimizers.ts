// PyTorch's optimiser update rules in float64, written from torch.optim's documented algorithms
// (SGD, Adam, AdamW; PyTorch 2.x, not amsgrad, not maximize), independently of the engine's
// element rules. One function per optimiser, one parameter tensor at a time, state kept per
// tensor as PyTorch keeps it (momentum_buffer; exp_avg, exp_avg_sq; the step count t).

import { refGradients, type RefParams } from './mlp.js';

export interface RefSgdHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

export interface RefAdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export type RefOptimizer =
  | { name: 'sgd'; hyper: RefSgdHyper }
  | { name: 'adam'; hyper: RefAdamHyper }
  | { name: 'adamw'; hyper: RefAdamHyper };

/** One tensor's optimiser state: buffers by PyTorch's names (null until first used). */
export interface RefTensorState {
  momentumBuffer: Float64Array | null;
  expAvg: Float64Array | null;
  expAvgSq: Float64Array | null;
}

export function newTensorState(): RefTensorState {
  return { momentumBuffer: null, expAvg: null, expAvgSq: null };
}

/**
 * torch.optim.SGD: d_p = g + wd p; buf = d_p (first step) or momentum buf + (1 - dampening) d_p;
 * d_p = d_p + momentum buf (nesterov) or buf; p -= lr d_p.
 */
export function refSgd(p: Float64Array, g: Float64Array, st: RefTensorState, h: RefSgdHyper, lr: number): void {
  const d = Float64Array.from(g, (gi, i) => gi + h.weightDecay * p[i]!);
  if (h.momentum !== 0) {
    if (st.momentumBuffer === null) {
      st.momentumBuffer = Float64Array.from(d);
    } else {
      const buf = st.momentumBuffer;
      for (let i = 0; i < d.length; i++) buf[i] = h.momentum * buf[i]! + (1 - h.dampening) * d[i]!;
    }
    const buf = st.momentumBuffer;
    for (let i = 0; i < d.length; i++) d[i] = h.nesterov ? d[i]! + h.momentum * buf[i]! : buf[i]!;
  }
  for (let i = 0; i < p.length; i++) p[i] -= lr * d[i]!;
}

/**
 * torch.optim.Adam (coupled: g += wd p) and torch.optim.AdamW (decoupled: p *= 1 - lr wd), at
 * step t (1 at the first): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
export function refAdam(
  p: Float64Array,
  g: Float64Array,
  st: RefTensorState,
  h: RefAdamHyper,
  lr: number,
  t: number,
  decoupled: boolean,
): void {
  st.expAvg ??= new Float64Array(p.length);
  st.expAvgSq ??= new Float64Array(p.length);
  const m = st.expAvg;
  const v = st.expAvgSq;
  if (decoupled) for (let i = 0; i < p.length; i++) p[i] *= 1 - lr * h.weightDecay;
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    const gi = decoupled ? g[i]! : g[i]! + h.weightDecay * p[i]!;
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * gi * gi;
    p[i] -= (lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + h.eps));
  }
}

/** A model's optimiser state: one RefTensorState per tensor W0, b0, W1, b1, ... and the step count. */
export interface RefModelState {
  t: number;
  tensors: RefTensorState[];
}

export function newModelState(layers: number): RefModelState {
  return { t: 0, tensors: Array.from({ length: 2 * layers }, newTensorState) };
}

/** One training step of the float64 MLP with `opt`; returns the batch-mean loss. */
export function refOptimizerStep(
  widths: number[],
  p: RefParams,
  x: Float64Array[],
  y: number[],
  opt: RefOptimizer,
  lr: number,
  state: RefModelState,
): number {
  const { loss, gW, gb } = refGradients(widths, p, x, y);
  state.t += 1;
  for (let l = 0; l < widths.length - 1; l++) {
    const pairs: [Float64Array, Float64Array, RefTensorState][] = [
      [p.W[l]!, gW[l]!, state.tensors[2 * l]!],
      [p.b[l]!, gb[l]!, state.tensors[2 * l + 1]!],
    ];
    for (const [param, g, st] of pairs) {
      if (opt.name === 'sgd') refSgd(param, g, st, opt.hyper, lr);
      else refAdam(param, g, st, opt.hyper, lr, state.t, opt.name === 'adamw');
    }
  }
  return loss;
}
