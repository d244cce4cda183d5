// Gradient-competition trials on the CUDA engine (Ensemble::grad_trials). Each step's last-layer
// weight gradient g [R, numel] (from a backward that keeps it) goes into per-replica sums on the
// device; at the end of the pass, the statistics and the histograms of the summed values.
//   trial_step_partial: S_mean += g, S_sum += b g elementwise in double (the CPU's sums, in step
//     order; b g is exact in double), and per (replica, chunk of 8192 elements) the partial |g|^2
//     in double (strided per thread, then a shared-memory tree). grid (chunks, replicas), 256.
//   trial_step_combine: per replica the partials in chunk order, n2 = |g|^2:
//     stats[2] += sqrt(n2), stats[3] += b sqrt(n2), stats[4] = n2 at the trial's step 0.
//   trial_sums_partial / trial_finish: |S_mean|^2 and |S_sum|^2 the same way (and S_mean
//     rounded to float for the export); then stats[0], stats[1] = the norms, stats[2], stats[3]
//     divided by the step count, stats[5] = the step count.
//   Two passes with a fixed order, no float atomics: the statistics repeat bit for bit.
//   histogram_shared: the values float(S) (what an export holds) into counts [underflow,
//     bins..., overflow, nan], bin k holding edges[k] <= v < edges[k+1] and the last bin also
//     v == edges[bins] (binary search: the first edge > v); edges and 32-bit counts in shared
//     memory, added to the 64-bit global counts once per block (integer atomics: the counts do
//     not depend on the order). Up to kHistSharedBins bins; histogram_global does more, with
//     the edges read from global memory and a 64-bit global atomic per value.
//     grid ceil(n / kHistPerBlock), block 256.
// grids of the combines: ceil(R/128) x 128.
// Reference: CpuEnsemble::grad_trials (cpu/cpu_ensemble.cpp), cpu/ops.cpp histogram_add.
#pragma once
#include "cuda/kernels/common.cuh"
#include "engine/ensemble.h"

namespace bsx::cuda::kernels {

constexpr int kTrialThreads = 256;
constexpr int kTrialChunk = 8192;

// The shared tree of a block's kTrialThreads doubles: the sum, in a fixed order, in sh[0].
__device__ __forceinline__ void block_tree_sum(double* sh, int tid) {
  __syncthreads();
  for (int stride = kTrialThreads / 2; stride > 0; stride >>= 1) {
    if (tid < stride) sh[tid] += sh[tid + stride];
    __syncthreads();
  }
}

// g, s_mean, s_sum [R, numel]; partial [R, chunks].
__global__ void __launch_bounds__(kTrialThreads)
    trial_step_partial(const float* __restrict__ g, long long numel, int b,
                       double* __restrict__ s_mean, double* __restrict__ s_sum, int chunks,
                       double* __restrict__ partial, int r0) {
  __shared__ double sh[kTrialThreads];
  const int tid = threadIdx.x;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const long long start = static_cast<long long>(blockIdx.x) * kTrialChunk;
  const long long end = start + kTrialChunk < numel ? start + kTrialChunk : numel;
  const float* gr = g + r * numel;
  double* sm = s_mean + r * numel;
  double* ss = s_sum + r * numel;
  const double bd = static_cast<double>(b);
  double n2 = 0.0;
  for (long long i = start + tid; i < end; i += kTrialThreads) {
    const double v = gr[i];
    n2 += v * v;
    sm[i] += v;
    ss[i] += bd * v;
  }
  sh[tid] = n2;
  block_tree_sum(sh, tid);
  if (tid == 0) partial[r * chunks + blockIdx.x] = sh[0];
}

// stats [R, kTrialStats]; the step index is s (+ *dyn_step when given: graph replays).
__global__ void trial_step_combine(int count, int chunks, const double* __restrict__ partial,
                                   int b, long long s, const long long* __restrict__ dyn_step,
                                   double* __restrict__ stats, int r0) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= count) return;
  const long long r = static_cast<long long>(r0) + k;
  double n2 = 0.0;
  for (int c = 0; c < chunks; ++c) n2 += partial[r * chunks + c];
  const double norm = sqrt(n2);
  double* st = stats + r * kTrialStats;
  st[2] += norm;
  st[3] += static_cast<double>(b) * norm;
  const long long step = s + (dyn_step != nullptr ? *dyn_step : 0);
  if (step == 0) st[4] = n2;
}

