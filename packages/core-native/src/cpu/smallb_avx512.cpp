// AVX-512 build of the small-batch kernels (smallb_kernels.inc, 16 lanes). Compiled with
// -mavx512f/vl/bw/dq -mfma; only called when simd_path() is Avx512.
#include "cpu/smallb.h"

#if defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 headers trip -Wuninitialized on their own helpers (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define BSX_SMALLB_SET_NAME "avx512"
#include "cpu/smallb_kernels.inc"

namespace bsx::cpu::smallb_detail {
SmallBatchKernels kernels_avx512() { return make_set(); }
}  // namespace bsx::cpu::smallb_detail

#else  // built without AVX-512 (a non-x86 target)

namespace bsx::cpu::smallb_detail {
SmallBatchKernels kernels_avx512() { return SmallBatchKernels{}; }
}  // namespace bsx::cpu::smallb_detail

#endif
