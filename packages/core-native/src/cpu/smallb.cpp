// The portable build of the small-batch kernels (smallb_kernels.inc with 4-lane vectors:
// SSE2 on x86-64, the target's own vectors elsewhere) and the choice of kernel set.
#include "cpu/smallb.h"
#include "engine/errors.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cpu/cpu_features.h"

#define BSX_SMALLB_SET_NAME "portable"
#include "cpu/smallb_kernels.inc"

namespace bsx::cpu {

namespace smallb_detail {
SmallBatchKernels kernels_portable() { return make_set(); }
}  // namespace smallb_detail

namespace {

int default_small_batch_max() {
  const char* env = std::getenv("BSX_SMALL_BATCH_MAX");
  if (env == nullptr || *env == '\0') return kSmallBatchDefaultMax;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < 0 || v > kSmallBatchKernelMax)
    throw EnvError("BSX_SMALL_BATCH_MAX=" + std::string(env) +
                             ": expected an integer from 0 to " +
                             std::to_string(kSmallBatchKernelMax));
  return static_cast<int>(v);
}

int g_override = -1;

}  // namespace

int small_batch_max() {
  if (g_override >= 0) return g_override;
  static const int v = default_small_batch_max();
  return v;
}

void set_small_batch_max(int b) {
  if (b > kSmallBatchKernelMax)
    throw std::invalid_argument("set_small_batch_max: at most " +
                                std::to_string(kSmallBatchKernelMax));
  g_override = b < 0 ? -1 : b;
}

const SmallBatchKernels& small_batch_kernels() {
  static const SmallBatchKernels sets[3] = {smallb_detail::kernels_portable(),
                                            smallb_detail::kernels_avx2(),
                                            smallb_detail::kernels_avx512()};
  int i = static_cast<int>(simd_path());
  while (i > 0 && sets[i].forward_rows == nullptr) --i;  // a file built without its ISA
  return sets[i];
}

}  // namespace bsx::cpu
