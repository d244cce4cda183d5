// Stand-in for CUDA's mma.h (WMMA) in CPU-emulation builds (see ../cuda_emu.h): every lane
// holds a whole fragment (row-major in x[]), so the warp-collective calls are done by each
// lane alone with the same result. Only the shapes the engine uses: m16n16k8, TF32 inputs.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../cuda_emu.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K>
struct frag_shape;
template <int M, int N, int K>
struct frag_shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct frag_shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct frag_shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int rows = frag_shape<Use, M, N, K>::rows;
  static constexpr int cols = frag_shape<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  float x[rows * cols];
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
  for (float& e : f.x) e = v;
}

// A fragment of an input matrix: element (i, j) of the fragment's rows x cols.
template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const float* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  BSX_CHECK_ALIGN16(p);
  for (int i = 0; i < F::rows; ++i)
    for (int j = 0; j < F::cols; ++j)
      f.x[i * F::cols + j] = std::is_same<Layout, row_major>::value ? p[i * ldm + j] : p[j * ldm + i];
}

template <int M, int N, int K, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d,
                     const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
                     const fragment<matrix_b, M, N, K, precision::tf32, LB>& b,
                     const fragment<accumulator, M, N, K, float>& c) {
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; ++k) s += a.x[i * K + k] * b.x[k * N + j];
      out[i * N + j] = s;
    }
  std::memcpy(d.x, out, sizeof out);
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm,
                              layout_t layout) {
  BSX_CHECK_ALIGN16(p);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      if (layout == mem_row_major) {
        p[i * ldm + j] = f.x[i * N + j];
      } else {
        p[j * ldm + i] = f.x[i * N + j];
      }
    }
}

// Round to TF32 (10 mantissa bits), to nearest with ties away from zero (cvt.rna.tf32.f32).
inline float __float_to_tf32(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&v, &u, 4);
  return v;
}

}  // namespace nvcuda::wmma
