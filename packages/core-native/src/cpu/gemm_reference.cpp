// The reference GEMM: the obvious triple loop, products accumulated in double, one thread.
// It defines what sgemm computes (gemm.h), epilogue included; tests and the kernel lab
// (test/native/gemm_bench.cpp) compare the fast paths against it.
// Reference: the BLAS sgemm definition (netlib reference BLAS), row-major.
#include "cpu/gemm.h"

namespace bsx::cpu {

void sgemm_reference(bool transA, bool transB, int M, int N, int K, float alpha,
                     const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                     float beta, float* C, std::int64_t ldc, const Epilogue& ep) {
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int k = 0; k < K; ++k) {
        const float a = transA ? A[static_cast<std::int64_t>(k) * lda + m]
                               : A[static_cast<std::int64_t>(m) * lda + k];
        const float b = transB ? B[static_cast<std::int64_t>(n) * ldb + k]
                               : B[static_cast<std::int64_t>(k) * ldb + n];
        acc += static_cast<double>(a) * static_cast<double>(b);
      }
      float* c = C + static_cast<std::int64_t>(m) * ldc + n;
      double v = static_cast<double>(alpha) * acc;
      // beta == 0: C is output only (its old contents, NaN included, are ignored).
      if (beta != 0.0f) v += static_cast<double>(beta) * static_cast<double>(*c);
      if (ep.bias != nullptr) v += static_cast<double>(ep.bias[n]);
      if (ep.mask != nullptr && !(ep.mask[static_cast<std::int64_t>(m) * ep.ldm + n] > 0.0f))
        v = 0.0;
      if (ep.relu && !(v > 0.0)) v = 0.0;
      *c = static_cast<float>(v);
    }
  }
}

}  // namespace bsx::cpu
