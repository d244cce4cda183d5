// The CUDA backend of the addon with test/native/cuda_emu.h in place of a GPU: linked with the
// addon's other objects it gives a bsx_native.node whose 'cuda' backend runs on the CPU, so the
// JS parity cases (scripts/gpu-check.mjs, test/cuda_parity.test.ts) can be exercised without a
// GPU. Slow (every CUDA thread is a fiber); one call at a time. Build from packages/core-native
// after `pnpm run build` (which leaves the other objects in build/CMakeFiles/bsx_native.dir):
//
//   o=build/CMakeFiles/bsx_native.dir/src; mkdir -p build/emu-addon &&
//   g++ -std=c++17 -O2 -fPIC -ffp-contract=off -Wno-unknown-pragmas -Isrc
//     -Itest/native/emu_include -c test/native/cuda_emu_addon.cpp -o build/emu-addon/cuda.o &&
//   g++ -shared -o build/emu-addon/bsx_native.node build/emu-addon/cuda.o $o/cpu/*.o
//     $o/engine/*.o $o/napi/*.o -lpthread &&
//   BSX_NATIVE_PATH=build/emu-addon/bsx_native.node node ../../scripts/gpu-check.mjs --filter 7-5-4-3
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
