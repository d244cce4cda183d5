// AVX2/FMA kernels of the GEMM: the 6x16 register-blocked micro-kernel (op(A) values
// broadcast from a packed panel or from rows of A in place, two 8-lane vectors per k step
// from packed op(B); 12 accumulators of the 16 YMM registers),
// the packing routines, and the unpacked small-problem kernels (direct and dot-product).
// Compiled with -mavx2 -mfma; only called when simd_path() is Avx2.
// Reference: Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication"
// (TOMS 2008); the 6x16 AVX2 shape is the one BLIS uses for Haswell-class cores.
#include "cpu/gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace bsx::cpu::gemm_detail {
namespace {

constexpr int kMR = 6;
constexpr int kNV = 2;
constexpr int kNR = 8 * kNV;

inline int imin(int a, int b) { return a < b ? a : b; }

alignas(32) const int kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// Lanes [0, n) of an 8-lane vector (n clamped to [0, 8]).
inline __m256i lanes(int n) {
  n = n < 0 ? 0 : (n > 8 ? 8 : n);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
}

inline __m256 load(const float* p, bool full, __m256i km) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, km);
}

inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

// v = alpha*acc + beta*C (beta == 0: C not read), then the epilogue; stored on lanes km.
inline void store_row(float* c, __m256 acc, bool full, __m256i km, __m256 va, float beta,
                      __m256 vb, bool has_ep, __m256 bias, const float* mrow, bool relu) {
  __m256 v = _mm256_mul_ps(acc, va);
  if (beta != 0.0f) v = _mm256_fmadd_ps(load(c, full, km), vb, v);
  if (has_ep) {
    v = _mm256_add_ps(v, bias);
    if (mrow != nullptr) {
      const __m256 mk = load(mrow, full, km);
      v = _mm256_and_ps(v, _mm256_cmp_ps(mk, _mm256_setzero_ps(), _CMP_GT_OQ));
    }
    if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());  // NaN -> 0, like the reference
  }
  if (full) {
    _mm256_storeu_ps(c, v);
  } else {
    _mm256_maskstore_ps(c, km, v);
  }
}

// ---------------------------------------------------------------------------------------
// Micro-kernel
template <int MR, int NV>
void micro_kernel(int kc, const float* __restrict A, std::int64_t rsa, std::int64_t csa,
                  const float* __restrict Bp, float* C, std::int64_t ldc, int mv, int nv,
                  float alpha, float beta, const TileEpilogue* ep) {
  constexpr int NR = 8 * NV;
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i < mv) {
      const char* row = reinterpret_cast<const char*>(C + i * ldc);
      _mm_prefetch(row, _MM_HINT_T0);
      _mm_prefetch(row + 4 * NR - 1, _MM_HINT_T0);
    }
  }

  if (rsa == 1) {
#pragma GCC unroll 4
    for (int k = 0; k < kc; ++k) {
      __m256 b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = _mm256_loadu_ps(Bp + 8 * j);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 a = _mm256_broadcast_ss(A + i);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(a, b[j], acc[i][j]);
      }
      A += csa;
      Bp += NR;
    }
  } else {
    const float* row[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) row[i] = A + (i < mv ? i : 0) * rsa;
#pragma GCC unroll 4
    for (int k = 0; k < kc; ++k) {
      __m256 b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = _mm256_loadu_ps(Bp + 8 * j);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 a = _mm256_broadcast_ss(row[i] + k);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(a, b[j], acc[i][j]);
      }
      Bp += NR;
    }
  }

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  const bool has_ep = ep != nullptr;
  const bool relu = has_ep && ep->relu;
  __m256i km[NV];
  bool full[NV];
  __m256 bias[NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    full[j] = nv >= 8 * (j + 1);
    km[j] = lanes(nv - 8 * j);
    bias[j] = (has_ep && ep->bias != nullptr) ? load(ep->bias + 8 * j, full[j], km[j])
                                              : _mm256_setzero_ps();
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i < mv) {
      float* c = C + i * ldc;
      const float* mrow = (has_ep && ep->mask != nullptr) ? ep->mask + i * ep->ldm : nullptr;
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        if (nv > 8 * j) {
          store_row(c + 8 * j, acc[i][j], full[j], km[j], va, beta, vb, has_ep, bias[j],
                    mrow != nullptr ? mrow + 8 * j : nullptr, relu);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Packing

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

// out[k*P + i] = src[i*ld + k] for i < rows (<= P), k < kc; zero for rows <= i < P.
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
      const __m256i km = lanes(kc - k);
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_maskload_ps(s + i * ld + k, km);
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
  if (P % 8 == 0 && cols == P) {
    for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < P; j += 8) _mm256_storeu_ps(out + k * P + j, _mm256_loadu_ps(src + k * ld + j));
    }
  } else if (P == 6 && cols == P) {
    // The 6-row A panel: a 4-wide and a 2-wide copy per k step.
    for (int k = 0; k < kc; ++k) {
      _mm_storeu_ps(out + k * P, _mm_loadu_ps(src + k * ld));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + k * P + 4),
                       _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + k * ld + 4)));
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
      pack_copy<kMR>(A + m0, lda, rows, kc, Ap);
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
      pack_transposed<kNR>(B + n0 * ldb, ldb, cols, kc, Bp);
    } else {
      pack_copy<kNR>(B + n0, ldb, cols, kc, Bp);
    }
    Bp += static_cast<std::int64_t>(kNR) * kc;
  }
}

