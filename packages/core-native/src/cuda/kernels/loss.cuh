// The loss head of the CUDA engine: fused log-softmax + NLL + its gradient + accuracy per
// row, and the log-probabilities of forward().
//   loss_rows: one warp per row (8 rows per warp, 64 per block): arg-max (first maximum
//     wins), log-sum-exp in double, loss = lse - z[label], hit = (arg-max == label), and
//     optionally dlogits = (softmax - onehot(label)) * grad_scale (grad_scale = 1/b: mean
//     loss). Each block writes one partial (loss sum in double, hit count) per replica.
//   loss_combine: adds each replica's partials in chunk order to its running totals
//     (two passes, no float atomics: the result does not depend on scheduling).
// grids: (chunks = ceil(rows/64), replicas), block 256; combine: ceil(R/256) x 256.
// Reference: cpu/ops.cpp log_softmax_nll; CpuEnsemble::forward for the log-probabilities.
#pragma once
#include <math_constants.h>

#include "cuda/kernels/common.cuh"

namespace bsx::cuda::kernels {

constexpr int kLossWarps = 8;
constexpr int kLossRowsPerWarp = 8;
constexpr int kLossRowsPerBlock = kLossWarps * kLossRowsPerWarp;

// logits [R, rows, C]; labels of replica r at labels + r * labels_stride (0: shared rows);
// dlogits [R, rows, C] or nullptr; partials [R, chunks].
__global__ void __launch_bounds__(kLossWarps * kWarp)
    loss_rows(const float* __restrict__ logits, const int* __restrict__ labels,
              long long labels_stride, long long rows, int C, float grad_scale,
              float* __restrict__ dlogits, double* __restrict__ part_loss,
              long long* __restrict__ part_hits, int chunks, int r0) {
  __shared__ double warp_loss[kLossWarps];
  __shared__ long long warp_hits[kLossWarps];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  double loss = 0.0;
  long long hits = 0;
  for (int j = 0; j < kLossRowsPerWarp; ++j) {
    const long long i =
        static_cast<long long>(blockIdx.x) * kLossRowsPerBlock + warp * kLossRowsPerWarp + j;
    if (i >= rows) break;  // uniform over the warp
    const float* z = logits + (r * rows + i) * C;
    float zmax = -CUDART_INF_F;
    int arg = 0;
    for (int c = lane; c < C; c += kWarp) {
      const float v = z[c];
      if (v > zmax) {
        zmax = v;
        arg = c;
      }
    }
#pragma unroll
    for (int m = kWarp / 2; m > 0; m >>= 1) {
      const float oz = __shfl_xor_sync(0xffffffffu, zmax, m);
      const int oa = __shfl_xor_sync(0xffffffffu, arg, m);
      if (oz > zmax || (oz == zmax && oa < arg)) {
        zmax = oz;
        arg = oa;
      }
    }
    double s = 0.0;
    for (int c = lane; c < C; c += kWarp) s += exp(static_cast<double>(z[c]) - zmax);
    s = warp_sum(s);
    const double lse = static_cast<double>(zmax) + log(s);
    const int y = labels[r * labels_stride + i];
    if (dlogits != nullptr) {
      float* d = dlogits + (r * rows + i) * C;
      for (int c = lane; c < C; c += kWarp) {
        const double p = exp(static_cast<double>(z[c]) - lse);
        d[c] = static_cast<float>((p - (c == y ? 1.0 : 0.0)) * static_cast<double>(grad_scale));
      }
    }
    if (lane == 0) {
      loss += lse - static_cast<double>(z[y]);
      hits += (arg == y) ? 1 : 0;
    }
  }
  if (lane == 0) {
    warp_loss[warp] = loss;
    warp_hits[warp] = hits;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double l = 0.0;
    long long h = 0;
    for (int w = 0; w < kLossWarps; ++w) {
      l += warp_loss[w];
      h += warp_hits[w];
    }
    part_loss[r * chunks + blockIdx.x] = l;
    part_hits[r * chunks + blockIdx.x] = h;
  }
}

// acc_loss[r] += sum of its partials (in order), acc_hits likewise; r in [r0, r0 + count).
__global__ void loss_combine(int count, int chunks, const double* __restrict__ part_loss,
                             const long long* __restrict__ part_hits,
                             double* __restrict__ acc_loss, long long* __restrict__ acc_hits,
                             int r0) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= count) return;
  const long long r = static_cast<long long>(r0) + k;
  double l = 0.0;
  long long h = 0;
  for (int c = 0; c < chunks; ++c) {
    l += part_loss[r * chunks + c];
    h += part_hits[r * chunks + c];
  }
  acc_loss[r] += l;
  acc_hits[r] += h;
}

// out[r, i, :] = z[r, i, :] - logsumexp(z[r, i, :]) (lse in double). One warp per row;
// grid (ceil(rows/8), replicas), block 256.
__global__ void __launch_bounds__(kLossWarps * kWarp)
    log_softmax_rows(const float* __restrict__ z, long long rows, int C, float* __restrict__ out,
                     int r0) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const long long i = static_cast<long long>(blockIdx.x) * kLossWarps + warp;
  if (i >= rows) return;
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const float* zr = z + (r * rows + i) * C;
  float zmax = -CUDART_INF_F;
  for (int c = lane; c < C; c += kWarp) zmax = fmaxf(zmax, zr[c]);
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) zmax = fmaxf(zmax, __shfl_xor_sync(0xffffffffu, zmax, m));
  double s = 0.0;
  for (int c = lane; c < C; c += kWarp) s += exp(static_cast<double>(zr[c]) - zmax);
  s = warp_sum(s);
  const double lse = static_cast<double>(zmax) + log(s);
  float* o = out + (r * rows + i) * C;
  for (int c = lane; c < C; c += kWarp) o[c] = static_cast<float>(static_cast<double>(zr[c]) - lse);
}

}  // namespace bsx::cuda::kernels
