// CPU feature detection (CPUID leaves 0, 1, 7 and the brand string, XGETBV for the OS-saved
// register state) and the process-wide choice of SIMD path, lowered by BSX_SIMD.
// Reference: Intel SDM vol. 2A "CPUID" and vol. 1 §13 (XSAVE-managed state / XCR0);
// AMD APM vol. 3 "CPUID".
#include "cpu/cpu_features.h"
#include "engine/errors.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define BSX_CPU_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace bsx::cpu {
namespace {

#if defined(BSX_CPU_X86)
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) r[i] = static_cast<unsigned>(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

unsigned long long xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned lo = 0, hi = 0;
  // Encoded as bytes so the baseline build needs no -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(BSX_CPU_X86)
  unsigned r[4] = {0, 0, 0, 0};
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  char vendor[13];
  std::memcpy(vendor + 0, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  vendor[12] = '\0';
  f.vendor = vendor;

  bool osxsave = false;
  if (max_leaf >= 1) {
    cpuid(1, 0, r);
    f.sse42 = (r[2] >> 20) & 1;
    f.fma = (r[2] >> 12) & 1;
    osxsave = (r[2] >> 27) & 1;
    f.avx = (r[2] >> 28) & 1;
    f.f16c = (r[2] >> 29) & 1;
  }
  if (osxsave) {
    const unsigned long long xcr0 = xgetbv0();
    f.os_avx = (xcr0 & 0x6) == 0x6;        // XMM and YMM state
    f.os_avx512 = (xcr0 & 0xE6) == 0xE6;   // plus opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    f.avx2 = (r[1] >> 5) & 1;
    f.avx512f = (r[1] >> 16) & 1;
    f.avx512dq = (r[1] >> 17) & 1;
    f.avx512bw = (r[1] >> 30) & 1;
    f.avx512vl = (r[1] >> 31) & 1;
  }
  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49];
    for (unsigned i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    brand[48] = '\0';
    std::string b = brand;
    const auto first = b.find_first_not_of(' ');
    const auto last = b.find_last_not_of(' ');
    f.brand = first == std::string::npos ? std::string() : b.substr(first, last - first + 1);
  }
#endif
  return f;
}

}  // namespace

bool simd_path_supported(SimdPath p) {
  const CpuFeatures& f = cpu_features();
  switch (p) {
    case SimdPath::Portable:
      return true;
    case SimdPath::Avx2:
      return f.os_avx && f.avx && f.avx2 && f.fma;
    case SimdPath::Avx512:
      return f.os_avx && f.os_avx512 && f.avx2 && f.fma && f.avx512f && f.avx512vl &&
             f.avx512bw && f.avx512dq;
  }
  return false;
}

namespace {

bool supported(SimdPath p) { return simd_path_supported(p); }

SimdPath best_supported() {
#if defined(BSX_CPU_X86)
  if (supported(SimdPath::Avx512)) return SimdPath::Avx512;
  if (supported(SimdPath::Avx2)) return SimdPath::Avx2;
#endif
  return SimdPath::Portable;
}

// -1: not chosen yet (read BSX_SIMD on first use).
std::atomic<int> g_path{-1};

SimdPath path_from_env() {
  const SimdPath best = best_supported();
  const char* env = std::getenv("BSX_SIMD");
  if (env == nullptr || *env == '\0') return best;
  std::string v;
  for (const char* p = env; *p; ++p) v += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
  SimdPath want;
  if (v == "portable" || v == "scalar") {
    want = SimdPath::Portable;
  } else if (v == "avx2") {
    want = SimdPath::Avx2;
  } else if (v == "avx512") {
    want = SimdPath::Avx512;
  } else {
    throw EnvError("BSX_SIMD=" + std::string(env) +
                             ": unknown SIMD path (expected portable, avx2 or avx512)");
  }
  if (!supported(want)) {
    throw EnvError("BSX_SIMD=" + std::string(env) + ": this CPU cannot run the " +
                             simd_path_name(want) + " path (best available: " +
                             simd_path_name(best) + ")");
  }
  return want;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

SimdPath simd_path() {
  int p = g_path.load(std::memory_order_relaxed);
  if (p < 0) {
    const SimdPath chosen = path_from_env();  // throws on a bad BSX_SIMD, every call
    int expected = -1;
    g_path.compare_exchange_strong(expected, static_cast<int>(chosen));
    p = g_path.load(std::memory_order_relaxed);
  }
  return static_cast<SimdPath>(p);
}

void set_simd_path(SimdPath p) {
  if (p != SimdPath::Portable && p != SimdPath::Avx2 && p != SimdPath::Avx512)
    throw std::runtime_error("set_simd_path: unknown SIMD path");
  if (!supported(p)) {
    throw std::runtime_error(std::string("set_simd_path: this CPU cannot run the ") +
                             simd_path_name(p) + " path");
  }
  g_path.store(static_cast<int>(p), std::memory_order_relaxed);
}

const char* simd_path_name(SimdPath p) {
  switch (p) {
    case SimdPath::Portable:
      return "portable";
    case SimdPath::Avx2:
      return "avx2";
    case SimdPath::Avx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace bsx::cpu
