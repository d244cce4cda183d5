// The fp32 FMA ceiling of the machine (peak.h): calibrates a round count on one thread, then
// runs register-resident FMA chains on every pool thread at once. Each thread's rate is its
// flops over its own CPU time (where the OS provides it), and the rates are summed: time the
// OS gives to other processes on a shared machine does not lower the ceiling. Without a
// thread CPU clock the total is divided by the wall time of the parallel region.
// Reference: the usual peak-FLOPS microbenchmark pattern (independent FMA chains, enough of
// them to cover latency x throughput).
#include "cpu/peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <time.h>
#endif

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"

namespace bsx::cpu {
namespace {

using Clock = std::chrono::steady_clock;

// This thread's CPU time in seconds, or a negative value when there is no such clock.
double thread_cpu_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
#endif
  return -1.0;
}

float scalar_chains(std::int64_t iters, float seed) {
  float acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = seed + static_cast<float>(i);
  for (std::int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * 0.999999f + 1e-6f;
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

}  // namespace

double measure_peak_gflops(double seconds) {
  seconds = std::min(10.0, std::max(0.01, seconds));
  float (*fn)(std::int64_t, float) = &scalar_chains;
  double flops_per_iter = 8 * 2;
  if (simd_path_supported(SimdPath::Avx512)) {
    fn = &peak_detail::fma_chains_avx512;
    flops_per_iter = peak_detail::kChainsAvx512 * 16 * 2;
  } else if (simd_path_supported(SimdPath::Avx2)) {
    fn = &peak_detail::fma_chains_avx2;
    flops_per_iter = peak_detail::kChainsAvx2 * 8 * 2;
  }

  // Calibrate: rounds per second on this thread (also wakes the core up).
  std::atomic<float> sink{0.0f};
  std::int64_t iters = 1 << 14;
  double rate = 0;
  for (;;) {
    const auto t0 = Clock::now();
    sink = sink + fn(iters, 1.0f);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt > 0.02 || iters > (std::int64_t{1} << 40)) {
      rate = static_cast<double>(iters) / dt;
      break;
    }
    iters *= 4;
  }
  // Slices of about 10 ms; each thread runs slices until the time is up.
  const std::int64_t slice = std::max<std::int64_t>(1024, static_cast<std::int64_t>(rate * 0.01));
  const int T = num_threads();
  std::vector<std::int64_t> done(static_cast<std::size_t>(T), 0);
  std::vector<double> cpu(static_cast<std::size_t>(T), -1.0);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  parallel_for(T, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t t = b; t < e; ++t) {
      const double c0 = thread_cpu_seconds();
      std::int64_t n = 0;
      float s = 0;
      do {
        s += fn(slice, 1.0f + static_cast<float>(t));
        n += slice;
      } while (Clock::now() < deadline);
      const double c1 = thread_cpu_seconds();
      done[static_cast<std::size_t>(t)] = n;
      if (c0 >= 0 && c1 > c0) cpu[static_cast<std::size_t>(t)] = c1 - c0;
      sink = sink + s;
    }
  });
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  double by_wall = 0, by_cpu = 0;
  bool have_cpu = true;
  for (std::size_t t = 0; t < done.size(); ++t) {
    const double flops = static_cast<double>(done[t]) * flops_per_iter;
    by_wall += flops / wall;
    if (cpu[t] > 0) {
      by_cpu += flops / cpu[t];
    } else {
      have_cpu = false;
    }
  }
  return (have_cpu ? std::max(by_cpu, by_wall) : by_wall) * 1e-9;
}

}  // namespace bsx::cpu
