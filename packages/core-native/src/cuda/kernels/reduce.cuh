// Deterministic reductions of the CUDA engine: per-replica tensor statistics against the
// snapshot, and bias gradients as column sums. Two passes with a fixed order (block partials,
// then one combine per replica), accumulated in double; no atomics, so results repeat.
//   stats_partial: per (replica, chunk of 8192 elements) the sums p^2, (p-s)^2, p*s, s^2
//     (strided per thread, then a shared-memory tree); grid (chunks, replicas), block 256.
//   stats_combine: per replica the chunk partials in order, into out [R, L, 8] at layer l,
//     part 0 (weights) or 1 (biases); grid ceil(R/128) x 128.
//   column_sums: gb[r, c] = sum over rows of d[r, i, c] in row order, float (the CPU's
//     column_sums order, so equal deltas give equal sums); grid (ceil(cols/256), replicas).
// Reference: cpu/ops.cpp tensor_stats, column_sums; CpuEnsemble::stats.
#pragma once
#include "cuda/kernels/common.cuh"

namespace bsx::cuda::kernels {

constexpr int kStatsThreads = 256;
constexpr int kStatsChunk = 8192;

__global__ void __launch_bounds__(kStatsThreads)
    stats_partial(const float* __restrict__ p, const float* __restrict__ s, long long n,
                  int chunks, double* __restrict__ partial, int r0) {
  __shared__ double sh[4][kStatsThreads];
  const int tid = threadIdx.x;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const long long start = static_cast<long long>(blockIdx.x) * kStatsChunk;
  const long long end = start + kStatsChunk < n ? start + kStatsChunk : n;
  const float* pr = p + r * n;
  const float* sr = s + r * n;
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  for (long long i = start + tid; i < end; i += kStatsThreads) {
    const double x = pr[i], y = sr[i];
    a0 += x * x;
    a1 += (x - y) * (x - y);
    a2 += x * y;
    a3 += y * y;
  }
  sh[0][tid] = a0;
  sh[1][tid] = a1;
  sh[2][tid] = a2;
  sh[3][tid] = a3;
  __syncthreads();
  for (int stride = kStatsThreads / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
#pragma unroll
      for (int j = 0; j < 4; ++j) sh[j][tid] += sh[j][tid + stride];
    }
    __syncthreads();
  }
  if (tid < 4) partial[(r * chunks + blockIdx.x) * 4 + tid] = sh[tid][0];
}

__global__ void stats_combine(int count, int chunks, const double* __restrict__ partial,
                              double* __restrict__ out, int layers, int layer, int part, int r0) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= count) return;
  const long long r = static_cast<long long>(r0) + k;
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  for (int c = 0; c < chunks; ++c)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[j] += partial[(r * chunks + c) * 4 + j];
  double* o = out + (r * layers + layer) * 8 + part * 4;
#pragma unroll
  for (int j = 0; j < 4; ++j) o[j] = acc[j];
}

__global__ void column_sums(const float* __restrict__ d, long long rows, int cols,
                            float* __restrict__ out, int r0) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const float* dr = d + r * rows * cols + c;
  float s = 0.0f;
#pragma unroll 8
  for (long long i = 0; i < rows; ++i) s += dr[i * cols];
  out[r * cols + c] = s;
}

}  // namespace bsx::cuda::kernels
