// The CUDA backend of the addon with test/native/cuda_emu.h in place of a GPU: linked with the
// addon's other objects it gives a bsx_native.node whose 'cuda' backend runs on the CPU, so the
// JS parity cases (scripts/gpu-check.mjs, test/cuda_parity.test.ts) can be exercised without a
// GPU. Slow (every CUDA thread is a fiber); one call at a time. Built by CMake (target
// cuda_emu_addon, test/native/CMakeLists.txt; it takes the Node-API headers from node_modules,
// so after pnpm install). From packages/core-native:
//
//   cmake -S . -B build/tools -DBSX_BUILD_TOOLS=ON &&
//     cmake --build build/tools --target cuda_emu_addon --parallel 2 &&
//   BSX_NATIVE_PATH=build/tools/cuda_emu_addon.node node ../../scripts/gpu-check.mjs --filter 7-5-4-3
#include "cuda/cuda_ensemble.cu"

namespace bsx::cuda {
bool compiled_in() { return true; }
DeviceInfo probe() {
  DeviceInfo d;
  d.available = true;
  d.device = 0;
  d.name = "cuda_emu (CPU emulation)";
  d.sm_major = 9;
  d.multiprocessors = 8;
  d.total_memory = std::size_t{1} << 30;
  return d;
}
}  // namespace bsx::cuda
