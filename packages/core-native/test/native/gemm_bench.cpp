// The GEMM kernel lab: checks sgemm against sgemm_reference on every SIMD path (all four
// transpose combinations, epilogues, edge shapes, batched calls, 1 vs N threads bit-exact),
// then times the MLP's shapes per path and thread count against the measured FMA peak.
// Dev tooling, not part of the addon. Built by CMake (target gemm_bench,
// test/native/CMakeLists.txt) with the addon's flags; from packages/core-native:
//
//   cmake -S . -B build/tools -DBSX_BUILD_TOOLS=ON &&
//     cmake --build build/tools --target gemm_bench --parallel 2
//   build/tools/gemm_bench [--check-only|--bench-only] [--path avx512|avx2|portable]
//                          [--threads N] [--quick] [--shape M,N,K,ta,tb]...
//   (BSX_KC / BSX_NC / BSX_L2 override the cache blocking, BSX_DIRECT_M / BSX_DOT_M the
//   largest M of the direct and dot kernels; BENCH_CPUTIME=1 times one
//   thread by its CPU time and BENCH_MIN=1 reports the fastest single call, both for a
//   busy machine.)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <time.h>

#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include "cpu/peak.h"
#include "cpu/thread_pool.h"

using namespace bsx::cpu;

namespace {

struct Shape {
  int M, N, K;
  bool ta, tb;
  const char* what;
};

std::vector<float> randv(std::size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

int g_fail = 0;
int g_checks = 0;

// Compares sgemm (current path/threads) with the reference on one configuration.
bool check_one(const Shape& s, float alpha, float beta, bool bias, bool mask, bool relu,
               std::mt19937& rng, int pad = 0) {
  const std::int64_t lda = (s.ta ? s.M : s.K) + pad;
  const std::int64_t ldb = (s.tb ? s.K : s.N) + pad;
  const std::int64_t ldc = s.N + pad;
  const std::int64_t ldm = s.N + 2 * pad;
  auto A = randv(static_cast<std::size_t>((s.ta ? s.K : s.M) * lda), rng);
  auto B = randv(static_cast<std::size_t>((s.tb ? s.N : s.K) * ldb), rng);
  auto C0 = randv(static_cast<std::size_t>(s.M * ldc), rng);
  if (beta == 0.0f) std::fill(C0.begin(), C0.end(), std::nanf(""));
  auto bv = randv(static_cast<std::size_t>(s.N), rng);
  auto mv = randv(static_cast<std::size_t>(s.M * ldm), rng);
  Epilogue ep;
  if (bias) ep.bias = bv.data();
  if (mask) {
    ep.mask = mv.data();
    ep.ldm = ldm;
  }
  ep.relu = relu;
  auto C = C0, R = C0;
  sgemm(s.ta, s.tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, ep);
  sgemm_reference(s.ta, s.tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(),
                  ldc, ep);
  ++g_checks;
  const double tol = 1e-5 * std::sqrt(static_cast<double>(std::max(s.K, 1)));
  for (int m = 0; m < s.M; ++m) {
    for (std::int64_t n = 0; n < ldc; ++n) {
      const float c = C[m * ldc + n], r = R[m * ldc + n];
      bool ok;
      if (n >= s.N) {
        ok = std::memcmp(&c, &C0[m * ldc + n], 4) == 0;  // padding untouched
      } else {
        ok = std::isfinite(c) && std::fabs(c - r) <= tol * (2.0 + std::fabs(r));
      }
      if (!ok) {
        std::printf("  FAIL %s M=%d N=%d K=%d ta=%d tb=%d a=%g b=%g bias=%d mask=%d relu=%d pad=%d"
                    " at (%d,%lld): %g vs ref %g\n",
                    gemm_kernel_name(), s.M, s.N, s.K, s.ta, s.tb, alpha, beta, bias, mask, relu,
                    pad, m, static_cast<long long>(n), c, r);
        ++g_fail;
        return false;
      }
    }
  }
  return true;
}

bool check_batched(const Shape& s, int batch, std::mt19937& rng) {
  const std::int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  BatchStrides st;
  st.a = (s.ta ? s.K : s.M) * lda + 3;
  st.b = (s.tb ? s.N : s.K) * ldb + 5;
  st.c = s.M * ldc + 7;
  st.bias = s.N + 1;
  st.mask = s.M * ldc + 2;
  auto A = randv(static_cast<std::size_t>(st.a * batch), rng);
  auto B = randv(static_cast<std::size_t>(st.b * batch), rng);
  auto C = randv(static_cast<std::size_t>(st.c * batch), rng);
  auto bv = randv(static_cast<std::size_t>(st.bias * batch), rng);
  auto mv = randv(static_cast<std::size_t>(st.mask * batch), rng);
  auto R = C;
  Epilogue ep;
  ep.bias = bv.data();
  ep.mask = mv.data();
  ep.ldm = ldc;
  ep.relu = true;
  sgemm_batched(batch, st, s.ta, s.tb, s.M, s.N, s.K, 0.5f, A.data(), lda, B.data(), ldb, 0.25f,
                C.data(), ldc, ep);
  // The batched call must equal one sgemm per problem, bit for bit.
  for (int i = 0; i < batch; ++i) {
    Epilogue e = ep;
    e.bias += i * st.bias;
    e.mask += i * st.mask;
    sgemm(s.ta, s.tb, s.M, s.N, s.K, 0.5f, A.data() + i * st.a, lda, B.data() + i * st.b, ldb,
          0.25f, R.data() + i * st.c, ldc, e);
  }
  ++g_checks;
  if (std::memcmp(C.data(), R.data(), C.size() * 4) != 0) {
    std::printf("  FAIL batched %s batch=%d M=%d N=%d K=%d ta=%d tb=%d differs from per-problem\n",
                gemm_kernel_name(), batch, s.M, s.N, s.K, s.ta, s.tb);
    ++g_fail;
    return false;
  }
  return true;
}

bool check_threads(const Shape& s, std::mt19937& rng) {
  const int T = num_threads();
  const std::int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  auto A = randv(static_cast<std::size_t>((s.ta ? s.K : s.M) * lda), rng);
  auto B = randv(static_cast<std::size_t>((s.tb ? s.N : s.K) * ldb), rng);
  auto C1 = randv(static_cast<std::size_t>(s.M * ldc), rng);
  auto C2 = C1;
  set_num_threads(1);
  sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.5f, C1.data(), ldc);
  set_num_threads(std::max(T, 2));
  sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.5f, C2.data(), ldc);
  set_num_threads(T);
  ++g_checks;
  if (std::memcmp(C1.data(), C2.data(), C1.size() * 4) != 0) {
    std::printf("  FAIL determinism %s M=%d N=%d K=%d ta=%d tb=%d: 1 vs %d threads differ\n",
                gemm_kernel_name(), s.M, s.N, s.K, s.ta, s.tb, std::max(T, 2));
    ++g_fail;
    return false;
  }
  return true;
}