// ---------------------------------------------------------------------------------------
// Direct kernel: R rows x 8*V columns, full K, no packing.
template <int R, int V>
void direct_tile(int K, int ncols, float alpha, const float* A, std::int64_t rsa,
                 std::int64_t csa, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc, const float* bias, const float* mask, std::int64_t ldm,
                 bool relu, bool has_ep) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) acc[i][j] = _mm256_setzero_ps();
  __m256i km[V];
  bool full[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) {
    km[j] = lanes(ncols - 8 * j);
    full[j] = ncols >= 8 * (j + 1);
  }
  if (ncols >= 8 * V) {
    for (int k = 0; k < K; ++k) {
      const float* b = B + k * ldb;
      __m256 bv[V];
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j) bv[j] = _mm256_loadu_ps(b + 8 * j);
      const float* a = A + k * csa;
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i * rsa);
#pragma GCC unroll 8
        for (int j = 0; j < V; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
  } else {
    for (int k = 0; k < K; ++k) {
      const float* b = B + k * ldb;
      __m256 bv[V];
#pragma GCC unroll 8
      for (int j = 0; j < V; ++j) bv[j] = _mm256_maskload_ps(b + 8 * j, km[j]);
      const float* a = A + k * csa;
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i * rsa);
#pragma GCC unroll 8
        for (int j = 0; j < V; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  __m256 bv[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j)
    bv[j] = bias != nullptr ? load(bias + 8 * j, full[j], km[j]) : _mm256_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) {
      if (ncols > 8 * j) {
        store_row(C + i * ldc + 8 * j, acc[i][j], full[j], km[j], va, beta, vb, has_ep, bv[j],
                  mask != nullptr ? mask + i * ldm + 8 * j : nullptr, relu);
      }
    }
  }
}

template <int R, int V>
void direct_rows(int n0, int n1, int K, float alpha, const float* A, std::int64_t rsa,
                 std::int64_t csa, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc, const Epilogue& ep, int m0) {
  const bool has_ep = ep.bias != nullptr || ep.mask != nullptr || ep.relu;
  for (int n = n0; n < n1; n += 8 * V) {
    direct_tile<R, V>(K, imin(8 * V, n1 - n), alpha, A + m0 * rsa, rsa, csa, B + n, ldb, beta,
                      C + m0 * ldc + n, ldc, ep.bias != nullptr ? ep.bias + n : nullptr,
                      ep.mask != nullptr ? ep.mask + m0 * ep.ldm + n : nullptr, ep.ldm, ep.relu,
                      has_ep);
  }
}

void direct(int m0, int m1, int n0, int n1, int K, float alpha, const float* A,
            std::int64_t rsa, std::int64_t csa, const float* B, std::int64_t ldb, float beta,
            float* C, std::int64_t ldc, const Epilogue& ep) {
  for (int m = m0; m < m1;) {
    const int rows = imin(6, m1 - m);
    switch (rows) {
      case 1: direct_rows<1, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 2: direct_rows<2, 4>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 3: direct_rows<3, 3>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 4: direct_rows<4, 2>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      case 5: direct_rows<5, 2>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
      default: direct_rows<6, 2>(n0, n1, K, alpha, A, rsa, csa, B, ldb, beta, C, ldc, ep, m); break;
    }
    m += rows;
  }
}

// ---------------------------------------------------------------------------------------
// Dot kernel
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
              int n) {
  __m256 acc[M][G];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[i][g] = _mm256_setzero_ps();
  const float* b = B + n * ldb;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 bv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) bv[g] = _mm256_loadu_ps(b + g * ldb + k);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 av = _mm256_loadu_ps(A + i * lda + k);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[i][g] = _mm256_fmadd_ps(av, bv[g], acc[i][g]);
    }
  }
  if (k < K) {
    const __m256i km = lanes(K - k);
    __m256 bv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) bv[g] = _mm256_maskload_ps(b + g * ldb + k, km);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 av = _mm256_maskload_ps(A + i * lda + k, km);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[i][g] = _mm256_fmadd_ps(av, bv[g], acc[i][g]);
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
  for (; n + G <= n1; n += G) dot_tile<M, G>(K, alpha, A, lda, B, ldb, beta, C, ldc, ep, n);
  for (; n < n1; ++n) dot_tile<M, 1>(K, alpha, A, lda, B, ldb, beta, C, ldc, ep, n);
}

void dot(int M, int n0, int n1, int K, float alpha, const float* A, std::int64_t lda,
         const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
         const Epilogue& ep) {
  // Rows in groups of at most 4 (16 YMM registers).
  for (int m = 0; m < M;) {
    const int r = imin(4, M - m);
    const float* a = A + m * lda;
    float* c = C + m * ldc;
    Epilogue e = ep;
    if (e.mask != nullptr) e.mask += m * ep.ldm;
    switch (r) {
      case 1: dot_rows<1, 6>(n0, n1, K, alpha, a, lda, B, ldb, beta, c, ldc, e); break;
      case 2: dot_rows<2, 4>(n0, n1, K, alpha, a, lda, B, ldb, beta, c, ldc, e); break;
      case 3: dot_rows<3, 3>(n0, n1, K, alpha, a, lda, B, ldb, beta, c, ldc, e); break;
      default: dot_rows<4, 2>(n0, n1, K, alpha, a, lda, B, ldb, beta, c, ldc, e); break;
    }
    m += r;
  }
}

}  // namespace

KernelSet kernels_avx2() {
  KernelSet s{};
  s.name = "avx2";
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

#else  // built without AVX2 (a non-x86 target)

namespace bsx::cpu::gemm_detail {
KernelSet kernels_avx2() { return KernelSet{}; }
}  // namespace bsx::cpu::gemm_detail

#endif
