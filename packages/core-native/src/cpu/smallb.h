// Fused kernels of one SGD step at small batch (b = 1..kSmallBatchKernelMax), where a step is
// bound by moving the weights, not by arithmetic: the forward pass reads each weight once
// for all b samples, and the backward pass reads each weight once to propagate the deltas
// and updates it in the same pass (W -= lr * delta^T x, never materialising the gradient).
// The ensemble runs one replica's steps back to back with these, so its weights (7.5 MB for
// the 784-1024-1024-10 MLP) stay in the last-level cache from step to step.
// The per-ISA files (smallb_avx512.cpp, smallb_avx2.cpp, the portable set in smallb.cpp)
// compile one source, smallb_kernels.inc, with their own flags; only function pointers
// cross this interface.
#pragma once
#include <cstdint>

namespace bsx::cpu {

// The largest batch the fused kernels are instantiated for.
constexpr int kSmallBatchKernelMax = 8;
// The largest batch the CPU ensemble sends to them by default: measured on a Zen 5 (AVX-512,
// one thread), the fused step is 2-4x faster than the GEMM path at b = 1..4 and slower from
// b = 6 on, where the GEMM's register blocking pays off.
constexpr int kSmallBatchDefaultMax = 4;

// The largest batch the CPU ensemble sends to the fused path: kSmallBatchDefaultMax, or
// BSX_SMALL_BATCH_MAX (0..kSmallBatchKernelMax; 0 disables the path).
int small_batch_max();
// Override for tests (-1 restores the default).
void set_small_batch_max(int b);

struct SmallBatchKernels {
  const char* name;
  // Forward through one layer for rows (output units) [j0, j1):
  //   y[s*ldy + j] = act(bias[j] + sum_k W[j*in + k] * xs[s][k])     for s < b
  // act = ReLU when relu, else identity. xs: b pointers to input rows of `in` floats.
  void (*forward_rows)(const float* W, const float* bias, int in, const float* const* xs, int b,
                       bool relu, float* y, int ldy, int j0, int j1);
  // Backward through one layer (W: [out, in]) with the SGD update fused, for input columns
  // [k0, k1):
  //   dx[s*lddx + k] = (sum_j delta[s*ldd + j] * W[j*in + k]) * (mask ? xs[s][k] > 0 : 1)
  //                    (with W before the update; dx may be null: no propagation)
  //   g = sum_s delta[s*ldd + j] * xs[s][k]  (in order of s),  W[j*in + k] -= lr * g
  //   grad (nullable): grad[j*in + k] = g
  // The bias is not touched (its update needs all columns' deltas once, not per column).
  // Row strides that are multiples of 4 KiB make the b rows of dx and xs compete for the same
  // L1 sets; callers pad them (small_batch_stride).
  void (*backward_cols)(float* W, int in, int out, const float* delta, int ldd,
                        const float* const* xs, int b, float lr, bool mask, float* dx, int lddx,
                        float* grad, int k0, int k1);
  // Column alignment (floats) that keeps [k0, k1) cuts on whole vectors.
  int align;
};

// The row stride for a small-batch workspace of `width` floats per row: wide rows get 64
// bytes of padding so that rows never sit a multiple of 4 KiB apart.
inline int small_batch_stride(int width) { return width >= 256 ? (width + 15) / 16 * 16 + 16 : width; }

// The kernels of the active SIMD path (simd_path()).
const SmallBatchKernels& small_batch_kernels();

namespace smallb_detail {
// Each returns a set with null functions when its file was built without the ISA.
SmallBatchKernels kernels_avx512();
SmallBatchKernels kernels_avx2();
SmallBatchKernels kernels_portable();
}  // namespace smallb_detail

}  // namespace bsx::cpu