void run_checks(bool quick) {
  std::mt19937 rng(42);
  const int dims_full[] = {1, 2, 3, 7, 8, 10, 15, 16, 17, 31, 33, 64, 100};
  const int dims_quick[] = {1, 3, 8, 17, 33, 100};
  const int* dims = quick ? dims_quick : dims_full;
  const int nd = quick ? 6 : 13;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int i = 0; i < nd; ++i)
      for (int j = 0; j < nd; ++j)
        for (int k = 0; k < nd; ++k)
          check_one({dims[i], dims[j], dims[k], ta, tb, ""}, 1.0f, 0.0f, false, false, false, rng);
    // Epilogues, alpha/beta, padded leading dimensions.
    const Shape es[] = {{5, 37, 19, ta, tb, ""}, {33, 70, 300, ta, tb, ""},
                        {8, 100, 64, ta, tb, ""}, {64, 65, 7, ta, tb, ""}};
    for (const Shape& s : es) {
      for (int e = 0; e < 8; ++e)
        check_one(s, 0.75f, e % 3 == 0 ? 0.0f : -1.5f, e & 1, e & 2, e & 4, rng, e % 2 ? 3 : 0);
    }
    // Blocking edges at scale.
    const Shape big[] = {{1025, 33, 17, ta, tb, ""}, {17, 1025, 784, ta, tb, ""},
                         {100, 784, 1025, ta, tb, ""}, {256, 1024, 784, ta, tb, ""}};
    for (const Shape& s : big) check_one(s, 1.0f, 1.0f, true, false, true, rng);
    // Batched equals per-problem; threads do not change bits.
    check_batched({3, 40, 20, ta, tb, ""}, 5, rng);
    check_batched({64, 100, 70, ta, tb, ""}, 3, rng);
    const Shape th[] = {{1, 1024, 784, ta, tb, ""}, {8, 784, 1024, ta, tb, ""},
                        {256, 1024, 784, ta, tb, ""}, {1024, 784, 5, ta, tb, ""},
                        {1000, 10, 1024, ta, tb, ""}, {40, 1000, 300, ta, tb, ""}};
    for (const Shape& s : th) check_threads(s, rng);
  }
}

