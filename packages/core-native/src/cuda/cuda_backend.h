// The CUDA backend as the rest of the engine sees it: compiled in or not, usable or not.
#pragma once
#include <cstddef>
#include <string>

namespace bsx::cuda {

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not, when !available
  std::string name;    // the GPU's name, when available
  int device = -1, sm_major = 0, sm_minor = 0, multiprocessors = 0;
  std::size_t total_memory = 0;
  int runtime_version = 0, driver_version = 0;
};

bool compiled_in();
DeviceInfo probe();  // never throws; cached after the first call

}  // namespace bsx::cuda
