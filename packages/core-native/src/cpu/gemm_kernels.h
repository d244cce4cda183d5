// Internal interface between the GEMM driver (gemm.cpp, baseline ISA) and the per-ISA kernel
// files (gemm_avx512.cpp, gemm_avx2.cpp, the portable set in gemm.cpp). Only plain types and
// function pointers cross it: no inline code or templates are shared, so nothing compiled
// with AVX flags can be picked by the linker for a baseline caller.
// Reference: the BLIS micro-kernel / packing interface (Van Zee & van de Geijn, "BLIS: A
// Framework for Rapidly Instantiating BLAS Functionality", TOMS 2015).
#pragma once
#include <cstdint>

#include "cpu/gemm.h"

namespace bsx::cpu::gemm_detail {

// The epilogue of one tile, offsets already applied (bias -> column n0, mask -> (m0, n0)).
// (No default member initializers here or in KernelSet: they stay trivial types, so no
// implicit inline constructor can be emitted from an AVX-compiled file.)
struct TileEpilogue {
  const float* bias;
  const float* mask;
  std::int64_t ldm;
  bool relu;
};

// Micro-kernel: for the mv x nv tile at C (mv <= mr, nv <= nr),
//   C = alpha * (opA * Bp) + beta * C      (beta == 0: C is not read)
// then the epilogue `ep` when non-null. Bp: kc steps of nr floats (packed op(B), zero-padded
// to nr). opA(i, k) = A[i*rsa + k*csa] for i < mr, k < kc, in one of two forms:
//   rsa == 1: the mr values of a k step are consecutive (a packed micro-panel, csa = mr,
//             or op(A) = A^T read in place); all mr rows must be readable;
//   csa == 1: rows of A read in place (op(A) = A); only rows i < mv are read.
using MicroKernel = void (*)(int kc, const float* A, std::int64_t rsa, std::int64_t csa,
                             const float* Bp, float* C, std::int64_t ldc, int mv, int nv,
                             float alpha, float beta, const TileEpilogue* ep);

// Pack rows [0, mc) x k [0, kc) of op(A) (A already offset to (m0, k0) in op(A) coordinates)
// into ceil(mc/mr) micro-panels of kc*mr floats, zero-padding the last one.
using PackA = void (*)(bool transA, const float* A, std::int64_t lda, int mc, int kc, float* Ap);
// Pack k [0, kc) x columns [0, nc) of op(B) into ceil(nc/nr) micro-panels of kc*nr floats.
using PackB = void (*)(bool transB, const float* B, std::int64_t ldb, int kc, int nc, float* Bp);

// Unpacked kernel for small problems (one of M or K small), over the C region
// rows [m0, m1) x columns [n0, n1), full K, beta and the epilogue applied:
//   op(A)(m,k) = A[m*rsa + k*csa], op(B)(k,n) = B[k*ldb + n]   (B not transposed).
// Streams B once per 8 rows (small M); streams C once (small K).
using DirectKernel = void (*)(int m0, int m1, int n0, int n1, int K, float alpha, const float* A,
                              std::int64_t rsa, std::int64_t csa, const float* B,
                              std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                              const Epilogue& ep);

// Dot-product kernel for small M with transposed B (the forward pass at small batch):
//   C(m,n) = alpha * sum_k A[m*lda + k] * B[n*ldb + k] + beta*C, epilogue, over rows [0, M)
// (M <= 8) and columns [n0, n1). Streams each row of B once.
using DotKernel = void (*)(int M, int n0, int n1, int K, float alpha, const float* A,
                           std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                           float* C, std::int64_t ldc, const Epilogue& ep);

struct KernelSet {
  const char* name;
  int mr, nr;
  MicroKernel kernel;
  PackA pack_a;
  PackB pack_b;
  DirectKernel direct;
  DotKernel dot;
};

// Each returns a set with kernel == nullptr when the file was built without its ISA.
KernelSet kernels_avx512();
KernelSet kernels_avx2();
KernelSet kernels_portable();

// Cache blocking of the packed path (the kernel lab tunes them; 0 = default).
struct Blocking {
  int kc = 0;   // K block (the A micro-panel, mr*kc, stays in L1)
  int nc = 0;   // columns of packed B per block, kept in the core's L2 (kc*nc floats)
  int l2 = 0;   // bytes of L2 given to the packed B block when nc is 0
  int direct_m = 0;  // largest M sent to the direct kernel (B not transposed)
  int dot_m = 0;     // largest M sent to the dot kernel (B transposed)
  int pieces = 0;    // pieces of C per thread in the threaded paths
};
void set_blocking(const Blocking& b);
Blocking blocking();

// The driver's choice of algorithm for a shape (for the kernel lab's report).
const char* gemm_algorithm(bool transA, bool transB, int M, int N, int K);

}  // namespace bsx::cpu::gemm_detail