// ---------------------------------------------------------------------------------------
// Wall time; with BENCH_CPUTIME=1 the calling thread's CPU time instead (meaningful for
// one thread only: it ignores time the OS gives to other processes on a busy machine).
double now() {
  static const bool cpu = std::getenv("BENCH_CPUTIME") != nullptr;
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One thread's FMA peak timed with now() (so BENCH_CPUTIME applies).
double peak_one_thread() {
  const bool z = simd_path_supported(SimdPath::Avx512);
  const std::int64_t iters = 20000000;
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    const double t0 = now();
    volatile float sink = z ? peak_detail::fma_chains_avx512(iters, 1.0f)
                            : peak_detail::fma_chains_avx2(iters, 1.0f);
    (void)sink;
    const double dt = now() - t0;
    const double fl = static_cast<double>(iters) * 2 *
                      (z ? peak_detail::kChainsAvx512 * 16 : peak_detail::kChainsAvx2 * 8);
    best = std::max(best, fl / dt * 1e-9);
  }
  return best;
}

// GFLOP/s of one shape (best of 3 timed batches of >= 0.15 s each).
double time_shape(const Shape& s, std::mt19937& rng, int batch = 1) {
  const std::int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  const std::int64_t sa = (s.ta ? s.K : s.M) * lda, sb = (s.tb ? s.N : s.K) * ldb, sc = s.M * ldc;
  auto A = randv(static_cast<std::size_t>(sa * batch), rng);
  auto B = randv(static_cast<std::size_t>(sb * batch), rng);
  auto C = randv(static_cast<std::size_t>(sc * batch), rng);
  auto bias = randv(static_cast<std::size_t>(s.N * batch), rng);
  Epilogue ep;
  ep.bias = bias.data();
  ep.relu = true;
  BatchStrides st;
  st.a = sa;
  st.b = sb;
  st.c = sc;
  st.bias = s.N;
  auto run = [&] {
    if (batch == 1) {
      sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc, ep);
    } else {
      sgemm_batched(batch, st, s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb,
                    0.0f, C.data(), ldc, ep);
    }
  };
  run();
  double t0 = now();
  int reps = 0;
  while (now() - t0 < 0.05) {
    run();
    ++reps;
  }
  const double per = (now() - t0) / reps;
  double best = 1e30;
  if (std::getenv("BENCH_MIN") != nullptr) {
    // The fastest single call over ~0.4 s (BENCH_MIN_SECONDS): robust to other load.
    const char* w = std::getenv("BENCH_MIN_SECONDS");
    const double end = now() + (w != nullptr ? std::atof(w) : 0.4);
    do {
      const double t1 = now();
      run();
      best = std::min(best, now() - t1);
    } while (now() < end);
  } else {
    const int n = std::max(1, static_cast<int>(0.15 / per));
    for (int r = 0; r < 3; ++r) {
      t0 = now();
      for (int i = 0; i < n; ++i) run();
      best = std::min(best, (now() - t0) / n);
    }
  }
  return 2.0 * s.M * s.N * s.K * batch / best * 1e-9;
}

