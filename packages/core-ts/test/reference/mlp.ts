// A float64 reference MLP, written independently of the engine: plain loops over one replica,
// ReLU hidden layers, log-softmax + NLL averaged over the batch, SGD and PyTorch's Adam.
// Tensors follow the engine's layout: W [out, in] row-major, b [out].

export interface RefParams {
  W: Float64Array[];
  b: Float64Array[];
}

export function cloneParams(p: RefParams): RefParams {
  return { W: p.W.map((w) => Float64Array.from(w)), b: p.b.map((b) => Float64Array.from(b)) };
}

/** Activations of every layer for rows x [n][in]: acts[0] = x, acts[L] = logits. */
export function refForward(widths: number[], p: RefParams, x: Float64Array[]): Float64Array[][] {
  const L = widths.length - 1;
  const acts: Float64Array[][] = [x];
  for (let l = 0; l < L; l++) {
    const inW = widths[l]!;
    const outW = widths[l + 1]!;
    const next: Float64Array[] = [];
    for (const row of acts[l]!) {
      const z = new Float64Array(outW);
      for (let o = 0; o < outW; o++) {
        let s = p.b[l]![o]!;
        for (let i = 0; i < inW; i++) s += p.W[l]![o * inW + i]! * row[i]!;
        z[o] = l < L - 1 ? Math.max(0, s) : s;
      }
      next.push(z);
    }
    acts.push(next);
  }
  return acts;
}

export function logSoftmax(z: Float64Array): Float64Array {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  return z.map((v) => v - lse);
}

/** Mean NLL over the batch. */
export function refLoss(widths: number[], p: RefParams, x: Float64Array[], y: number[]): number {
  const acts = refForward(widths, p, x);
  const logits = acts[acts.length - 1]!;
  let loss = 0;
  logits.forEach((z, i) => {
    loss -= logSoftmax(z)[y[i]!]!;
  });
  return loss / x.length;
}

/** Gradients of the mean loss by backpropagation. */
export function refGradients(widths: number[], p: RefParams, x: Float64Array[], y: number[]): { loss: number; gW: Float64Array[]; gb: Float64Array[] } {
  const L = widths.length - 1;
  const n = x.length;
  const acts = refForward(widths, p, x);
  const gW = widths.slice(0, L).map((w, l) => new Float64Array(widths[l + 1]! * w));
  const gb = widths.slice(1).map((w) => new Float64Array(w));
  let loss = 0;
  for (let s = 0; s < n; s++) {
    const logits = acts[L]![s]!;
    const lp = logSoftmax(logits);
    loss -= lp[y[s]!]!;
    let delta = lp.map((v, c) => (Math.exp(v) - (c === y[s] ? 1 : 0)) / n);
    for (let l = L - 1; l >= 0; l--) {
      const inW = widths[l]!;
      const outW = widths[l + 1]!;
      const a = acts[l]![s]!;
      for (let o = 0; o < outW; o++) {
        gb[l]![o] += delta[o]!;
        for (let i = 0; i < inW; i++) gW[l]![o * inW + i] += delta[o]! * a[i]!;
      }
      if (l > 0) {
        const prev = new Float64Array(inW);
        for (let i = 0; i < inW; i++) {
          let g = 0;
          for (let o = 0; o < outW; o++) g += delta[o]! * p.W[l]![o * inW + i]!;
          prev[i] = a[i]! > 0 ? g : 0;
        }
        delta = prev;
      }
    }
  }
  return { loss: loss / n, gW, gb };
}

export interface RefAdamState {
  step: number;
  mW: Float64Array[];
  vW: Float64Array[];
  mb: Float64Array[];
  vb: Float64Array[];
}

export function refAdamState(widths: number[]): RefAdamState {
  const L = widths.length - 1;
  const z = (k: (l: number) => number) => Array.from({ length: L }, (_, l) => new Float64Array(k(l)));
  return {
    step: 0,
    mW: z((l) => widths[l]! * widths[l + 1]!),
    vW: z((l) => widths[l]! * widths[l + 1]!),
    mb: z((l) => widths[l + 1]!),
    vb: z((l) => widths[l + 1]!),
  };
}

/** One optimiser step in place; Adam as torch.optim.Adam (betas 0.9/0.999, eps 1e-8). */
export function refStep(
  widths: number[],
  p: RefParams,
  x: Float64Array[],
  y: number[],
  lr: number,
  adam?: RefAdamState,
): number {
  const { loss, gW, gb } = refGradients(widths, p, x, y);
  const upd = (param: Float64Array, g: Float64Array, m?: Float64Array, v?: Float64Array): void => {
    for (let i = 0; i < param.length; i++) {
      if (!adam) {
        param[i] -= lr * g[i]!;
      } else {
        const b1 = 0.9;
        const b2 = 0.999;
        m![i] = b1 * m![i]! + (1 - b1) * g[i]!;
        v![i] = b2 * v![i]! + (1 - b2) * g[i]! * g[i]!;
        const mh = m![i]! / (1 - b1 ** adam.step);
        const vh = v![i]! / (1 - b2 ** adam.step);
        param[i] -= (lr * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
  };
  if (adam) adam.step += 1;
  for (let l = 0; l < widths.length - 1; l++) {
    upd(p.W[l]!, gW[l]!, adam?.mW[l], adam?.vW[l]);
    upd(p.b[l]!, gb[l]!, adam?.mb[l], adam?.vb[l]);
  }
  return loss;
}
