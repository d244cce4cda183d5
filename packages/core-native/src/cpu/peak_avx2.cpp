// AVX2 FMA chains of the peak measurement (peak.cpp): 16 independent YMM accumulators.
// Reference: the usual peak-FLOPS microbenchmark pattern (e.g. Agner Fog's test programs).
#include "cpu/peak.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace bsx::cpu::peak_detail {

float fma_chains_avx2(std::int64_t iters, float seed) {
  static_assert(kChainsAvx2 == 14, "the chains below are written out");
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(seed * 1e-6f);
  // Named accumulators (an array would be kept on the stack).
  __m256 a0 = _mm256_set1_ps(seed + 0), a1 = _mm256_set1_ps(seed + 1), a2 = _mm256_set1_ps(seed + 2),
         a3 = _mm256_set1_ps(seed + 3), a4 = _mm256_set1_ps(seed + 4), a5 = _mm256_set1_ps(seed + 5),
         a6 = _mm256_set1_ps(seed + 6), a7 = _mm256_set1_ps(seed + 7), a8 = _mm256_set1_ps(seed + 8),
         a9 = _mm256_set1_ps(seed + 9), a10 = _mm256_set1_ps(seed + 10),
         a11 = _mm256_set1_ps(seed + 11), a12 = _mm256_set1_ps(seed + 12),
         a13 = _mm256_set1_ps(seed + 13);
  for (std::int64_t it = 0; it < iters; ++it) {
#define BSX_F(x) x = _mm256_fmadd_ps(x, mul, add)
    BSX_F(a0); BSX_F(a1); BSX_F(a2); BSX_F(a3); BSX_F(a4); BSX_F(a5); BSX_F(a6);
    BSX_F(a7); BSX_F(a8); BSX_F(a9); BSX_F(a10); BSX_F(a11); BSX_F(a12); BSX_F(a13);
#undef BSX_F
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6),
                     "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11), "+x"(a12), "+x"(a13));
  }
  const __m256 s = _mm256_add_ps(
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                    _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))),
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)),
                    _mm256_add_ps(a12, a13)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

}  // namespace bsx::cpu::peak_detail

#else

namespace bsx::cpu::peak_detail {
float fma_chains_avx2(std::int64_t, float) { return 0.0f; }
}  // namespace bsx::cpu::peak_detail

#endif
