// AVX-512 kernels of the GEMM: the register-blocked micro-kernel (8 rows x 32 columns: 16
// ZMM accumulators; op(A) values broadcast from a packed panel or read from rows of A in
// place, two vectors per k step loaded from packed op(B)), the packing routines (8x8
// transposes for the transposed operands), and the unpacked small-problem kernels: direct
// (8-row tiles streaming B, for the GEMV-like and rank-K shapes) and dot (rows of A against
// rows of B, for the forward pass at small batch). Tile shape and blocking were chosen in
// the kernel lab (test/native/gemm_bench.cpp): 8x32 kept pace with 8x48, 12x32, 14x32 and
// 6x64 in the L2-resident kernel loop and wastes least on the MLP's 784/1024 edges.
// Compiled with -mavx512f/vl/bw/dq -mfma; only called when simd_path() is Avx512.
// Reference: Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication"
// (TOMS 2008); the BLIS micro-kernel design (Van Zee & van de Geijn, TOMS 2015).
#include "cpu/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm*_undefined_* helpers
// (GCC bug 105593); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#ifndef BSX_AVX512_MR
#define BSX_AVX512_MR 8
#endif
#ifndef BSX_AVX512_NV
#define BSX_AVX512_NV 2
#endif

namespace bsx::cpu::gemm_detail {
namespace {

constexpr int kMR = BSX_AVX512_MR;
constexpr int kNV = BSX_AVX512_NV;
constexpr int kNR = 16 * kNV;

inline int imin(int a, int b) { return a < b ? a : b; }

// Lanes [0, n) of a 16-lane vector (n clamped to [0, 16]).
inline __mmask16 lanes(int n) {
  if (n >= 16) return static_cast<__mmask16>(0xFFFF);
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1u);
}

// Horizontal sum in a fixed order (not _mm512_reduce_add_ps: GCC 12 warns inside it).
inline float hsum(__m512 v) {
  const __m512 s1 = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // + other 256-bit half
  const __m256 h = _mm512_castps512_ps256(s1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

// v = alpha*acc + beta*C (beta == 0: C not read), then the epilogue; stored under mask k.
inline void store_row(float* c, __m512 acc, __mmask16 k, __m512 va, float beta, __m512 vb,
                      bool has_ep, __m512 bias, const float* mrow, bool relu) {
  __m512 v = _mm512_mul_ps(acc, va);
  if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, c), vb, v);
  if (has_ep) {
    v = _mm512_add_ps(v, bias);
    if (mrow != nullptr) {
      const __m512 mk = _mm512_maskz_loadu_ps(k, mrow);
      v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mk, _mm512_setzero_ps(), _CMP_GT_OQ), v);
    }
    if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());  // NaN -> 0, like the reference
  }
  _mm512_mask_storeu_ps(c, k, v);
}

// ---------------------------------------------------------------------------------------
// Micro-kernel
template <int MR, int NV>
void micro_kernel(int kc, const float* __restrict A, std::int64_t rsa, std::int64_t csa,
                  const float* __restrict Bp, float* C, std::int64_t ldc, int mv, int nv,
                  float alpha, float beta, const TileEpilogue* ep) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();

  // Warm the C tile while the K loop runs.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i < mv) {
      const char* row = reinterpret_cast<const char*>(C + i * ldc);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) _mm_prefetch(row + 64 * j, _MM_HINT_T0);
    }
  }

  if (rsa == 1) {
    // The MR values of each k step are consecutive (packed panel or A^T in place).
#pragma GCC unroll 4
    for (int k = 0; k < kc; ++k) {
      __m512 b[NV];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) b[j] = _mm512_loadu_ps(Bp + 16 * j);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const __m512 a = _mm512_set1_ps(A[i]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
      }
      A += csa;
      Bp += NR;
    }
  } else {
    // Rows of A in place; rows past mv alias row 0 (computed, never stored).
    const float* row[MR];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) row[i] = A + (i < mv ? i : 0) * rsa;
