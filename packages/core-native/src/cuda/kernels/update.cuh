// Optimiser updates of the CUDA engine: one launch per tensor over all replicas, and the
// per-replica scalars of a step. The element rules are the optimiser table's
// (engine/optimizers/), shared with the CPU backend and with the fused small-batch backward
// (smallb.cuh); they round every operation on its own (no FMA contraction) in the CPU's
// order, so that equal gradients give bit-equal parameters.
//   kSgd:  the study's plain SGD, p -= lr * g (lr [R]); no state, no scalars.
//   kRule: any optimiser of the table (its Rule type), scalars [R, kMaxScalars] from
//          step_scalars (computed on the device: graph replays keep the step on the device).
// Reference: CpuEnsemble::apply_update (cpu/cpu_ensemble.cpp).
#pragma once
#include "cuda/kernels/common.cuh"
#include "engine/optimizers.h"

namespace bsx::cuda::kernels {

enum UpdateMode : int { kGrad = 0, kSgd = 1, kRule = 2 };

__device__ __forceinline__ float sgd_elem(float p, float g, float lr) {
  return __fsub_rn(p, __fmul_rn(lr, g));
}

// Rule's scalars for the step that makes replica r's step count
// t = steps0[r] + s (+ *dyn_step when given). grid ceil(R/256), block 256.
template <typename Rule>
__global__ void step_scalars(int R, const long long* __restrict__ steps0, long long s,
                             const long long* __restrict__ dyn_step, const float* __restrict__ lr,
                             const double* __restrict__ hyper, float* __restrict__ out) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= R) return;
  const long long t = steps0[r] + s + (dyn_step != nullptr ? *dyn_step : 0);
  float sc[optim::kMaxScalars];
#pragma unroll
  for (int i = 0; i < optim::kMaxScalars; ++i) sc[i] = 0.0f;
  Rule::prepare(hyper + static_cast<long long>(r) * optim::kMaxHyper, static_cast<double>(lr[r]), t, sc);
#pragma unroll
  for (int i = 0; i < optim::kMaxScalars; ++i) out[static_cast<long long>(r) * optim::kMaxScalars + i] = sc[i];
}

// Loads replica r's scalars.
__device__ __forceinline__ void load_scalars(const float* __restrict__ scalars, long long r,
                                             float (&sc)[optim::kMaxScalars]) {
#pragma unroll
  for (int i = 0; i < optim::kMaxScalars; ++i) sc[i] = scalars[r * optim::kMaxScalars + i];
}

// One element through Rule with its state at st[k][i] (state not held: st[0] == nullptr,
// the rule then never reads it: SGD without momentum).
template <typename Rule>
__device__ __forceinline__ void rule_elem(float& p, float g, float* const* st, long long i,
                                          const float (&sc)[optim::kMaxScalars]) {
  constexpr int S = Rule::kStateCount;
  float v[S > 0 ? S : 1];
  const bool held = S > 0 && st[0] != nullptr;
#pragma unroll
  for (int k = 0; k < S; ++k) v[k] = held ? st[k][i] : 0.0f;
  Rule::step(p, g, v, sc);
  if (held) {
#pragma unroll
    for (int k = 0; k < S; ++k) st[k][i] = v[k];
  }
}

struct UpdateArgs {
  float* p = nullptr;        // [R, n]
  const float* g = nullptr;  // [R, n]
  float* state[optim::kMaxState] = {};  // kRule: the optimiser's state tensors [R, n] (or none)
  long long n = 0;           // elements per replica
  const float* lr = nullptr;       // kSgd: [R]
  const float* scalars = nullptr;  // kRule: [R, kMaxScalars]
  int r0 = 0;
};

constexpr int kUpdateThreads = 256;
constexpr int kUpdatePerThread = 4;

// grid (ceil(n / 1024), replicas in this launch), block 256; each thread 4 elements (one
// float4 with VEC: n % 4 == 0 and 16-byte aligned bases).
template <int MODE, bool VEC, typename Rule = optim::Sgd>
__global__ void __launch_bounds__(kUpdateThreads) update_tensor(UpdateArgs a) {
  const long long r = static_cast<long long>(a.r0) + blockIdx.y;
  const long long base = r * a.n;
  const long long i0 = static_cast<long long>(blockIdx.x) * (kUpdateThreads * kUpdatePerThread);
  float lr = 0.0f;
  float sc[optim::kMaxScalars] = {};
  if (MODE == kSgd) lr = a.lr[r];
  if (MODE == kRule) load_scalars(a.scalars, r, sc);
  float* st[optim::kMaxState];
#pragma unroll
  for (int k = 0; k < optim::kMaxState; ++k) st[k] = a.state[k] != nullptr ? a.state[k] + base : nullptr;
  if (VEC) {
    const long long i = i0 + threadIdx.x * 4;
    if (i >= a.n) return;
    float p[4], g[4];
    ld_cols<4>(a.p + base + i, p);
    ldg_cols<4>(a.g + base + i, g);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (MODE == kSgd) {
        p[e] = sgd_elem(p[e], g[e], lr);
      } else {
        rule_elem<Rule>(p[e], g[e], st, i + e, sc);
      }
    }
    st_cols<4>(a.p + base + i, p);
  } else {
#pragma unroll
    for (int j = 0; j < kUpdatePerThread; ++j) {
      const long long i = i0 + threadIdx.x + j * kUpdateThreads;
      if (i >= a.n) break;
      float p = a.p[base + i];
      const float g = __ldg(a.g + base + i);
      if (MODE == kSgd) {
        p = sgd_elem(p, g, lr);
      } else {
        rule_elem<Rule>(p, g, st, i, sc);
      }
      a.p[base + i] = p;
    }
  }
}

}  // namespace bsx::cuda::kernels
