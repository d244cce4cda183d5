// Single-precision GEMM entry points of the CPU engine, with the epilogues the MLP fuses.
// Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, then the
// epilogue per element. op(A) = A stored [M,K] (lda >= K) or, with transA, A^T where A is
// stored [K,M] (lda >= M). Likewise op(B): B stored [K,N] (ldb >= N) or, with transB, B^T
// where B is stored [N,K] (ldb >= K).
// Reference: the plain loop in gemm_reference.cpp (double accumulation) defines the result.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bsx::cpu {

// Applied to each element of C after alpha*op(A)op(B) + beta*C, in this order:
//   + bias[n]                  (bias != nullptr; one value per column n)
//   * (mask[m*ldm + n] > 0)    (mask != nullptr; the ReLU mask of the backward pass)
//   max(., 0)                  (relu)
// (The mask and the ReLU act as selects: an element whose mask is not > 0, or whose value is
// not > 0 under relu, becomes +0, NaN included. beta == 0 means C is not read at all.)
// A hook on each finished region of C (after the epilogue, on the thread that computed it,
// while the region is still in that core's cache): rows [m, m + rows) x columns
// [n, n + cols), at c with row stride ldc. Regions are disjoint and cover C once. The
// weight-gradient GEMM of a training step uses it to apply the optimiser's update to the
// parameters of each tile of the gradient it has just computed. With a hook and beta == 0,
// C may be left unwritten where the driver hands the hook a scratch copy of the region (its
// contents are the hook's to use; C is only an output then). Not for batched calls.
struct TileHook {
  void (*fn)(const TileHook* self, int m, int n, int rows, int cols, const float* c, std::int64_t ldc);
};

struct Epilogue {
  const float* bias = nullptr;
  const float* mask = nullptr;
  std::int64_t ldm = 0;
  bool relu = false;
  const TileHook* hook = nullptr;
};

// Strides between consecutive problems of a batched call (in floats).
struct BatchStrides {
  std::int64_t a = 0, b = 0, c = 0, bias = 0, mask = 0;
};

// One GEMM. Threads over the engine's pool when the problem is large enough.
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
           std::int64_t ldc, const Epilogue& ep = {});

// `batch` independent GEMMs of the same shape (one per replica), problem i at base + i*stride.
// Threads over problems and/or within problems, whichever keeps all cores busy.
void sgemm_batched(int batch, const BatchStrides& strides, bool transA, bool transB, int M,
                   int N, int K, float alpha, const float* A, std::int64_t lda, const float* B,
                   std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                   const Epilogue& ep = {});

// The plain reference: obvious loops, double accumulation, single thread.
void sgemm_reference(bool transA, bool transB, int M, int N, int K, float alpha,
                     const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                     float beta, float* C, std::int64_t ldc, const Epilogue& ep = {});

// Name of the micro-kernel path in use: "avx512", "avx2" or "portable".
const char* gemm_kernel_name();

}  // namespace bsx::cpu