#pragma GCC unroll 4
    for (int k = 0; k < kc; ++k) {
      __m512 b[NV];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) b[j] = _mm512_loadu_ps(Bp + 16 * j);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const __m512 a = _mm512_set1_ps(row[i][k]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
      }
      Bp += NR;
    }
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  __mmask16 km[NV];
  __m512 bias[NV];
  const bool has_ep = ep != nullptr;
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    km[j] = lanes(nv - 16 * j);
    bias[j] = (has_ep && ep->bias != nullptr) ? _mm512_maskz_loadu_ps(km[j], ep->bias + 16 * j)
                                              : _mm512_setzero_ps();
  }
  const bool relu = has_ep && ep->relu;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i < mv) {
      float* c = C + i * ldc;
      const float* mrow = (has_ep && ep->mask != nullptr) ? ep->mask + i * ep->ldm : nullptr;
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        store_row(c + 16 * j, acc[i][j], km[j], va, beta, vb, has_ep, bias[j],
                  mrow != nullptr ? mrow + 16 * j : nullptr, relu);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Packing

// 8x8 transpose of rows r[0..7] (8 floats each).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
  const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
  const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
  const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
  const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// out[k*stride + i] = src[i*ld + k] for i < rows (<= P), k < kc; zero for rows <= i < P.
// P is the panel width (mr or nr). The gather-transpose both packings need.
template <int P>
void pack_transposed(const float* src, std::int64_t ld, int rows, int kc, float* out) {
  int i0 = 0;
  for (; i0 + 8 <= rows; i0 += 8) {
    const float* s = src + i0 * ld;
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ld + k);
      transpose8(r);
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(out + (k + t) * P + i0, r[t]);
    }
    if (k < kc) {
      const __mmask8 km = static_cast<__mmask8>((1u << (kc - k)) - 1u);
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_maskz_loadu_ps(km, s + i * ld + k);
      transpose8(r);
      for (int t = 0; t < kc - k; ++t) _mm256_storeu_ps(out + (k + t) * P + i0, r[t]);
    }
  }
  for (int i = i0; i < P; ++i) {
    if (i < rows) {
      const float* s = src + i * ld;
      for (int k = 0; k < kc; ++k) out[k * P + i] = s[k];
    } else {
      for (int k = 0; k < kc; ++k) out[k * P + i] = 0.0f;
    }
  }
}

// out[k*P + j] = src[k*ld + j] for j < cols (<= P); zero beyond.
template <int P>
void pack_copy(const float* src, std::int64_t ld, int cols, int kc, float* out) {
  if constexpr (P % 16 == 0) {
    constexpr int V = P / 16;
    __mmask16 km[V];
    for (int j = 0; j < V; ++j) km[j] = lanes(imin(cols, P) - 16 * j);
    for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j)
        _mm512_storeu_ps(out + k * P + 16 * j, _mm512_maskz_loadu_ps(km[j], src + k * ld + 16 * j));
    }
  } else if constexpr (P % 8 == 0) {
    constexpr int V = P / 8;
    __mmask8 km[V];
    for (int j = 0; j < V; ++j) km[j] = static_cast<__mmask8>(lanes(imin(cols, P) - 8 * j) & 0xFF);
    for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j)
        _mm256_storeu_ps(out + k * P + 8 * j, _mm256_maskz_loadu_ps(km[j], src + k * ld + 8 * j));
    }
  } else {
    for (int k = 0; k < kc; ++k)
      for (int j = 0; j < P; ++j) out[k * P + j] = j < cols ? src[k * ld + j] : 0.0f;
  }
}

void pack_a(bool transA, const float* A, std::int64_t lda, int mc, int kc, float* Ap) {
  for (int m0 = 0; m0 < mc; m0 += kMR) {
    const int rows = imin(kMR, mc - m0);
    if (transA) {
      pack_copy<kMR>(A + m0, lda, rows, kc, Ap);  // op(A)(m,k) = A[k*lda + m]
    } else {
      pack_transposed<kMR>(A + m0 * lda, lda, rows, kc, Ap);
    }
    Ap += static_cast<std::int64_t>(kMR) * kc;
  }
}

