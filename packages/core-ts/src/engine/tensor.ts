// A small typed tensor: fp32 data in row-major order with its shape. Used where full tensors
// cross from the engine to JS (parameters, gradients, exports).

export class Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;

  constructor(shape: readonly number[], data?: Float32Array) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new TypeError(`Tensor: shape must hold non-negative integers, got [${shape.join(', ')}]`);
      }
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (data && data.length !== size) {
      throw new RangeError(`Tensor: shape [${shape.join(', ')}] needs ${size} elements, got ${data.length}`);
    }
    this.shape = Object.freeze([...shape]);
    this.data = data ?? new Float32Array(size);
  }

  get size(): number {
    return this.data.length;
  }

  /** The sub-tensor at index i of the first axis, sharing memory. */
  slice0(i: number): Tensor {
    const n0 = this.shape[0];
    if (n0 === undefined || !Number.isInteger(i) || i < 0 || i >= n0) {
      throw new RangeError(`Tensor.slice0: index ${i} outside [0, ${n0 ?? 0})`);
    }
    const inner = this.shape.slice(1);
    const step = inner.reduce((a, b) => a * b, 1);
    return new Tensor(inner, this.data.subarray(i * step, (i + 1) * step));
  }
}