void run_bench(bool quick, const std::vector<Shape>& only, int threads_only) {
  std::mt19937 rng(7);
  std::vector<Shape> shapes = only;
  if (shapes.empty()) {
    // The MLP 784-1024-1024-10 per replica at batch b: forward (NT, C = X W^T),
    // backward data (NN, dX = dY W), weight gradient (TN, dW = dY^T X).
    for (int b : {1024, 256, 64}) {
      shapes.push_back({b, 1024, 784, false, true, "fwd L1"});
      shapes.push_back({b, 1024, 1024, false, true, "fwd L2"});
      shapes.push_back({b, 10, 1024, false, true, "fwd L3"});
      shapes.push_back({b, 784, 1024, false, false, "bwd-data L1"});
      shapes.push_back({b, 1024, 10, false, false, "bwd-data L3"});
      shapes.push_back({1024, 784, b, true, false, "wgrad L1"});
      shapes.push_back({10, 1024, b, true, false, "wgrad L3"});
    }
    for (int b : {16, 8, 4, 1}) {
      shapes.push_back({b, 1024, 784, false, true, "fwd L1"});
      shapes.push_back({b, 784, 1024, false, false, "bwd-data L1"});
      shapes.push_back({1024, 784, b, true, false, "wgrad L1"});
    }
    shapes.push_back({1024, 1024, 1024, false, false, "square NN"});
  }
  const int T = num_threads();
  std::vector<int> threads;
  if (threads_only > 0) {
    threads.push_back(threads_only);
  } else {
    threads.push_back(1);
    if (T > 1) threads.push_back(T);
  }
  std::vector<double> peak(threads.size());
  for (std::size_t i = 0; i < threads.size(); ++i) {
    set_num_threads(threads[i]);
    peak[i] = threads[i] == 1 ? std::max(peak_one_thread(), measure_peak_gflops(0.3))
                              : measure_peak_gflops(quick ? 0.3 : 1.0);
    std::printf("measured fp32 FMA peak, %d thread(s): %.1f GFLOP/s\n", threads[i], peak[i]);
  }
  set_num_threads(T);

  std::vector<SimdPath> paths;
  for (SimdPath p : {SimdPath::Avx512, SimdPath::Avx2, SimdPath::Portable})
    if (simd_path_supported(p)) paths.push_back(p);
  const char* path_env = std::getenv("BENCH_PATH");
  for (SimdPath p : paths) {
    if (path_env != nullptr && std::strcmp(path_env, simd_path_name(p)) != 0) continue;
    set_simd_path(p);
    std::printf("\n== path %s ==\n", simd_path_name(p));
    std::printf("%-13s %5s %5s %5s %2s%2s %-7s", "shape", "M", "N", "K", "tA", "tB", "algo");
    for (int t : threads) std::printf("  %2dT GF/s  %%peak", t);
    std::printf("\n");
    for (const Shape& s : shapes) {
      if (p == SimdPath::Portable && static_cast<double>(s.M) * s.N * s.K > 3e8 && quick) continue;
      std::printf("%-13s %5d %5d %5d %2d%2d %-7s", s.what, s.M, s.N, s.K, s.ta, s.tb,
                  gemm_detail::gemm_algorithm(s.ta, s.tb, s.M, s.N, s.K));
      for (std::size_t i = 0; i < threads.size(); ++i) {
        set_num_threads(threads[i]);
        const double g = time_shape(s, rng);
        std::printf("  %9.1f %5.1f%%", g, 100.0 * g / peak[i]);
        std::fflush(stdout);
      }
      set_num_threads(T);
      std::printf("\n");
    }
    if (only.empty()) {
      // Replicated small problems: the batched call threads over replicas.
      std::printf("batched (16 replicas, all threads):\n");
      const Shape bs[] = {{8, 1024, 784, false, true, "fwd L1"},
                          {8, 784, 1024, false, false, "bwd-data L1"},
                          {1024, 784, 8, true, false, "wgrad L1"},
                          {64, 1024, 784, false, true, "fwd L1"}};
      for (const Shape& s : bs) {
        const double g = time_shape(s, rng, 16);
        std::printf("  %-13s %5d %5d %5d  %8.1f GF/s %5.1f%%\n", s.what, s.M, s.N, s.K, g,
                    100.0 * g / peak.back());
      }
    }
  }
}

