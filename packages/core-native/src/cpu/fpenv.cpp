// FTZ/DAZ for the engine's threads (fpenv.h).
#include "cpu/fpenv.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define BSX_HAVE_MXCSR 1
#endif

namespace bsx::cpu {

namespace {
#if defined(BSX_HAVE_MXCSR)
constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero), bit 6 (denormals are zero)
#endif
}  // namespace

bool flush_denormals_enabled() {
#if defined(BSX_HAVE_MXCSR)
  static const bool on = [] {
    const char* v = std::getenv("BSX_FTZ");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
#else
  return false;
#endif
}

FlushDenormals::FlushDenormals() {
#if defined(BSX_HAVE_MXCSR)
  if (!flush_denormals_enabled()) return;
  saved_ = _mm_getcsr();
  if ((saved_ & kFtzDaz) != kFtzDaz) {
    _mm_setcsr(saved_ | kFtzDaz);
    set_ = true;
  }
#endif
}

FlushDenormals::~FlushDenormals() {
#if defined(BSX_HAVE_MXCSR)
  if (set_) _mm_setcsr(saved_);
#endif
}

void flush_denormals_on_this_thread() {
#if defined(BSX_HAVE_MXCSR)
  if (flush_denormals_enabled()) _mm_setcsr(_mm_getcsr() | kFtzDaz);
#endif
}

}  // namespace bsx::cpu
