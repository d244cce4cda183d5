// AVX-512 build of the optimisers' update kernels (update_kernels.inc). Compiled with
// -mavx512f/vl/bw/dq -mfma; only called when simd_path() is Avx512.
#include "cpu/update.h"

#if defined(__AVX512F__)
#define BSX_UPDATE_SET_NAME "avx512"
#include "cpu/update_kernels.inc"

namespace bsx::cpu::update_detail {
UpdateKernels kernels_avx512() { return make_set(); }
}  // namespace bsx::cpu::update_detail

#else  // built without AVX-512 (a non-x86 target)

namespace bsx::cpu::update_detail {
UpdateKernels kernels_avx512() { return UpdateKernels{}; }
}  // namespace bsx::cpu::update_detail

#endif