void pack_b(bool transB, const float* B, std::int64_t ldb, int kc, int nc, float* Bp) {
  for (int n0 = 0; n0 < nc; n0 += kNR) {
    const int cols = imin(kNR, nc - n0);
    if (transB) {
      pack_transposed<kNR>(B + n0 * ldb, ldb, cols, kc, Bp);  // op(B)(k,n) = B[n*ldb + k]
    } else {
      pack_copy<kNR>(B + n0, ldb, cols, kc, Bp);
    }
    Bp += static_cast<std::int64_t>(kNR) * kc;
  }
}

// ---------------------------------------------------------------------------------------
// Direct kernel: R rows x 16*V columns, full K, no packing.
template <int R, int V>
void direct_tile(int K, int ncols, float alpha, const float* A, std::int64_t rsa,
                 std::int64_t csa, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc, const float* bias, const float* mask, std::int64_t ldm,
                 bool relu, bool has_ep) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) acc[i][j] = _mm512_setzero_ps();
  __mmask16 km[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) km[j] = lanes(ncols - 16 * j);
  const bool full = ncols >= 16 * V;
  if (full) {
    for (int k = 0; k < K; ++k) {
      const float* b = B + k * ldb;
      __m512 bv[V];
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j) bv[j] = _mm512_loadu_ps(b + 16 * j);
      const float* a = A + k * csa;
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m512 av = _mm512_set1_ps(a[i * rsa]);
#pragma GCC unroll 8
        for (int j = 0; j < V; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
  } else {
    for (int k = 0; k < K; ++k) {
      const float* b = B + k * ldb;
      __m512 bv[V];
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j) bv[j] = _mm512_maskz_loadu_ps(km[j], b + 16 * j);
      const float* a = A + k * csa;
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m512 av = _mm512_set1_ps(a[i * rsa]);
#pragma GCC unroll 8
        for (int j = 0; j < V; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  __m512 bv[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j)
    bv[j] = bias != nullptr ? _mm512_maskz_loadu_ps(km[j], bias + 16 * j) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) {
      store_row(C + i * ldc + 16 * j, acc[i][j], km[j], va, beta, vb, has_ep, bv[j],
                mask != nullptr ? mask + i * ldm + 16 * j : nullptr, relu);
    }
  }
}

template <int R, int V>
void direct_rows(int n0, int n1, int K, float alpha, const float* A, std::int64_t rsa,
                 std::int64_t csa, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc, const Epilogue& ep, int m0) {
  const bool has_ep = ep.bias != nullptr || ep.mask != nullptr || ep.relu;
  for (int n = n0; n < n1; n += 16 * V) {
    direct_tile<R, V>(K, imin(16 * V, n1 - n), alpha, A + m0 * rsa, rsa, csa, B + n, ldb, beta,
                      C + m0 * ldc + n, ldc, ep.bias != nullptr ? ep.bias + n : nullptr,
                      ep.mask != nullptr ? ep.mask + m0 * ep.ldm + n : nullptr, ep.ldm, ep.relu,
                      has_ep);
  }
}

void direct(int m0, int m1, int n0, int n1, int K, float alpha, const float* A,
            std::int64_t rsa, std::int64_t csa, const float* B, std::int64_t ldb, float beta,
            float* C, std::int64_t ldc, const Epilogue& ep) {
  for (int m = m0; m < m1;) {
    const int rows = imin(8, m1 - m);
    switch (rows) {
      case 1: direct_rows<1, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 2: direct_rows<2, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 3: direct_rows<3, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 4: direct_rows<4, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 5: direct_rows<5, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 6: direct_rows<6, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 7: direct_rows<7, 3>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      default: direct_rows<8, 3>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
    }
    m += rows;
  }
}

// ---------------------------------------------------------------------------------------
// Dot kernel: M rows of A (contiguous along K) against G rows of B (contiguous along K).
inline float epilogue_scalar(float dot, float alpha, float beta, const float* c, const float* bias,
                             const float* mask, bool relu) {
  float v = alpha * dot;
  if (beta != 0.0f) v += beta * *c;
  if (bias != nullptr) v += *bias;
  if (mask != nullptr && !(*mask > 0.0f)) v = 0.0f;
  if (relu && !(v > 0.0f)) v = 0.0f;
  return v;
}

