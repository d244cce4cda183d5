// Built when no CUDA compiler was found: the CUDA backend reports why it is missing.
#include "cuda/cuda_backend.h"

namespace bsx::cuda {

bool compiled_in() { return false; }
DeviceInfo probe() {
  DeviceInfo info;
  info.reason = "not compiled in (no CUDA compiler was found when the addon was built)";
  return info;
}

}  // namespace bsx::cuda
