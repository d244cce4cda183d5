// Tiled fp32 GEMM of the CUDA engine, batched over replicas (blockIdx.z), with the MLP's
// fused epilogues. Row-major, op() as in cpu/gemm.h:
//   C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C   (beta == 0: C is not read)
//   then + bias[n], then 0 where !(mask[m, n] > 0), then 0 where !(v > 0) (relu).
// Design: BM x BN x 8 tiles (128x128 with 256 threads, or 64x64 with 64 threads for grids
// too small to fill the GPU); each thread owns 8x8 accumulators as four 4x4 quadrants
// (rows ty*4 and BM/2 + ty*4, columns tx*4 and BN/2 + tx*4), so its shared-memory reads are
// conflict-free float4s; shared tiles are [k][m] / [k][n] (padded by 4 floats: the transposing
// stores of k-contiguous operands hit 32 distinct banks), double-buffered through registers
// (global loads of tile k+1 in flight while tile k is multiplied; one barrier per k-step);
// float4 global loads when the leading dimension, replica stride and base are 16-byte
// aligned, else bounds-checked scalar loads. Products accumulate in fp32 FMAs in k order.
// Reference: cpu/gemm_reference.cpp (double accumulation) defines the result; the design is
// the classic SIMT SGEMM (V. Volkov and J. Demmel, SC08; CUTLASS's SIMT sgemm).
#pragma once
#include "cuda/kernels/common.cuh"

namespace bsx::cuda::kernels {

struct GemmArgs {
  int M = 0, N = 0, K = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* A = nullptr;
  long long lda = 0, sa = 0;  // sa, sb, ...: floats between consecutive replicas' operands
  const float* B = nullptr;
  long long ldb = 0, sb = 0;
  float* C = nullptr;
  long long ldc = 0, sc = 0;
  const float* bias = nullptr;
  long long sbias = 0;
  const float* mask = nullptr;
  long long ldm = 0, smask = 0;
  int relu = 0;
  int vec_a = 0, vec_b = 0, vec_c = 0;  // 16-byte accesses allowed (host checks alignment)
  int r0 = 0;                            // first replica of this launch
};

constexpr int kGemmBK = 8;

// Stages a BMN x kGemmBK tile of one operand through registers into shared S[k][mn].
// K_CONTIG: element (mn, k) is X[mn * ld + k] (else X[k * ld + mn]).
template <int BMN, int NT, bool K_CONTIG>
struct GemmTileLoader {
  static constexpr int kGroups = BMN * kGemmBK / 4;  // float4 groups per tile
  static constexpr int kPerThread = kGroups / NT;
  static_assert(kPerThread * NT == kGroups, "tile groups must divide among the threads");
  float4 reg[kPerThread];