template <int M, int G>
void dot_tile(int K, float alpha, const float* A, std::int64_t lda, const float* B,
              std::int64_t ldb, float beta, float* C, std::int64_t ldc, const Epilogue& ep,
              int n, bool prefetch_next) {
  __m512 acc[M][G];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[i][g] = _mm512_setzero_ps();
  const float* b = B + n * ldb;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 bv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) bv[g] = _mm512_loadu_ps(b + g * ldb + k);
    // The next tile's rows of B, one line per row per step: a tile of lead time.
    if (prefetch_next) {
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g)
        _mm_prefetch(reinterpret_cast<const char*>(b + (G + g) * ldb + k), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512 av = _mm512_loadu_ps(A + i * lda + k);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[i][g] = _mm512_fmadd_ps(av, bv[g], acc[i][g]);
    }
  }
  if (k < K) {
    const __mmask16 km = lanes(K - k);
    __m512 bv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) bv[g] = _mm512_maskz_loadu_ps(km, b + g * ldb + k);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512 av = _mm512_maskz_loadu_ps(km, A + i * lda + k);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[i][g] = _mm512_fmadd_ps(av, bv[g], acc[i][g]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const float d = hsum(acc[i][g]);
      float* c = C + i * ldc + n + g;
      *c = epilogue_scalar(d, alpha, beta, c, ep.bias != nullptr ? ep.bias + n + g : nullptr,
                           ep.mask != nullptr ? ep.mask + i * ep.ldm + n + g : nullptr, ep.relu);
    }
  }
}

template <int M, int G>
void dot_rows(int n0, int n1, int K, float alpha, const float* A, std::int64_t lda,
              const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
              const Epilogue& ep) {
  int n = n0;
  for (; n + G <= n1; n += G)
    dot_tile<M, G>(K, alpha, A, lda, B, ldb, beta, C, ldc, ep, n, n + 2 * G <= n1);
  for (; n < n1; ++n) dot_tile<M, 1>(K, alpha, A, lda, B, ldb, beta, C, ldc, ep, n, false);
}

void dot(int M, int n0, int n1, int K, float alpha, const float* A, std::int64_t lda,
         const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
         const Epilogue& ep) {
  switch (M) {
    case 1: dot_rows<1, 8>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 2: dot_rows<2, 6>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 3: dot_rows<3, 5>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 4: dot_rows<4, 4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    // At 6..8 rows, 4 rows of B at a time beat 3 although a few accumulators then live on
    // the stack: more rows of B in flight stream faster, and streaming is the bound.
    case 5: dot_rows<5, 4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 6: dot_rows<6, 4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 7: dot_rows<7, 4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    case 8: dot_rows<8, 4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ep); break;
    default: {
      // Not used by the driver (M <= 8); rows in groups of 8 for completeness.
      for (int m = 0; m < M; m += 8) {
        const int r = imin(8, M - m);
        dot(r, n0, n1, K, alpha, A + m * lda, lda, B, ldb, beta, C + m * ldc, ldc,
            Epilogue{ep.bias, ep.mask != nullptr ? ep.mask + m * ep.ldm : nullptr, ep.ldm,
                     ep.relu});
      }
    }
  }
}

}  // namespace

KernelSet kernels_avx512() {
  KernelSet s{};
  s.name = "avx512";
  s.mr = kMR;
  s.nr = kNR;
  s.kernel = &micro_kernel<kMR, kNV>;
  s.pack_a = &pack_a;
  s.pack_b = &pack_b;
  s.direct = &direct;
  s.dot = &dot;
  return s;
}

}  // namespace bsx::cpu::gemm_detail

#else  // built without AVX-512 (a non-x86 target)

namespace bsx::cpu::gemm_detail {
KernelSet kernels_avx512() { return KernelSet{}; }
}  // namespace bsx::cpu::gemm_detail

#endif
