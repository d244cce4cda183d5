// Shared device helpers of the CUDA kernels: warp reductions (xor shuffles: every lane gets
// the same, order-fixed result), 16-byte loads and stores, the grid limits.
// Reference: NVIDIA CUDA C++ Programming Guide, "Warp Shuffle Functions".
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

// Test builds (test/native/cuda_emu.h) define this to check 16-byte alignment.
#ifndef BSX_CHECK_ALIGN16
#define BSX_CHECK_ALIGN16(p) ((void)0)
#endif

namespace bsx::cuda::kernels {

constexpr int kWarp = 32;
// gridDim.y and gridDim.z are at most 65535: launches over more replicas go in chunks,
// each kernel adding its chunk's first replica (r0) to blockIdx.y / blockIdx.z.
constexpr int kMaxGridYZ = 65535;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

__device__ __forceinline__ float4 ldg4(const float* p) {
  BSX_CHECK_ALIGN16(p);
  return __ldg(reinterpret_cast<const float4*>(p));
}

__device__ __forceinline__ float4 ld4(const float* p) {
  BSX_CHECK_ALIGN16(p);
  return *reinterpret_cast<const float4*>(p);
}

__device__ __forceinline__ void st4(float* p, float4 v) {
  BSX_CHECK_ALIGN16(p);
  *reinterpret_cast<float4*>(p) = v;
}

// CW consecutive floats (CW = 1, or 4 as one 16-byte access) to or from registers.
template <int CW>
__device__ __forceinline__ void ld_cols(const float* p, float (&v)[CW]) {
  if constexpr (CW == 4) {
    const float4 t = ld4(p);
    v[0] = t.x;
    v[1] = t.y;
    v[2] = t.z;
    v[3] = t.w;
  } else {
    static_assert(CW == 1, "1 or 4 columns");
    v[0] = *p;
  }
}

template <int CW>
__device__ __forceinline__ void ldg_cols(const float* p, float (&v)[CW]) {
  if constexpr (CW == 4) {
    const float4 t = ldg4(p);
    v[0] = t.x;
    v[1] = t.y;
    v[2] = t.z;
    v[3] = t.w;
  } else {
    static_assert(CW == 1, "1 or 4 columns");
    v[0] = __ldg(p);
  }
}

template <int CW>
__device__ __forceinline__ void st_cols(float* p, const float (&v)[CW]) {
  if constexpr (CW == 4) {
    st4(p, make_float4(v[0], v[1], v[2], v[3]));
  } else {
    static_assert(CW == 1, "1 or 4 columns");
    *p = v[0];
  }
}

}  // namespace bsx::cuda::kernels