  __device__ __forceinline__ void load(const float* X, long long ld, int mn0, int k0, int MN,
                                       int K, bool vec, int tid) {
#pragma unroll
    for (int p = 0; p < kPerThread; ++p) {
      const int g = tid + p * NT;
      float v[4];
      if (K_CONTIG) {
        const int mn = mn0 + g / (kGemmBK / 4), k = k0 + (g % (kGemmBK / 4)) * 4;
        const float* src = X + static_cast<long long>(mn) * ld + k;
        if (vec && mn < MN && k + 3 < K) {
          reg[p] = ldg4(src);
          continue;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = (mn < MN && k + e < K) ? __ldg(src + e) : 0.0f;
      } else {
        const int k = k0 + g / (BMN / 4), mn = mn0 + (g % (BMN / 4)) * 4;
        const float* src = X + static_cast<long long>(k) * ld + mn;
        if (vec && k < K && mn + 3 < MN) {
          reg[p] = ldg4(src);
          continue;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = (k < K && mn + e < MN) ? __ldg(src + e) : 0.0f;
      }
      reg[p] = make_float4(v[0], v[1], v[2], v[3]);
    }
  }

  __device__ __forceinline__ void store(float (*S)[BMN + 4], int tid) const {
#pragma unroll
    for (int p = 0; p < kPerThread; ++p) {
      const int g = tid + p * NT;
      if (K_CONTIG) {
        const int mn = g / (kGemmBK / 4), k = (g % (kGemmBK / 4)) * 4;
        S[k + 0][mn] = reg[p].x;
        S[k + 1][mn] = reg[p].y;
        S[k + 2][mn] = reg[p].z;
        S[k + 3][mn] = reg[p].w;
      } else {
        const int k = g / (BMN / 4), mn = (g % (BMN / 4)) * 4;
        st4(&S[k][mn], reg[p]);
      }
    }
  }
};

__device__ __forceinline__ float gemm_epilogue(float acc, const GemmArgs& p, float c_old,
                                               const float* bias, const float* mask_row, int n) {
  float v = p.alpha * acc;
  if (p.beta != 0.0f) v += p.beta * c_old;
  if (bias != nullptr) v += bias[n];
  if (mask_row != nullptr && !(mask_row[n] > 0.0f)) v = 0.0f;
  if (p.relu && !(v > 0.0f)) v = 0.0f;
  return v;
}

// grid (ceil(N/BN), ceil(M/BM), replicas in this launch), block (BM/8)*(BN/8).
template <int BM, int BN, bool TA, bool TB>
__global__ void __launch_bounds__((BM / 8) * (BN / 8)) sgemm_tiled(GemmArgs p) {
  constexpr int NT = (BM / 8) * (BN / 8);
  constexpr int TX = BN / 8;
  __shared__ __align__(16) float As[2][kGemmBK][BM + 4];
  __shared__ __align__(16) float Bs[2][kGemmBK][BN + 4];

  const int tid = threadIdx.x;
  const int tx = tid % TX, ty = tid / TX;
  const long long r = static_cast<long long>(p.r0) + blockIdx.z;
  const float* A = p.A + r * p.sa;
  const float* B = p.B + r * p.sb;
  float* C = p.C + r * p.sc;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  GemmTileLoader<BM, NT, !TA> la;
  GemmTileLoader<BN, NT, TB> lb;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

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
#pragma unroll
      for (int k = 0; k < kGemmBK; ++k) {
        const float4 a0 = ld4(&As[cur][k][ty * 4]);
        const float4 a1 = ld4(&As[cur][k][BM / 2 + ty * 4]);
        const float4 b0 = ld4(&Bs[cur][k][tx * 4]);
        const float4 b1 = ld4(&Bs[cur][k][BN / 2 + tx * 4]);
        const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if (more) {
        la.store(As[cur ^ 1], tid);
        lb.store(Bs[cur ^ 1], tid);
      }
      __syncthreads();
    }
  }

  const float* bias = p.bias != nullptr ? p.bias + r * p.sbias : nullptr;
  const float* mask = p.mask != nullptr ? p.mask + r * p.smask : nullptr;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + (i - 4));
    if (m >= p.M) continue;
    float* crow = C + static_cast<long long>(m) * p.ldc;
    const float* mrow = mask != nullptr ? mask + static_cast<long long>(m) * p.ldm : nullptr;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int nb = n0 + h * (BN / 2) + tx * 4;
      if (p.vec_c && nb + 3 < p.N) {
        float4 old = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (p.beta != 0.0f) old = ld4(crow + nb);
        float4 out;
        out.x = gemm_epilogue(acc[i][h * 4 + 0], p, old.x, bias, mrow, nb + 0);
        out.y = gemm_epilogue(acc[i][h * 4 + 1], p, old.y, bias, mrow, nb + 1);
        out.z = gemm_epilogue(acc[i][h * 4 + 2], p, old.z, bias, mrow, nb + 2);
        out.w = gemm_epilogue(acc[i][h * 4 + 3], p, old.w, bias, mrow, nb + 3);
        st4(crow + nb, out);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int n = nb + j;
          if (n < p.N) {
            const float old = p.beta != 0.0f ? crow[n] : 0.0f;
            crow[n] = gemm_epilogue(acc[i][h * 4 + j], p, old, bias, mrow, n);
          }
        }
      }
    }
  }
}

}  // namespace bsx::cuda::kernels