// The micro-kernel alone on packed operands: A micro-panels from L1/L2, B micro-panels
// from L2 (the packed path's inner loops without packing or threads).
void kernel_bench(int kc, int a_panels, int b_panels) {
  for (SimdPath p : {SimdPath::Avx512, SimdPath::Avx2, SimdPath::Portable}) {
    if (!simd_path_supported(p)) continue;
    set_simd_path(p);
    // The set in use, as the driver sees it.
    const gemm_detail::KernelSet ks = p == SimdPath::Avx512 ? gemm_detail::kernels_avx512()
                                    : p == SimdPath::Avx2   ? gemm_detail::kernels_avx2()
                                                            : gemm_detail::kernels_portable();
    std::mt19937 rng(3);
    auto Ap = randv(static_cast<std::size_t>(ks.mr) * kc * a_panels, rng);
    auto Bp = randv(static_cast<std::size_t>(ks.nr) * kc * b_panels, rng);
    const std::int64_t ldc = static_cast<std::int64_t>(ks.nr) * b_panels;
    std::vector<float> C(static_cast<std::size_t>(ks.mr * a_panels * ldc));
    auto once = [&] {
      for (int i = 0; i < a_panels; ++i)
        for (int j = 0; j < b_panels; ++j)
          ks.kernel(kc, Ap.data() + static_cast<std::size_t>(i) * ks.mr * kc, 1, ks.mr,
                    Bp.data() + static_cast<std::size_t>(j) * ks.nr * kc,
                    C.data() + i * ks.mr * ldc + j * ks.nr, ldc, ks.mr, ks.nr, 1.0f,
                    j & 1 ? 1.0f : 0.0f, nullptr);
    };
    once();
    int n = 0;
    double t0 = now();
    while (now() - t0 < 0.3) {
      once();
      ++n;
    }
    const double dt = (now() - t0) / n;
    const double fl = 2.0 * ks.mr * ks.nr * kc * a_panels * b_panels;
    std::printf("kernel %-8s %2dx%-3d kc=%d  A %d panels, B %d panels (%.0f KiB): %.1f GFLOP/s\n",
                ks.name, ks.mr, ks.nr, kc, a_panels, b_panels,
                4.0 * ks.nr * kc * b_panels / 1024, fl / dt * 1e-9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool check = true, bench = true, quick = false;
  int threads_only = 0;
  std::vector<Shape> only;
  std::vector<SimdPath> forced;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check-only") {
      bench = false;
    } else if (a == "--bench-only") {
      check = false;
    } else if (a == "--kernel") {
      set_num_threads(1);
      std::printf("peak 1 thread: %.1f GFLOP/s\n", measure_peak_gflops(0.5));
      const int kc = std::getenv("BSX_KC") ? std::atoi(std::getenv("BSX_KC")) : 384;
      kernel_bench(kc, 1, 1);
      kernel_bench(kc, 16, 1);
      kernel_bench(kc, 16, 8);
      kernel_bench(kc, 64, 32);
      return 0;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--threads" && i + 1 < argc) {
      threads_only = std::atoi(argv[++i]);
    } else if (a == "--path" && i + 1 < argc) {
      const std::string p = argv[++i];
      setenv("BENCH_PATH", p.c_str(), 1);
    } else if (a == "--shape" && i + 1 < argc) {
      Shape s{0, 0, 0, false, false, "custom"};
      int ta = 0, tb = 0;
      if (std::sscanf(argv[++i], "%d,%d,%d,%d,%d", &s.M, &s.N, &s.K, &ta, &tb) < 3) {
        std::fprintf(stderr, "bad --shape\n");
        return 2;
      }
      s.ta = ta;
      s.tb = tb;
      only.push_back(s);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  gemm_detail::Blocking bl;
  if (const char* e = std::getenv("BSX_KC")) bl.kc = std::atoi(e);
  if (const char* e = std::getenv("BSX_NC")) bl.nc = std::atoi(e);
  if (const char* e = std::getenv("BSX_L2")) bl.l2 = std::atoi(e);
  if (const char* e = std::getenv("BSX_DIRECT_M")) bl.direct_m = std::atoi(e);
  if (const char* e = std::getenv("BSX_DOT_M")) bl.dot_m = std::atoi(e);
  if (const char* e = std::getenv("BSX_PIECES")) bl.pieces = std::atoi(e);
  gemm_detail::set_blocking(bl);

  const CpuFeatures& f = cpu_features();
  std::printf("cpu: %s (%s), threads %d, default path %s\n", f.brand.c_str(), f.vendor.c_str(),
              num_threads(), simd_path_name(simd_path()));
  const SimdPath initial = simd_path();
  if (check) {
    const char* path_env = std::getenv("BENCH_PATH");
    for (SimdPath p : {SimdPath::Avx512, SimdPath::Avx2, SimdPath::Portable}) {
      if (!simd_path_supported(p)) continue;
      if (path_env != nullptr && std::strcmp(path_env, simd_path_name(p)) != 0) continue;
      set_simd_path(p);
      const int before = g_fail, checks = g_checks;
      const double t0 = now();
      run_checks(quick);
      std::printf("check %-8s: %d cases, %d failed (%.1f s)\n", simd_path_name(p),
                  g_checks - checks, g_fail - before, now() - t0);
    }
    set_simd_path(initial);
  }
  if (bench) run_bench(quick, only, threads_only);
  return g_fail == 0 ? 0 : 1;
}
