// The portable build of the optimisers' update kernels (update_kernels.inc, baseline ISA) and
// the choice of the active set.
#include "cpu/update.h"

#include "cpu/cpu_features.h"

#define BSX_UPDATE_SET_NAME "portable"
#include "cpu/update_kernels.inc"

namespace bsx::cpu {

namespace update_detail {
UpdateKernels kernels_portable() { return make_set(); }
}  // namespace update_detail

const UpdateKernels& update_kernels() {
  static const UpdateKernels sets[3] = {update_detail::kernels_portable(), update_detail::kernels_avx2(),
                                        update_detail::kernels_avx512()};
  int i = static_cast<int>(simd_path());
  while (i > 0 && sets[i].apply == nullptr) --i;  // a file built without its ISA
  return sets[i];
}

}  // namespace bsx::cpu
