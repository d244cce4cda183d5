// The machine's fp32 FMA ceiling, measured: independent register-resident FMA chains on
// every pool thread at once (AVX-512 where the CPU has it, else AVX2, else scalar). The
// GEMM benchmarks report their GFLOP/s against it.
#pragma once
#include <cstdint>

namespace bsx::cpu {

// Runs the FMA chains on all pool threads at once for about `seconds` (clamped to
// [0.01, 10]) and returns the aggregate GFLOP/s (one FMA = 2 flops): the sum over threads of
// each thread's flops per second of its own CPU time, so that other processes sharing the
// machine do not lower the ceiling (wall time where there is no thread CPU clock).
double measure_peak_gflops(double seconds);

namespace peak_detail {
// `iters` rounds of the chains; each round is one FMA per chain. Returns a value derived
// from the accumulators so the work cannot be optimised away.
constexpr int kChainsAvx512 = 16;  // of 32 ZMM registers
constexpr int kChainsAvx2 = 14;    // of 16 YMM registers (two hold the constants)
float fma_chains_avx512(std::int64_t iters, float seed);  // 16 lanes per FMA
float fma_chains_avx2(std::int64_t iters, float seed);    // 8 lanes per FMA
}  // namespace peak_detail

}  // namespace bsx::cpu
