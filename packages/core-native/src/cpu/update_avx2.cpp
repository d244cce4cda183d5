// AVX2 build of the optimisers' update kernels (update_kernels.inc). Compiled with
// -mavx2 -mfma; only called when simd_path() is Avx2.
#include "cpu/update.h"

#if defined(__AVX2__)
#define BSX_UPDATE_SET_NAME "avx2"
#include "cpu/update_kernels.inc"

namespace bsx::cpu::update_detail {
UpdateKernels kernels_avx2() { return make_set(); }
}  // namespace bsx::cpu::update_detail

#else  // built without AVX2 (a non-x86 target)

namespace bsx::cpu::update_detail {
UpdateKernels kernels_avx2() { return UpdateKernels{}; }
}  // namespace bsx::cpu::update_detail

#endif
