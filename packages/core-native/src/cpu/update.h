// The optimisers' element rules (engine/optimizers/) over runs of consecutive parameters, on
// the CPU: one source (update_kernels.inc) compiled per SIMD level, the active level's set
// chosen at run time like the GEMM's; only function pointers cross this interface.
#pragma once
#include <cstdint>

#include "engine/optimizers.h"

namespace bsx::cpu {

struct UpdateKernels {
  const char* name;
  // p[i], state[k][i] (k < the rule's state count; `held` false: no state is held and the rule
  // must not need it, e.g. SGD without momentum) updated from g[i], i < n, with one
  // replica's step scalars (Ensemble::step_scalars).
  void (*apply)(optim::Kind kind, float* p, const float* g, float* const* state, bool held,
                std::int64_t n, const float* scalars);
  // The same over a rows x cols region: element (i, j) at p[i*ldp + j], g[i*ldg + j],
  // state[k][i*ldp + j] (the weight-gradient GEMM hands its tiles to this).
  void (*apply_2d)(optim::Kind kind, float* p, std::int64_t ldp, const float* g, std::int64_t ldg,
                   float* const* state, bool held, int rows, int cols, const float* scalars);
};

// The kernels of the active SIMD path (simd_path()).
const UpdateKernels& update_kernels();

namespace update_detail {
// Each returns a set with null functions when its file was built without the ISA.
UpdateKernels kernels_avx512();
UpdateKernels kernels_avx2();
UpdateKernels kernels_portable();
}  // namespace update_detail

}  // namespace bsx::cpu
