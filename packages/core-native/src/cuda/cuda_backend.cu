// CUDA backend: device discovery. cudart is linked statically, so this code loads and runs
// on a machine with no driver and reports the reason instead of failing.
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "cuda/cuda_backend.h"

namespace bsx::cuda {

namespace {
__global__ void noop_kernel() {}

DeviceInfo probe_uncached() {
  DeviceInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();
    return info;
  }
  if (count == 0) {
    info.reason = "no CUDA device found";
    return info;
  }
  cudaDriverGetVersion(&info.driver_version);
  cudaDeviceProp prop{};
  err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) {
    info.reason = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(err);
    return info;
  }
  // A launch proves the kernels of this build run on this device (architecture match).
  noop_kernel<<<1, 1>>>();
  err = cudaDeviceSynchronize();
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess) {
    info.reason = std::string("kernel launch failed on ") + prop.name + ": " +
                  cudaGetErrorString(err);
    return info;
  }
  info.available = true;
  info.device = 0;
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  return info;
}
}  // namespace

bool compiled_in() { return true; }

DeviceInfo probe() {
  static std::once_flag once;
  static DeviceInfo info;
  std::call_once(once, [] { info = probe_uncached(); });
  return info;
}

}  // namespace bsx::cuda