// partial [R, chunks, 2]: |S_mean|^2, |S_sum|^2 of the chunk; s_out (nullable) [R, numel]
// receives float(S_mean).
__global__ void __launch_bounds__(kTrialThreads)
    trial_sums_partial(const double* __restrict__ s_mean, const double* __restrict__ s_sum,
                       long long numel, int chunks, double* __restrict__ partial,
                       float* __restrict__ s_out, int r0) {
  __shared__ double sh[2][kTrialThreads];
  const int tid = threadIdx.x;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const long long start = static_cast<long long>(blockIdx.x) * kTrialChunk;
  const long long end = start + kTrialChunk < numel ? start + kTrialChunk : numel;
  const double* sm = s_mean + r * numel;
  const double* ss = s_sum + r * numel;
  double a = 0.0, c = 0.0;
  for (long long i = start + tid; i < end; i += kTrialThreads) {
    const double m = sm[i], v = ss[i];
    a += m * m;
    c += v * v;
    if (s_out != nullptr) s_out[r * numel + i] = static_cast<float>(m);
  }
  sh[0][tid] = a;
  sh[1][tid] = c;
  block_tree_sum(sh[0], tid);
  block_tree_sum(sh[1], tid);
  if (tid < 2) partial[(r * chunks + blockIdx.x) * 2 + tid] = sh[tid][0];
}

__global__ void trial_finish(int count, int chunks, const double* __restrict__ partial,
                             long long steps, double* __restrict__ stats, int r0) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= count) return;
  const long long r = static_cast<long long>(r0) + k;
  double a = 0.0, c = 0.0;
  for (int j = 0; j < chunks; ++j) {
    a += partial[(r * chunks + j) * 2];
    c += partial[(r * chunks + j) * 2 + 1];
  }
  double* st = stats + r * kTrialStats;
  const double n = static_cast<double>(steps);
  st[0] = sqrt(a);
  st[1] = sqrt(c);
  st[2] /= n;
  st[3] /= n;
  st[5] = n;
}

constexpr int kHistThreads = 256;
constexpr int kHistPerBlock = kHistThreads * 64;  // values per block (its 32-bit counts cannot overflow)
constexpr int kHistSharedBins = 4096;

// The slot of v in counts [underflow, bins..., overflow, nan] (cpu histogram_add's rule).
__device__ __forceinline__ int hist_slot(float v, const float* edges, int bins) {
  if (v != v) return bins + 2;  // NaN
  if (v < edges[0]) return 0;
  if (v > edges[bins]) return bins + 1;
  int lo = 0, hi = bins + 1;  // the first edge > v (there is one unless v == edges[bins])
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (edges[mid] > v) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const int k = lo - 1;
  return 1 + (k < bins ? k : bins - 1);
}

// values [n] (double, counted as float); edges [bins + 1]; counts [bins + 3], added to.
__global__ void __launch_bounds__(kHistThreads)
    histogram_shared(const double* __restrict__ values, long long n,
                     const float* __restrict__ edges, int bins,
                     unsigned long long* __restrict__ counts) {
  __shared__ float e[kHistSharedBins + 1];
  __shared__ unsigned c[kHistSharedBins + 3];
  const int tid = threadIdx.x;
  for (int i = tid; i <= bins; i += kHistThreads) e[i] = edges[i];
  for (int i = tid; i < bins + 3; i += kHistThreads) c[i] = 0u;
  __syncthreads();
  const long long start = static_cast<long long>(blockIdx.x) * kHistPerBlock;
  const long long end = start + kHistPerBlock < n ? start + kHistPerBlock : n;
  for (long long i = start + tid; i < end; i += kHistThreads)
    atomicAdd(&c[hist_slot(static_cast<float>(values[i]), e, bins)], 1u);
  __syncthreads();
  for (int i = tid; i < bins + 3; i += kHistThreads)
    if (c[i] != 0u) atomicAdd(&counts[i], static_cast<unsigned long long>(c[i]));
}

__global__ void __launch_bounds__(kHistThreads)
    histogram_global(const double* __restrict__ values, long long n,
                     const float* __restrict__ edges, int bins,
                     unsigned long long* __restrict__ counts) {
  const long long start = static_cast<long long>(blockIdx.x) * kHistPerBlock;
  const long long end = start + kHistPerBlock < n ? start + kHistPerBlock : n;
  for (long long i = start + threadIdx.x; i < end; i += kHistThreads)
    atomicAdd(&counts[hist_slot(static_cast<float>(values[i]), edges, bins)], 1ull);
}

}  // namespace bsx::cuda::kernels
