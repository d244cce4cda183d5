// CPU feature detection (CPUID, once) and the choice of SIMD path for the kernels.
#pragma once
#include <string>

namespace bsx::cpu {

struct CpuFeatures {
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512vl = false, avx512bw = false, avx512dq = false;
  bool os_avx = false, os_avx512 = false;  // the OS saves the YMM / ZMM state (XGETBV)
  std::string vendor, brand;
};

enum class SimdPath { Portable = 0, Avx2 = 1, Avx512 = 2 };

const CpuFeatures& cpu_features();

// The best path this CPU supports, lowered by the environment variable BSX_SIMD
// (portable | avx2 | avx512) when set; a request above what the CPU has is an error.
SimdPath simd_path();
// Force a path at run time (tests use it to cover every path); throws std::runtime_error
// when the CPU cannot run it.
void set_simd_path(SimdPath p);
const char* simd_path_name(SimdPath p);
// Whether this CPU (and OS) can run path p.
bool simd_path_supported(SimdPath p);

}  // namespace bsx::cpu
