// Optimiser updates of the CUDA engine: the element rules (shared with the fused small-batch
// backward in smallb.cuh) and one launch per tensor over all replicas, lr per replica.
// The rules are written with explicitly rounded operations (__fmul_rn, ...: no FMA
// contraction) in the CPU's order, so that equal gradients give bit-equal parameters.
//   SGD:  p -= lr * g
//   Adam (PyTorch's torch.optim.Adam, no weight decay, not amsgrad):
//     m += (g - m)(1 - b1); v = b2 v + (1 - b2) g g;
//     p -= step_size * m / (sqrt(v) / bc2_sqrt + eps),
//     step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), computed in double per replica.
// Reference: cpu/ops.cpp sgd_update, adam_update.
#pragma once
#include "cuda/kernels/common.cuh"

namespace bsx::cuda::kernels {

enum UpdateMode : int { kGrad = 0, kSgd = 1, kAdam = 2 };

struct AdamConsts {
  float beta2 = 0.999f, eps = 1e-8f;
  float one_m_b1 = 1.0f - 0.9f, one_m_b2 = 1.0f - 0.999f;  // 1 - beta1, 1 - beta2 in float (as the CPU)
};

__device__ __forceinline__ float sgd_elem(float p, float g, float lr) {
  return __fsub_rn(p, __fmul_rn(lr, g));
}

__device__ __forceinline__ void adam_elem(float& p, float& m, float& v, float g, float step_size,
                                          float bc2_sqrt, const AdamConsts& c) {
  m = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), c.one_m_b1));
  v = __fadd_rn(__fmul_rn(v, c.beta2), __fmul_rn(__fmul_rn(c.one_m_b2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), bc2_sqrt), c.eps);
  p = __fsub_rn(p, __fmul_rn(step_size, __fdiv_rn(m, denom)));
}

// Adam's per-replica scalars for the step that makes the optimiser step count
// t = steps0[r] + s (+ *dyn_step when given: graph replays keep the step index on the device).
// grid ceil(R/256), block 256.
__global__ void adam_scalars(int R, const long long* __restrict__ steps0, long long s,
                             const long long* __restrict__ dyn_step, const float* __restrict__ lr,
                             float beta1, float beta2, float* __restrict__ step_size,
                             float* __restrict__ bc2_sqrt) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= R) return;
  const long long ts = steps0[r] + s + (dyn_step != nullptr ? *dyn_step : 0);
  const double t = static_cast<double>(ts);
  const double bc1 = 1.0 - pow(static_cast<double>(beta1), t);
  const double bc2 = 1.0 - pow(static_cast<double>(beta2), t);
  step_size[r] = static_cast<float>(static_cast<double>(lr[r]) / bc1);
  bc2_sqrt[r] = static_cast<float>(sqrt(bc2));
}

struct UpdateArgs {
  float* p = nullptr;        // [R, n]
  const float* g = nullptr;  // [R, n]
  float* m = nullptr;        // Adam: [R, n]
  float* v = nullptr;
  long long n = 0;           // elements per replica
  const float* lr = nullptr;         // SGD: [R]
  const float* step_size = nullptr;  // Adam: [R]
  const float* bc2_sqrt = nullptr;   // Adam: [R]
  AdamConsts adam;
  int r0 = 0;
};

constexpr int kUpdateThreads = 256;
constexpr int kUpdatePerThread = 4;

// grid (ceil(n / 1024), replicas in this launch), block 256; each thread 4 elements (one
// float4 with VEC: n % 4 == 0 and 16-byte aligned bases).
template <int MODE, bool VEC>
__global__ void __launch_bounds__(kUpdateThreads) update_tensor(UpdateArgs a) {
  const long long r = static_cast<long long>(a.r0) + blockIdx.y;
  const long long base = r * a.n;
  const long long i0 = static_cast<long long>(blockIdx.x) * (kUpdateThreads * kUpdatePerThread);
  float lr = 0.0f, ss = 0.0f, bc2s = 1.0f;
  if (MODE == kSgd) lr = a.lr[r];
  if (MODE == kAdam) {
    ss = a.step_size[r];
    bc2s = a.bc2_sqrt[r];
  }
  if (VEC) {
    const long long i = i0 + threadIdx.x * 4;
    if (i >= a.n) return;
    float p[4], g[4];
    ld_cols<4>(a.p + base + i, p);
    ldg_cols<4>(a.g + base + i, g);
    if (MODE == kSgd) {
#pragma unroll
      for (int e = 0; e < 4; ++e) p[e] = sgd_elem(p[e], g[e], lr);
    } else {
      float m[4], v[4];
      ld_cols<4>(a.m + base + i, m);
      ld_cols<4>(a.v + base + i, v);
#pragma unroll
      for (int e = 0; e < 4; ++e) adam_elem(p[e], m[e], v[e], g[e], ss, bc2s, a.adam);
      st_cols<4>(a.m + base + i, m);
      st_cols<4>(a.v + base + i, v);
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
        float m = a.m[base + i], v = a.v[base + i];
        adam_elem(p, m, v, g, ss, bc2s, a.adam);
        a.m[base + i] = m;
        a.v[base + i] = v;
      }
      a.p[base + i] = p;
    }
  }
}

}  // namespace bsx::cuda::kernels
