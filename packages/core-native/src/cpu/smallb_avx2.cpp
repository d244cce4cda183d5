// AVX2 + FMA build of the small-batch kernels (smallb_kernels.inc, 8 lanes). Compiled with
// -mavx2 -mfma; only called when simd_path() is Avx2.
#include "cpu/smallb.h"

#if defined(__AVX2__) && defined(__FMA__)
#define BSX_SMALLB_SET_NAME "avx2"
#include "cpu/smallb_kernels.inc"

namespace bsx::cpu::smallb_detail {
SmallBatchKernels kernels_avx2() { return make_set(); }
}  // namespace bsx::cpu::smallb_detail

#else  // built without AVX2 (a non-x86 target)

namespace bsx::cpu::smallb_detail {
SmallBatchKernels kernels_avx2() { return SmallBatchKernels{}; }
}  // namespace bsx::cpu::smallb_detail

#endif
