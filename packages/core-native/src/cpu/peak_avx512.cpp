// AVX-512 FMA chains of the peak measurement (peak.cpp): 16 independent accumulators, enough
// to cover FMA latency x throughput on current x86 cores.
// Reference: the usual peak-FLOPS microbenchmark pattern (e.g. Agner Fog's test programs).
#include "cpu/peak.h"

#if defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm*_undefined_* helpers
// (GCC bug 105593); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace bsx::cpu::peak_detail {

float fma_chains_avx512(std::int64_t iters, float seed) {
  static_assert(kChainsAvx512 == 16, "the chains below are written out");
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(seed * 1e-6f);
  // Named accumulators (an array would be kept on the stack).
  __m512 a0 = _mm512_set1_ps(seed + 0), a1 = _mm512_set1_ps(seed + 1), a2 = _mm512_set1_ps(seed + 2),
         a3 = _mm512_set1_ps(seed + 3), a4 = _mm512_set1_ps(seed + 4), a5 = _mm512_set1_ps(seed + 5),
         a6 = _mm512_set1_ps(seed + 6), a7 = _mm512_set1_ps(seed + 7), a8 = _mm512_set1_ps(seed + 8),
         a9 = _mm512_set1_ps(seed + 9), a10 = _mm512_set1_ps(seed + 10),
         a11 = _mm512_set1_ps(seed + 11), a12 = _mm512_set1_ps(seed + 12),
         a13 = _mm512_set1_ps(seed + 13), a14 = _mm512_set1_ps(seed + 14),
         a15 = _mm512_set1_ps(seed + 15);
  for (std::int64_t it = 0; it < iters; ++it) {
#define BSX_F(x) x = _mm512_fmadd_ps(x, mul, add)
    BSX_F(a0); BSX_F(a1); BSX_F(a2); BSX_F(a3); BSX_F(a4); BSX_F(a5); BSX_F(a6); BSX_F(a7);
    BSX_F(a8); BSX_F(a9); BSX_F(a10); BSX_F(a11); BSX_F(a12); BSX_F(a13); BSX_F(a14); BSX_F(a15);
#undef BSX_F
    // Keeps the compiler from collapsing or vectorising away the loop.
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6),
                     "+v"(a7));
    __asm__ volatile("" : "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13),
                     "+v"(a14), "+v"(a15));
  }
  const __m512 s = _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                    _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                    _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  float out[16];
  _mm512_storeu_ps(out, s);
  float r = 0.0f;
  for (float x : out) r += x;
  return r;
}

}  // namespace bsx::cpu::peak_detail

#else

namespace bsx::cpu::peak_detail {
float fma_chains_avx512(std::int64_t, float) { return 0.0f; }
}  // namespace bsx::cpu::peak_detail

#endif
