// TF32 tensor-core variant of the GEMM (kernels/gemm.cuh), used only when asked for
// (BSX_CUDA_TF32=1): inputs rounded to TF32 (10-bit mantissa), products accumulated in fp32,
// so results differ from the fp32 path by about 1e-3 relative. Same arguments, batching and
// epilogues as sgemm_tiled. Design: 64x64x8 block tiles staged through registers into shared
// memory exactly as sgemm_tiled stages them ([k][m] and [k][n], i.e. A column-major and B
// row-major for WMMA); 4 warps, each a 32x32 quadrant as 2x2 WMMA m16n16k8 fragments; the
// accumulators go through shared memory for the epilogue and the bounds checks.
// Reference: CUDA C++ Programming Guide, "Warp Matrix Functions" (precision::tf32).
#pragma once
#include <mma.h>

#include "cuda/kernels/gemm.cuh"

namespace bsx::cuda::kernels {

constexpr int kTf32Tile = 64;
constexpr int kTf32Threads = 128;

// grid (ceil(N/64), ceil(M/64), replicas in this launch), block 128.
template <bool TA, bool TB>
__global__ void __launch_bounds__(kTf32Threads) sgemm_tf32(GemmArgs p) {
  namespace wmma = nvcuda::wmma;
  constexpr int T = kTf32Tile;
  constexpr int LD = T + 4;  // floats per shared row: a multiple of 4, rows 16-byte aligned
  __shared__ __align__(128) float As[2][kGemmBK][LD];
  __shared__ __align__(128) float Bs[2][kGemmBK][LD];
  __shared__ __align__(128) float Cs[T][LD];

  const int tid = threadIdx.x;
  const int warp = tid / kWarp;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;  // this warp's quadrant
  const long long r = static_cast<long long>(p.r0) + blockIdx.z;
  const float* A = p.A + r * p.sa;
  const float* B = p.B + r * p.sb;
  float* C = p.C + r * p.sc;
  const int m0 = blockIdx.y * T, n0 = blockIdx.x * T;

  GemmTileLoader<T, kTf32Threads, !TA> la;
  GemmTileLoader<T, kTf32Threads, TB> lb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const int nk = (p.K + kGemmBK - 1) / kGemmBK;
  if (nk > 0) {
    la.load(A, p.lda, m0, 0, p.M, p.K, p.vec_a, tid);
    lb.load(B, p.ldb, n0, 0, p.N, p.K, p.vec_b, tid);
    la.store(As[0], tid);
    lb.store(Bs[0], tid);
    __syncthreads();
    for (int kt = 0; kt < nk; ++kt) {
      const int cur = kt & 1;
      const bool more = kt + 1 < nk;
      if (more) {
        la.load(A, p.lda, m0, (kt + 1) * kGemmBK, p.M, p.K, p.vec_a, tid);
        lb.load(B, p.ldb, n0, (kt + 1) * kGemmBK, p.N, p.K, p.vec_b, tid);
      }
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        // element (m, k) of the tile is As[k][m]: column-major with leading dimension LD
        wmma::load_matrix_sync(fa[i], &As[cur][0][wm + 16 * i], LD);
#pragma unroll
        for (int t = 0; t < fa[i].num_elements; ++t) fa[i].x[t] = wmma::__float_to_tf32(fa[i].x[t]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(fb[j], &Bs[cur][0][wn + 16 * j], LD);
#pragma unroll
        for (int t = 0; t < fb[j].num_elements; ++t) fb[j].x[t] = wmma::__float_to_tf32(fb[j].x[t]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      if (more) {
        la.store(As[cur ^ 1], tid);
        lb.store(Bs[cur ^ 1], tid);
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wm + 16 * i][wn + 16 * j], acc[i][j], LD, wmma::mem_row_major);
  __syncthreads();

  const float* bias = p.bias != nullptr ? p.bias + r * p.sbias : nullptr;
  const float* mask = p.mask != nullptr ? p.mask + r * p.smask : nullptr;
  for (int q = tid; q < T * T; q += kTf32Threads) {
    const int i = q / T, j = q % T;  // consecutive threads: consecutive columns (coalesced)
    const int m = m0 + i, n = n0 + j;
    if (m >= p.M || n >= p.N) continue;
    float* c = C + static_cast<long long>(m) * p.ldc + n;
    const float* mrow = mask != nullptr ? mask + static_cast<long long>(m) * p.ldm : nullptr;
    const float old = p.beta != 0.0f ? *c : 0.0f;
    *c = gemm_epilogue(Cs[i][j], p, old, bias, mrow, n);
  }
}

}  // namespace bsx::cuda::kernels
