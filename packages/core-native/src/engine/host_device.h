// BSX_HD: a function written once for the host and the CUDA device. Always inlined on the host:
// some CPU code is compiled in one file per SIMD level (cpu/*_avx512.cpp, ...), and an
// out-of-line copy built with AVX-512 flags must never be the one the linker hands to a
// baseline caller.
#pragma once

#if defined(__CUDACC__)
#define BSX_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define BSX_HD inline __attribute__((always_inline))
#else
#define BSX_HD inline
#endif
