// Data movement and initialisation kernels of the CUDA engine.
//   gather_rows: X[r, i, :] = features[idx[r*stride + off + i], :], y[r, i] = its label,
//     from the device-resident dataset; grid (b, replicas), block 128 (float4 copies when
//     dim % 4 == 0). With dyn_step, off grows by *dyn_step * b: the step index of a training
//     loop replayed as a CUDA graph lives on the device (advance_counter moves it on).
//   xavier_init: Glorot-uniform weights from Philox 4x32-10, bit-identical to the CPU:
//     counter (k/4 low, k/4 high, 0x100 + layer, 0), key = the replica's seed,
//     w = (2u - 1) * bound, u = (word >> 8) * 2^-24, bound = float(sqrt(6 / (fan_in + fan_out)))
//     computed on the host; explicitly rounded operations so no FMA changes the rounding.
//     grid (ceil(n / 1024), replicas), block 256, one Philox call per 4 weights.
// Reference: CpuEnsemble::gather, CpuEnsemble::init_xavier; cpu/philox.h.
#pragma once
#include "cpu/philox.h"
#include "cuda/kernels/common.cuh"

namespace bsx::cuda::kernels {

constexpr int kGatherThreads = 128;

template <bool VEC>
__global__ void __launch_bounds__(kGatherThreads)
    gather_rows(const float* __restrict__ features, const int* __restrict__ labels,
                long long dim, const int* __restrict__ idx, long long stride, long long off,
                int b, float* __restrict__ X, int* __restrict__ y,
                const long long* __restrict__ dyn_step, int r0) {
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const int i = blockIdx.x;
  const long long o = off + (dyn_step != nullptr ? *dyn_step * b : 0);
  const long long k = idx[r * stride + o + i];
  const float* src = features + k * dim;
  float* dst = X + (r * b + i) * dim;
  const int d = static_cast<int>(dim);  // < 2^24 (checked by the Dataset binding)
  if (VEC) {
    for (int c = threadIdx.x * 4; c < d; c += kGatherThreads * 4) st4(dst + c, ldg4(src + c));
  } else {
    for (int c = threadIdx.x; c < d; c += kGatherThreads) dst[c] = __ldg(src + c);
  }
  if (threadIdx.x == 0) y[r * b + i] = labels[k];
}

// *counter += 1 (one thread): the last launch of a graph-replayed training step.
__global__ void advance_counter(long long* counter) { *counter += 1; }

constexpr int kInitThreads = 256;

__global__ void __launch_bounds__(kInitThreads)
    xavier_init(float* __restrict__ W, long long n, const unsigned* __restrict__ keys,
                unsigned stream, float bound, int r0) {
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const long long blk = static_cast<long long>(blockIdx.x) * kInitThreads + threadIdx.x;
  if (blk * 4 >= n) return;
  const std::uint32_t ctr[4] = {static_cast<std::uint32_t>(blk),
                                static_cast<std::uint32_t>(blk >> 32), stream, 0u};
  const std::uint32_t key[2] = {keys[2 * r], keys[2 * r + 1]};
  const Philox4x32 out = philox4x32_10(ctr, key);
  float* w = W + r * n;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (blk * 4 + j < n) {
      const float u = philox_uniform01(out.v[j]);
      w[blk * 4 + j] = __fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), bound);
    }
  }
}

}  // namespace bsx::cuda::kernels
