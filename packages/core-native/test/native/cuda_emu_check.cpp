// The CUDA engine without a GPU: its kernels and CudaEnsemble, compiled for the CPU against
// test/native/cuda_emu.h (every CUDA thread a fiber), checked against the CPU engine:
// the tiled GEMM against sgemm_reference over shapes, transposes, strides, alignments and
// epilogues; then whole ensembles (init bit-identical, forward, gradients, SGD and Adam
// training through the small-batch and GEMM paths, graph-replayed loops, evaluate, stats,
// tensor slots); the histogram kernels against cpu::histogram_add on crafted values (edges,
// NaN, infinities); gradient trials (statistics, histograms, the exported S, the parameters
// after them, the argument errors); frozen trials (lr 0: |S| b the same for every b). Catches indexing, bounds (guard pages), alignment and barrier errors before
// a GPU is at hand; timing and races between blocks need the GPU (cuda_lab.cu, gpu-check).
// Built by CMake (target cuda_emu_check, test/native/CMakeLists.txt). From packages/core-native:
//
//   pnpm run emu-check      (build/tools: configure, build, run --quick; CI runs this)
//   cmake -S . -B build/tools -DBSX_BUILD_TOOLS=ON &&
//     cmake --build build/tools --target cuda_emu_check --parallel 2 &&
//     build/tools/cuda_emu_check [--quick]
//   (--quick leaves out the two largest ensembles; BSX_EMU_ORDER=reverse|shuffle runs the
//   threads of a block in another order.)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_ensemble.h"
#include "cpu/gemm.h"
#include "cpu/ops.h"
// The CUDA engine itself, as one translation unit (its launchers are file-local).
#include "cuda/cuda_ensemble.cu"

namespace bsx::cuda {
int g_emu_sms = 4;
bool compiled_in() { return true; }
DeviceInfo probe() {
  DeviceInfo d;
  d.available = true;
  d.device = 0;
  d.name = "cuda_emu";
  d.sm_major = 9;
  d.multiprocessors = g_emu_sms;
  return d;
}
}  // namespace bsx::cuda

namespace {

int g_failures = 0, g_checks = 0;

using bsx::OptimizerConfig;
namespace optim = bsx::optim;

// An optimiser config for R replicas, replica r taking rows[r % rows.size()].
OptimizerConfig optimizer_config(optim::Kind kind, int R, const std::vector<std::vector<double>>& rows) {
  OptimizerConfig c;
  c.kind = kind;
  c.hyper.assign(static_cast<std::size_t>(R) * optim::kMaxHyper, 0.0);
  for (int r = 0; r < R; ++r) {
    const std::vector<double>& row = rows[static_cast<std::size_t>(r) % rows.size()];
    for (std::size_t h = 0; h < row.size(); ++h) c.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + h] = row[h];
  }
  return c;
}

struct OptCase {
  std::string what;
  OptimizerConfig cfg;
  float lr;  // replica r trains at lr * (r + 1)
};

// The optimisers of the table with per-replica hyperparameters: SGD with Nesterov momentum,
// with dampened momentum and weight decay, and plain with weight decay; Adam with and without
// coupled weight decay; AdamW with two decoupled weight decays.
std::vector<OptCase> optimizer_cases(int R) {
  using optim::Kind;
  return {
      {"sgd momentum", optimizer_config(Kind::Sgd, R, {{0.9, 0, 1, 0}, {0.5, 0.3, 0, 0.01}, {0, 0, 0, 0.001}}), 0.02f},
      {"adam", optimizer_config(Kind::Adam, R, {{0.9, 0.999, 1e-8, 0}, {0.8, 0.99, 1e-6, 0.01}}), 0.001f},
      {"adamw", optimizer_config(Kind::AdamW, R, {{0.9, 0.999, 1e-8, 0.01}, {0.9, 0.999, 1e-8, 0.5}}), 0.001f},
  };
}

void report(bool ok, const std::string& what, const std::string& detail) {
  ++g_checks;
  if (!ok) ++g_failures;
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.empty() ? "" : ": ",
              detail.c_str());
}

// |a - ref| <= atol + rtol |ref| elementwise; atol is relative to the largest |ref|.
template <typename T>
bool close(const T* a, const T* ref, std::size_t n, double atol_rel, double rtol,
           const std::string& what) {
  double mx = 0;
  for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, std::fabs(static_cast<double>(ref[i])));
  const double atol = atol_rel * std::max(mx, 1e-30);
  double worst = 0;
  std::size_t bad = 0, first = n;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i]));
    const double lim = atol + rtol * std::fabs(static_cast<double>(ref[i]));
    if (!(d <= lim)) {
      ++bad;
      if (first == n) first = i;
    }
    if (d / (atol + std::fabs(static_cast<double>(ref[i]))) > worst)
      worst = d / (atol + std::fabs(static_cast<double>(ref[i])));
  }
  char buf[256];
  if (bad) {
    std::snprintf(buf, sizeof buf, "%zu of %zu off, first [%zu] %.9g vs %.9g (max|ref| %.3g)", bad,
                  n, first, static_cast<double>(a[first]), static_cast<double>(ref[first]), mx);
  } else {
    std::snprintf(buf, sizeof buf, "n=%zu worst rel %.2e", n, worst);
  }
  report(bad == 0, what, buf);
  return bad == 0;
}

// ------------------------------------------------------------------------------------------
// GEMM against the reference

void check_gemm(std::mt19937& rng, int M, int N, int K, bool ta, bool tb, int pad, int sms,
                bool shared_a, float alpha, float beta, bool bias, bool mask, bool relu,
                bool tf32 = false) {
  using namespace bsx;
  const int R = 3;
  std::uniform_real_distribution<float> U(-1.0f, 1.0f);
  const std::int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const std::int64_t rows_a = ta ? K : M, rows_b = tb ? N : K;
  const std::int64_t sa = shared_a ? 0 : lda * rows_a + pad, sb = ldb * rows_b + pad,
                     sc = ldc * M + pad, sbias = N + pad, ldm = N + pad, smask = ldm * M + pad;
  std::vector<float> A(sa * (R - 1) + lda * rows_a), B(sb * (R - 1) + ldb * rows_b),
      C(sc * (R - 1) + ldc * M), Bi(sbias * (R - 1) + N), Mk(smask * (R - 1) + ldm * M);
  for (auto* v : {&A, &B, &C, &Bi}) for (float& x : *v) x = U(rng);
  for (float& x : Mk) x = U(rng) > 0 ? 1.0f : 0.0f;
  std::vector<float> ref = C;
  for (int r = 0; r < R; ++r) {
    cpu::Epilogue ep;
    ep.bias = bias ? Bi.data() + r * sbias : nullptr;
    ep.mask = mask ? Mk.data() + r * smask : nullptr;
    ep.ldm = ldm;
    ep.relu = relu;
    cpu::sgemm_reference(ta, tb, M, N, K, alpha, A.data() + r * sa, lda, B.data() + r * sb, ldb,
                         beta, ref.data() + r * sc, ldc, ep);
  }
  cuda::DeviceBuffer<float> dA(A.size()), dB(B.size()), dC(C.size()), dBi(Bi.size()), dM(Mk.size());
  cudaMemcpy(dA.get(), A.data(), dA.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(dB.get(), B.data(), dB.bytes(), cudaMemcpyHostToDevice);
  if (beta != 0.0f) cudaMemcpy(dC.get(), C.data(), dC.bytes(), cudaMemcpyHostToDevice);
  // else: dC keeps the allocator's NaN fill, which must not leak into the result
  cudaMemcpy(dBi.get(), Bi.data(), dBi.bytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(dM.get(), Mk.data(), dM.bytes(), cudaMemcpyHostToDevice);
  cuda::k::GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.alpha = alpha;
  g.beta = beta;
  g.A = dA.get();
  g.lda = lda;
  g.sa = sa;
  g.B = dB.get();
  g.ldb = ldb;
  g.sb = sb;
  g.C = dC.get();
  g.ldc = ldc;
  g.sc = sc;
  if (bias) {
    g.bias = dBi.get();
    g.sbias = sbias;
  }
  if (mask) {
    g.mask = dM.get();
    g.ldm = ldm;
    g.smask = smask;
  }
  g.relu = relu;
  cuda::gemm(nullptr, sms, R, ta, tb, g, tf32);
  std::vector<float> out(C.size());
  cudaMemcpy(out.data(), dC.get(), dC.bytes(), cudaMemcpyDeviceToHost);
  // only the C elements of the problems (the padding between them is not written when beta=0)
  std::vector<float> got, want;
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        got.push_back(out[r * sc + m * ldc + n]);
        want.push_back(ref[r * sc + m * ldc + n]);
      }
  char what[200];
  std::snprintf(what, sizeof what,
                "gemm M=%d N=%d K=%d ta=%d tb=%d pad=%d tile=%s sharedA=%d a=%.2f b=%.2f bias=%d "
                "mask=%d relu=%d",
                M, N, K, ta, tb, pad, tf32 ? "tf32" : sms == 1 ? "128" : "64", shared_a, alpha, beta,
                bias, mask, relu);
  // TF32 rounds each input to 11 significant bits: errors grow like 2^-11 sqrt(K) |a||b|
  if (tf32) {
    close(got.data(), want.data(), got.size(), 2e-3 * std::sqrt(static_cast<double>(K)), 1e-2, what);
  } else {
    close(got.data(), want.data(), got.size(), 1e-5, 1e-4, what);
  }
}

void gemm_suite() {
  std::mt19937 rng(7);
  struct S {
    int M, N, K;
  };
  const S shapes[] = {{1, 1, 1},    {5, 7, 3},     {64, 64, 8},  {65, 63, 17},
                      {128, 128, 16}, {130, 200, 33}, {33, 129, 64}, {9, 10, 300}};
  int i = 0;
  for (const S& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int pad : {0, 1}) {
          ++i;
          const int sms = (i % 2) ? 1 : 1000000;  // 128x128 or 64x64 tiles
          check_gemm(rng, s.M, s.N, s.K, ta, tb, pad, sms, i % 5 == 0, (i % 3) ? 1.0f : 0.5f,
                     (i % 4 == 1) ? 0.75f : 0.0f, i % 2 == 0, i % 3 == 0, i % 2 == 1);
          if (pad == 0)
            check_gemm(rng, s.M, s.N, s.K, ta, tb, pad, sms, i % 5 == 0, (i % 3) ? 1.0f : 0.5f,
                       (i % 4 == 1) ? 0.75f : 0.0f, i % 3 != 0, i % 3 == 0, i % 4 == 1, true);
        }
}

// ------------------------------------------------------------------------------------------
// Ensembles: CUDA (emulated) against the CPU engine

bsx::cpu::Dataset make_data(std::uint64_t id, int count, int dim, int classes, std::mt19937& rng) {
  bsx::cpu::Dataset d;
  d.id = id;
  d.count = count;
  d.dim = dim;
  d.classes = classes;
  std::uniform_real_distribution<float> U(-1.0f, 1.0f);
  d.features.resize(static_cast<std::size_t>(count) * dim);
  for (float& x : d.features) x = U(rng);
  d.labels.resize(count);
  for (auto& y : d.labels) y = static_cast<std::int32_t>(rng() % classes);
  return d;
}

std::vector<std::int32_t> random_indices(std::mt19937& rng, std::int64_t n, int count) {
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = static_cast<std::int32_t>(rng() % count);
  return v;
}

void compare_tensors(bsx::Ensemble& gpu, bsx::Ensemble& cpu, bsx::Slot slot, double atol,
                     double rtol, const std::string& what) {
  for (int t = 0; t < cpu.tensor_count(); ++t) {
    const std::size_t n = static_cast<std::size_t>(cpu.replicas()) * cpu.tensor_numel(t);
    std::vector<float> a(n), b(n);
    gpu.get_tensor(slot, t, a.data());
    cpu.get_tensor(slot, t, b.data());
    close(a.data(), b.data(), n, atol, rtol, what + " tensor " + std::to_string(t));
  }
}

void compare_stats(bsx::Ensemble& gpu, bsx::Ensemble& cpu, const std::string& what) {
  const std::size_t n = static_cast<std::size_t>(cpu.replicas()) * cpu.layers() * bsx::kStatsPerLayer;
  std::vector<double> a(n), b(n);
  gpu.stats(a.data());
  cpu.stats(b.data());
  close(a.data(), b.data(), n, 1e-6, 1e-5, what + " stats");
}

void ensemble_suite(int R, const std::vector<int>& w, int b, bool graphs, std::uint64_t data_id) {
  using namespace bsx;
  setenv("BSX_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  std::string tag = "R=" + std::to_string(R) + " widths=";
  for (std::size_t i = 0; i < w.size(); ++i) tag += (i ? "-" : "") + std::to_string(w[i]);
  tag += " b=" + std::to_string(b) + (graphs ? "" : " nographs");
  std::mt19937 rng(static_cast<unsigned>(data_id));
  const int count = 97;
  const cpu::Dataset data = make_data(data_id, count, w.front(), w.back(), rng);
  cpu::CpuEnsemble cpu(R, w);
  cuda::CudaEnsemble gpu(R, w);
  std::vector<std::uint64_t> seeds;
  for (int r = 0; r < R; ++r) seeds.push_back(1000 + 17 * r + data_id);
  cpu.init_xavier(seeds);
  gpu.init_xavier(seeds);
  bool init_same = true;
  for (int t = 0; t < cpu.tensor_count(); ++t) {
    const std::size_t n = static_cast<std::size_t>(R) * cpu.tensor_numel(t);
    std::vector<float> a(n), c(n);
    gpu.get_tensor(Slot::Param, t, a.data());
    cpu.get_tensor(Slot::Param, t, c.data());
    init_same = init_same && std::memcmp(a.data(), c.data(), n * sizeof(float)) == 0;
  }
  report(init_same, tag + " init bit-identical", "");
  // non-zero biases, same on both
  std::uniform_real_distribution<float> U(-0.2f, 0.2f);
  for (int l = 0; l < cpu.layers(); ++l) {
    std::vector<float> bias(static_cast<std::size_t>(R) * w[l + 1]);
    for (float& x : bias) x = U(rng);
    cpu.set_tensor(Slot::Param, 2 * l + 1, bias.data());
    gpu.set_tensor(Slot::Param, 2 * l + 1, bias.data());
  }
  const int C = w.back();
  {
    const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * b, count);
    std::vector<float> a(static_cast<std::size_t>(R) * b * C), c(a.size());
    gpu.forward(data, idx.data(), b, a.data());
    cpu.forward(data, idx.data(), b, c.data());
    close(a.data(), c.data(), a.size(), 1e-5, 1e-4, tag + " forward log-probs");
  }
  {
    const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * b, count);
    std::vector<std::vector<float>> ga(cpu.tensor_count()), gc(cpu.tensor_count());
    std::vector<float*> pa, pc;
    for (int t = 0; t < cpu.tensor_count(); ++t) {
      ga[t].resize(static_cast<std::size_t>(R) * cpu.tensor_numel(t));
      gc[t].resize(ga[t].size());
      pa.push_back(ga[t].data());
      pc.push_back(gc[t].data());
    }
    std::vector<double> la(R), lc(R);
    gpu.gradients(data, idx.data(), b, pa, la.data());
    cpu.gradients(data, idx.data(), b, pc, lc.data());
    close(la.data(), lc.data(), R, 1e-6, 1e-5, tag + " gradients loss");
    for (int t = 0; t < cpu.tensor_count(); ++t)
      close(ga[t].data(), gc[t].data(), ga[t].size(), 1e-5, 1e-3,
            tag + " gradient " + std::to_string(t));
  }
  cpu.snapshot();
  gpu.snapshot();
  compare_stats(gpu, cpu, tag + " at snapshot");
  std::vector<float> lr(R);
  for (int r = 0; r < R; ++r) lr[r] = 0.05f * (r + 1);
  auto train_both = [&](std::int64_t n, const std::string& what) {
    const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * n, count);
    std::vector<std::vector<float>> start(cpu.tensor_count());
    for (int t = 0; t < cpu.tensor_count(); ++t) {
      start[t].resize(static_cast<std::size_t>(R) * cpu.tensor_numel(t));
      cpu.get_tensor(Slot::Param, t, start[t].data());
    }
    std::vector<double> la(R), lc(R);
    gpu.train(data, idx.data(), n, b, lr.data(), la.data());
    cpu.train(data, idx.data(), n, b, lr.data(), lc.data());
    close(la.data(), lc.data(), R, 1e-6, 1e-4, tag + " " + what + " loss");
    if (cpu.optimizer().kind == optim::Kind::Sgd) {
      compare_tensors(gpu, cpu, Slot::Param, 1e-4, 1e-3, tag + " " + what + " params");
    } else {
      // Adam's step is nearly sign(g) * lr per element, so rounding differences of tiny
      // gradients show up as up to lr per step: compare the change in norm instead
      const double steps = static_cast<double>((n + b - 1) / b);
      const double lr_max = *std::max_element(lr.begin(), lr.end());
      for (int t = 0; t < cpu.tensor_count(); ++t) {
        std::vector<float> a(start[t].size()), c(start[t].size());
        gpu.get_tensor(Slot::Param, t, a.data());
        cpu.get_tensor(Slot::Param, t, c.data());
        double d2 = 0, m2 = 0, worst = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
          d2 += (static_cast<double>(a[i]) - c[i]) * (static_cast<double>(a[i]) - c[i]);
          m2 += (static_cast<double>(c[i]) - start[t][i]) * (static_cast<double>(c[i]) - start[t][i]);
          worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - c[i]));
        }
        const double rel = std::sqrt(d2) / std::sqrt(std::max(m2, 1e-300));
        char buf[160];
        std::snprintf(buf, sizeof buf, "|diff|/|change| %.2e, max diff %.2e (lr %.1e, %g steps)", rel,
                      worst, lr_max, steps);
        report(rel <= 1e-2 && worst <= steps * lr_max,
               tag + " " + what + " params tensor " + std::to_string(t), buf);
      }
    }
    bool steps_same = gpu.optimizer_steps() == cpu.optimizer_steps();
    report(steps_same, tag + " " + what + " optimizer steps", "");
  };
  train_both(3 * b + 1, "sgd train (short last step)");
  train_both(17 * b, "sgd train (17 steps)");
  // every optimiser of the table, with different hyperparameters per replica
  for (const OptCase& oc : optimizer_cases(R)) {
    cpu.set_optimizer(oc.cfg);
    gpu.set_optimizer(oc.cfg);
    for (int r = 0; r < R; ++r) lr[r] = oc.lr * (r + 1);
    train_both(2 * b + 1, oc.what + " train");
    train_both(17 * b + 2, oc.what + " train (17 steps + short)");
    const optim::Descriptor& d = optim::describe(oc.cfg.kind);
    report(cpu.state_slots() == gpu.state_slots(), tag + " " + oc.what + " state slots held",
           std::to_string(gpu.state_slots()) + " vs " + std::to_string(cpu.state_slots()));
    for (std::size_t k = 0; k < d.state.size(); ++k)
      compare_tensors(gpu, cpu, state_slot(static_cast<int>(k)), 1e-3, 1e-2, tag + " " + oc.what + " " + d.state[k]);
  }
  compare_stats(gpu, cpu, tag + " after training");
  {
    EvalResult ea = gpu.evaluate(data, 3, count - 5);
    EvalResult ec = cpu.evaluate(data, 3, count - 5);
    close(ea.loss_sum.data(), ec.loss_sum.data(), R, 1e-6, 1e-5, tag + " evaluate loss");
    std::int64_t diff = 0;
    for (int r = 0; r < R; ++r) diff += std::llabs(ea.correct[r] - ec.correct[r]);
    report(diff <= 1 && ea.count == ec.count, tag + " evaluate correct",
           "off by " + std::to_string(diff));
  }
  // back to plain SGD: the state is released on both (SGD's slot reads as zeros)
  cpu.set_optimizer(optimizer_config(optim::Kind::Sgd, R, {{0, 0, 0, 0}}));
  gpu.set_optimizer(optimizer_config(optim::Kind::Sgd, R, {{0, 0, 0, 0}}));
  report(cpu.state_slots() == 0 && gpu.state_slots() == 0, tag + " plain sgd holds no state", "");
  compare_tensors(gpu, cpu, Slot::State0, 0, 0, tag + " momentum buffer after reset");
  // one replica's values broadcast to all, then every replica back to its snapshot
  {
    std::vector<float> one(cpu.tensor_numel(2));
    for (float& x : one) x = U(rng);
    cpu.set_tensor_broadcast(Slot::Param, 2, one.data());
    gpu.set_tensor_broadcast(Slot::Param, 2, one.data());
    std::vector<float> a(static_cast<std::size_t>(R) * one.size()), c(a.size());
    gpu.get_tensor(Slot::Param, 2, a.data());
    cpu.get_tensor(Slot::Param, 2, c.data());
    close(a.data(), c.data(), a.size(), 0, 0, tag + " after set_tensor_broadcast");
    cpu.reset_to_snapshot();
    gpu.reset_to_snapshot();
    compare_tensors(gpu, cpu, Slot::Param, 0, 0, tag + " after reset_to_snapshot");
  }
  // a parameter set from the host reads back unchanged
  {
    std::vector<float> p(static_cast<std::size_t>(R) * cpu.tensor_numel(0));
    for (float& x : p) x = U(rng);
    gpu.set_tensor(Slot::Param, 0, p.data());
    std::vector<float> q(p.size());
    gpu.get_tensor(Slot::Param, 0, q.data());
    report(std::memcmp(p.data(), q.data(), p.size() * sizeof(float)) == 0, tag + " set/get tensor", "");
  }
}

// BSX_CUDA_TF32=1: the GEMM path on (emulated) TF32 tensor cores, against the fp32 CPU engine
// with a TF32-sized tolerance.
void tf32_suite() {
  using namespace bsx;
  setenv("BSX_CUDA_TF32", "1", 1);
  const std::vector<int> w = {36, 20, 12, 10};
  const int R = 2, b = 16;
  std::mt19937 rng(99);
  const cpu::Dataset data = make_data(999, 97, w.front(), w.back(), rng);
  cpu::CpuEnsemble cpu(R, w);
  cuda::CudaEnsemble gpu(R, w);
  cpu.init_xavier({5, 6});
  gpu.init_xavier({5, 6});
  const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * b, 97);
  std::vector<float> a(static_cast<std::size_t>(R) * b * w.back()), c(a.size());
  gpu.forward(data, idx.data(), b, a.data());
  cpu.forward(data, idx.data(), b, c.data());
  close(a.data(), c.data(), a.size(), 1e-2, 1e-2, "tf32 forward log-probs");
  std::vector<std::vector<float>> ga(cpu.tensor_count()), gc(cpu.tensor_count());
  std::vector<float*> pa, pc;
  for (int t = 0; t < cpu.tensor_count(); ++t) {
    ga[t].resize(static_cast<std::size_t>(R) * cpu.tensor_numel(t));
    gc[t].resize(ga[t].size());
    pa.push_back(ga[t].data());
    pc.push_back(gc[t].data());
  }
  std::vector<double> la(R), lc(R);
  gpu.gradients(data, idx.data(), b, pa, la.data());
  cpu.gradients(data, idx.data(), b, pc, lc.data());
  close(la.data(), lc.data(), R, 0, 1e-2, "tf32 gradients loss");
  for (int t = 0; t < cpu.tensor_count(); ++t)
    close(ga[t].data(), gc[t].data(), ga[t].size(), 3e-2, 3e-2, "tf32 gradient " + std::to_string(t));
  unsetenv("BSX_CUDA_TF32");
}

// ------------------------------------------------------------------------------------------
// Gradient trials

// The histogram kernels on values that sit on edges, beyond them, NaN and infinities, against
// cpu::histogram_add: the counts must be equal. bins > kHistSharedBins takes histogram_global.
void histogram_suite() {
  using namespace bsx;
  std::mt19937 rng(31);
  for (int bins : {1, 7, 4096, 5000}) {
    std::vector<float> edges(static_cast<std::size_t>(bins) + 1);
    for (int i = 0; i <= bins; ++i) edges[i] = -1.0f + 2.0f * static_cast<float>(i) / bins;
    std::vector<double> values;
    std::uniform_real_distribution<double> U(-1.3, 1.3);
    for (int i = 0; i < 3 * cuda::k::kHistPerBlock + 123; ++i) values.push_back(U(rng));
    for (float e : edges) {
      values.push_back(e);
      values.push_back(std::nextafter(e, -2.0f));
      values.push_back(std::nextafter(e, 2.0f));
    }
    for (double v : {std::nan(""), HUGE_VAL, -HUGE_VAL, 1e300, -1e-300}) values.push_back(v);
    std::vector<float> as_float(values.begin(), values.end());
    std::vector<std::int64_t> want(static_cast<std::size_t>(bins) + 3, 0);
    cpu::histogram_add(as_float.data(), as_float.size(), edges.data(), bins, want.data());
    cuda::DeviceBuffer<double> dv(values.size());
    cuda::DeviceBuffer<float> de(edges.size());
    cuda::DeviceBuffer<unsigned long long> dc(want.size());
    cudaMemcpy(dv.get(), values.data(), dv.bytes(), cudaMemcpyHostToDevice);
    cudaMemcpy(de.get(), edges.data(), de.bytes(), cudaMemcpyHostToDevice);
    std::vector<unsigned long long> got(want.size(), 0);
    cudaMemcpy(dc.get(), got.data(), dc.bytes(), cudaMemcpyHostToDevice);
    const unsigned grid = static_cast<unsigned>((values.size() + cuda::k::kHistPerBlock - 1) / cuda::k::kHistPerBlock);
    if (bins <= cuda::k::kHistSharedBins) {
      BSX_LAUNCH(grid, cuda::k::kHistThreads, 0, nullptr, cuda::k::histogram_shared)(
          dv.get(), static_cast<long long>(values.size()), de.get(), bins, dc.get());
    } else {
      BSX_LAUNCH(grid, cuda::k::kHistThreads, 0, nullptr, cuda::k::histogram_global)(
          dv.get(), static_cast<long long>(values.size()), de.get(), bins, dc.get());
    }
    cudaMemcpy(got.data(), dc.get(), dc.bytes(), cudaMemcpyDeviceToHost);
    std::size_t diff = 0;
    for (std::size_t k = 0; k < want.size(); ++k) diff += got[k] != static_cast<unsigned long long>(want[k]);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%zu values, %zu of %zu counts differ (under %lld, over %lld, nan %lld)",
                  values.size(), diff, want.size(), static_cast<long long>(want[0]),
                  static_cast<long long>(want[bins + 1]), static_cast<long long>(want[bins + 2]));
    report(diff == 0, "histogram bins=" + std::to_string(bins) +
                          (bins <= cuda::k::kHistSharedBins ? " (shared)" : " (global)"), buf);
  }
}

// Histogram counts from the two backends: equal totals, and at most max(1, 0.1% of the values)
// counted in another bin (a value within rounding of an edge can fall on either side of it).
void compare_hist(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& c,
                  const std::string& what) {
  std::int64_t ta = 0, tc = 0, moved2 = 0;
  for (std::size_t k = 0; k < c.size(); ++k) {
    ta += a[k];
    tc += c[k];
    moved2 += std::llabs(a[k] - c[k]);
  }
  const std::int64_t moved = moved2 / 2, allowed = std::max<std::int64_t>(1, tc / 1000);
  std::int64_t inside = 0;
  for (std::size_t k = 1; k + 2 < c.size(); ++k) inside += c[k];
  char buf[200];
  std::snprintf(buf, sizeof buf, "%lld values (%lld in bins, under %lld, over %lld, nan %lld), %lld moved (allowed %lld)",
                static_cast<long long>(tc), static_cast<long long>(inside), static_cast<long long>(c[0]),
                static_cast<long long>(c[c.size() - 2]), static_cast<long long>(c.back()),
                static_cast<long long>(moved), static_cast<long long>(allowed));
  report(a.size() == c.size() && ta == tc && moved <= allowed, what, buf);
}

// Edges over [-0.6, 0.6] x max|v| (so that the tails go to underflow and overflow), `bins` bins.
std::vector<float> edges_for(const std::vector<float>& v, int bins) {
  float mx = 0;
  for (float x : v) mx = std::max(mx, std::fabs(x));
  std::vector<float> e(static_cast<std::size_t>(bins) + 1);
  for (int i = 0; i <= bins; ++i) e[i] = 0.6f * mx * (-1.0f + 2.0f * static_cast<float>(i) / bins);
  return e;
}

// layer: the layer whose weight gradient the trials measure (-1: the last, the default).
void trials_suite(int R, const std::vector<int>& w, int b, std::int64_t n, bool graphs,
                  std::uint64_t data_id, int layer = -1) {
  using namespace bsx;
  setenv("BSX_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  std::string tag = "trials R=" + std::to_string(R) + " widths=";
  for (std::size_t i = 0; i < w.size(); ++i) tag += (i ? "-" : "") + std::to_string(w[i]);
  tag += " b=" + std::to_string(b) + " n=" + std::to_string(n) + (graphs ? "" : " nographs");
  if (layer >= 0) tag += " layer=" + std::to_string(layer);
  std::mt19937 rng(static_cast<unsigned>(data_id));
  const int count = 97;
  const cpu::Dataset data = make_data(data_id, count, w.front(), w.back(), rng);
  cpu::CpuEnsemble cpu(R, w);
  cuda::CudaEnsemble gpu(R, w);
  std::vector<std::uint64_t> seeds;
  for (int r = 0; r < R; ++r) seeds.push_back(2000 + 13 * r + data_id);
  cpu.init_xavier(seeds);
  gpu.init_xavier(seeds);
  std::uniform_real_distribution<float> U(-0.2f, 0.2f);
  for (int l = 0; l < cpu.layers(); ++l) {
    std::vector<float> bias(static_cast<std::size_t>(R) * w[l + 1]);
    for (float& x : bias) x = U(rng);
    cpu.set_tensor(Slot::Param, 2 * l + 1, bias.data());
    gpu.set_tensor(Slot::Param, 2 * l + 1, bias.data());
  }
  cpu.snapshot();
  const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * n, count);
  const float lr = 0.05f;
  const int last = 2 * (layer >= 0 ? layer : cpu.layers() - 1);  // the measured weight
  const std::size_t ns = static_cast<std::size_t>(R) * cpu.tensor_numel(last);
  // a first CPU pass finds the range of the values, for edges that leave tails outside
  std::vector<float> s_cpu(ns), s_gpu(ns, std::nanf(""));
  std::vector<float> wide = {-1e30f, 1e30f};
  cpu.grad_trials(data, idx.data(), n, b, lr, HistogramSpec{wide.data(), 1},
                  HistogramSpec{wide.data(), 1}, s_cpu.data(), layer);
  cpu.reset_to_snapshot();
  std::vector<float> s_sum_cpu(ns);
  for (int r = 0; r < R; ++r)
    for (std::int64_t i = 0; i < cpu.tensor_numel(last); ++i)  // S_sum ~ b S_mean
      s_sum_cpu[r * cpu.tensor_numel(last) + i] = s_cpu[r * cpu.tensor_numel(last) + i] * b;
  const std::vector<float> em = edges_for(s_cpu, 32), es = edges_for(s_sum_cpu, 9);
  const HistogramSpec hm{em.data(), 32}, hs{es.data(), 9};
  const std::vector<std::int64_t> steps_before = cpu.optimizer_steps();
  GradTrialsResult rc = cpu.grad_trials(data, idx.data(), n, b, lr, hm, hs, s_cpu.data(), layer);
  GradTrialsResult rg = gpu.grad_trials(data, idx.data(), n, b, lr, hm, hs, s_gpu.data(), layer);
  // per replica: the norms and means within 1e-4 relative; the step count exactly
  std::vector<double> stat_c, stat_g;
  bool steps_ok = true;
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < kTrialStats - 1; ++j) {
      stat_c.push_back(rc.stats[r * kTrialStats + j]);
      stat_g.push_back(rg.stats[r * kTrialStats + j]);
    }
    steps_ok = steps_ok && rg.stats[r * kTrialStats + 5] == rc.stats[r * kTrialStats + 5] &&
               rc.stats[r * kTrialStats + 5] == static_cast<double>((n + b - 1) / b);
  }
  close(stat_g.data(), stat_c.data(), stat_g.size(), 0, 1e-4, tag + " stats");
  report(steps_ok, tag + " stats steps", "");
  close(s_gpu.data(), s_cpu.data(), ns, 1e-5, 1e-3, tag + " exported S_mean");
  compare_hist(rg.hist_mean, rc.hist_mean, tag + " histogram of S_mean");
  compare_hist(rg.hist_sum, rc.hist_sum, tag + " histogram of S_sum");
  compare_tensors(gpu, cpu, Slot::Param, 1e-4, 1e-3, tag + " params after");
  std::vector<std::int64_t> dc = cpu.optimizer_steps();
  for (int r = 0; r < R; ++r) dc[r] -= steps_before[r];
  report(gpu.optimizer_steps() == dc, tag + " optimizer steps", "");
}

// Frozen trials (lr 0, the frozen-weights control): on the same n samples, for every batch
// size b dividing n, S_sum is the sum of the per-sample gradients whatever b, so |S_mean| * b
// and |S_sum| are the same for every b (to float rounding), on each backend; the backends
// agree with each other, and neither moves the weights.
void frozen_trials_suite(int R, const std::vector<int>& w, std::int64_t n, int min_b,
                         std::uint64_t data_id, int layer = -1) {
  using namespace bsx;
  setenv("BSX_CUDA_GRAPHS", "1", 1);
  std::string tag = "frozen trials R=" + std::to_string(R) + " widths=";
  for (std::size_t i = 0; i < w.size(); ++i) tag += (i ? "-" : "") + std::to_string(w[i]);
  tag += " n=" + std::to_string(n) + " b>=" + std::to_string(min_b);
  if (layer >= 0) tag += " layer=" + std::to_string(layer);
  std::mt19937 rng(static_cast<unsigned>(data_id));
  const int count = 97;
  const cpu::Dataset data = make_data(data_id, count, w.front(), w.back(), rng);
  cpu::CpuEnsemble cpu(R, w);
  cuda::CudaEnsemble gpu(R, w);
  std::vector<std::uint64_t> seeds;
  for (int r = 0; r < R; ++r) seeds.push_back(3000 + 17 * r + data_id);
  cpu.init_xavier(seeds);
  gpu.init_xavier(seeds);
  const int measured = 2 * (layer < 0 ? cpu.layers() - 1 : layer);
  const std::int64_t numel = cpu.tensor_numel(measured);
  std::vector<std::vector<float>> before(cpu.tensor_count());
  for (int t = 0; t < cpu.tensor_count(); ++t) {
    before[t].resize(static_cast<std::size_t>(R) * cpu.tensor_numel(t));
    cpu.get_tensor(Slot::Param, t, before[t].data());
  }
  const auto idx = random_indices(rng, static_cast<std::int64_t>(R) * n, count);
  std::vector<float> wide = {-1e30f, 1e30f};
  const HistogramSpec h{wide.data(), 1};
  // per backend and replica: |S_mean| * b and |S_sum| at every b; b * S_mean elementwise
  std::vector<double> ref_c, ref_g;
  std::vector<float> s_ref(static_cast<std::size_t>(R) * numel), s_c(s_ref.size()), s_g(s_ref.size());
  double worst_c = 0, worst_g = 0, worst_cg = 0, worst_s = 0;
  int sizes = 0;
  for (int b = min_b; b <= n; b *= 2) {
    if (n % b != 0) continue;
    ++sizes;
    GradTrialsResult rc = cpu.grad_trials(data, idx.data(), n, b, 0.0f, h, h, s_c.data(), layer);
    GradTrialsResult rg = gpu.grad_trials(data, idx.data(), n, b, 0.0f, h, h, s_g.data(), layer);
    for (int r = 0; r < R; ++r) {
      const double* c = rc.stats.data() + r * kTrialStats;
      const double* g = rg.stats.data() + r * kTrialStats;
      if (b == min_b) {
        ref_c.push_back(c[0] * b);
        ref_c.push_back(c[1]);
        ref_g.push_back(g[0] * b);
        ref_g.push_back(g[1]);
      }
      for (int k = 0; k < 2; ++k) {
        const double vc = k == 0 ? c[0] * b : c[1], vg = k == 0 ? g[0] * b : g[1];
        worst_c = std::max(worst_c, std::fabs(vc / ref_c[2 * r + k] - 1));
        worst_g = std::max(worst_g, std::fabs(vg / ref_g[2 * r + k] - 1));
      }
      for (int j = 0; j < kTrialStats - 1; ++j)
        worst_cg = std::max(worst_cg, std::fabs(g[j] - c[j]) / std::max(std::fabs(c[j]), 1e-30));
    }
    if (b == min_b) {
      s_ref = s_c;
      for (float& v : s_ref) v *= static_cast<float>(b);
    }
    double mx = 0;
    for (float v : s_ref) mx = std::max(mx, static_cast<double>(std::fabs(v)));
    for (std::size_t i = 0; i < s_ref.size(); ++i) {
      worst_s = std::max(worst_s, std::fabs(static_cast<double>(s_c[i]) * b - s_ref[i]) / mx);
      worst_s = std::max(worst_s, std::fabs(static_cast<double>(s_g[i]) * b - s_ref[i]) / mx);
    }
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "%d batch sizes, worst relative difference of |S_mean| b and |S_sum| from the first: %.2e", sizes, worst_c);
  report(sizes >= 2 && worst_c < 1e-5, tag + " cpu |S| b constant", buf);
  std::snprintf(buf, sizeof buf, "%d batch sizes, worst relative difference of |S_mean| b and |S_sum| from the first: %.2e", sizes, worst_g);
  report(sizes >= 2 && worst_g < 1e-5, tag + " cuda |S| b constant", buf);
  std::snprintf(buf, sizeof buf, "worst |b S_mean - (b S_mean at the first b)| / max|S|: %.2e", worst_s);
  report(worst_s < 1e-5, tag + " b S_mean elementwise", buf);
  std::snprintf(buf, sizeof buf, "worst relative difference of the statistics: %.2e", worst_cg);
  report(worst_cg < 1e-4, tag + " cuda vs cpu stats", buf);
  bool still = true;
  for (int t = 0; t < cpu.tensor_count(); ++t) {
    std::vector<float> a(before[t].size()), c(before[t].size());
    gpu.get_tensor(Slot::Param, t, a.data());
    cpu.get_tensor(Slot::Param, t, c.data());
    still = still && a == before[t] && c == before[t];
  }
  report(still, tag + " weights unchanged", "");
  std::vector<std::int64_t> steps_c = cpu.optimizer_steps(), steps_g = gpu.optimizer_steps();
  report(steps_c == steps_g, tag + " optimizer steps", "");
}

// The errors of the CPU version, with its messages.
void trials_errors() {
  using namespace bsx;
  const std::vector<int> w = {7, 5, 3};
  std::mt19937 rng(5);
  const cpu::Dataset data = make_data(77, 20, 7, 3, rng);
  cpu::CpuEnsemble cpu(2, w);
  cuda::CudaEnsemble gpu(2, w);
  cpu.init_xavier({1, 2});
  gpu.init_xavier({1, 2});
  std::vector<float> e = {-1.0f, 0.0f, 1.0f};
  const HistogramSpec ok{e.data(), 2}, no_bins{e.data(), 0}, no_edges{nullptr, 2};
  std::vector<std::int32_t> idx(8, 3), bad_idx(8, 3);
  bad_idx[5] = 20;
  const cpu::Dataset wrong = make_data(78, 20, 6, 3, rng);
  auto message = [](Ensemble& ens, auto&& call) -> std::string {
    try {
      call(ens);
    } catch (const std::exception& ex) {
      return ex.what();
    }
    return "(no error)";
  };
  struct Case {
    std::string what;
    std::function<void(Ensemble&)> call;
  };
  const std::vector<Case> cases = {
      {"batch 0", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 0, 0.1f, ok, ok, nullptr); }},
      {"n 0", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 0, 1, 0.1f, ok, ok, nullptr); }},
      {"lr < 0", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, -0.1f, ok, ok, nullptr); }},
      {"lr nan", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, std::nanf(""), ok, ok, nullptr); }},
      {"no bins", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, 0.1f, ok, no_bins, nullptr); }},
      {"no edges", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, 0.1f, no_edges, ok, nullptr); }},
      {"index out of range", [&](Ensemble& x) { x.grad_trials(data, bad_idx.data(), 4, 1, 0.1f, ok, ok, nullptr); }},
      {"dataset width", [&](Ensemble& x) { x.grad_trials(wrong, idx.data(), 4, 1, 0.1f, ok, ok, nullptr); }},
      {"layer past the last", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, 0.1f, ok, ok, nullptr, 2); }},
      {"layer -2", [&](Ensemble& x) { x.grad_trials(data, idx.data(), 4, 1, 0.1f, ok, ok, nullptr, -2); }},
      {"adam", [&](Ensemble& x) {
         x.set_optimizer(optimizer_config(optim::Kind::Adam, x.replicas(), {{0.9, 0.999, 1e-8, 0}}));
         try {
           x.grad_trials(data, idx.data(), 4, 1, 0.1f, ok, ok, nullptr);
         } catch (...) {
           x.set_optimizer(optimizer_config(optim::Kind::Sgd, x.replicas(), {{0, 0, 0, 0}}));
           throw;
         }
       }},
      {"sgd with momentum", [&](Ensemble& x) {
         x.set_optimizer(optimizer_config(optim::Kind::Sgd, x.replicas(), {{0.9, 0, 0, 0}}));
         try {
           x.grad_trials(data, idx.data(), 4, 1, 0.1f, ok, ok, nullptr);
         } catch (...) {
           x.set_optimizer(optimizer_config(optim::Kind::Sgd, x.replicas(), {{0, 0, 0, 0}}));
           throw;
         }
       }},
  };
  for (const Case& c : cases) {
    const std::string mc = message(cpu, c.call), mg = message(gpu, c.call);
    report(mc == mg && mc != "(no error)", "trials error: " + c.what, mg);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  gemm_suite();
  tf32_suite();
  std::uint64_t id = 1;
  for (int b : {1, 3, 8, 9, 32}) {
    ensemble_suite(3, {7, 5, 4, 3}, b, true, id++);
  }
  ensemble_suite(2, {7, 5, 4, 3}, 2, false, id++);
  ensemble_suite(2, {36, 20, 12, 10}, 4, true, id++);
  ensemble_suite(2, {36, 20, 12, 10}, 12, true, id++);
  histogram_suite();
  trials_errors();
  trials_suite(3, {7, 5, 4, 3}, 1, 20, true, id++);        // graph-replayed, b = 1
  trials_suite(2, {7, 5, 4, 3}, 1, 7, false, id++);        // without graphs
  trials_suite(3, {7, 5, 4, 3}, 3, 3 * 17 + 2, true, id++);  // graph, then a short step
  trials_suite(2, {36, 20, 12, 10}, 8, 8 * 16 + 5, true, id++);
  trials_suite(2, {36, 20, 12, 10}, 64, 64 * 3 + 5, true, id++);  // GEMM steps, a small last one
  trials_suite(2, {36, 20, 12, 10}, 64, 30, true, id++);   // n < b: one step of n
  trials_suite(2, {36, 20, 12, 10}, 9, 9 * 2 + 7, true, id++);    // GEMM, short step still GEMM
  trials_suite(2, {7, 3}, 2, 9, true, id++);               // one layer: it is the last
  trials_suite(40, {7, 5, 4, 3}, 2, 17 * 2, true, id++);   // many replicas
  trials_suite(2, {16, 96, 100}, 4, 10, true, id++);       // last weight over one 8192 chunk
  // other layers than the last: the small-batch backward keeps that layer's gradient and updates
  // the others; the GEMM path keeps every gradient
  trials_suite(3, {7, 5, 4, 3}, 1, 20, true, id++, 0);     // the first layer, graph-replayed
  trials_suite(2, {7, 5, 4, 3}, 3, 3 * 5 + 2, false, id++, 1);  // a middle one, a short step
  trials_suite(2, {36, 20, 12, 10}, 9, 9 * 2 + 7, true, id++, 0);  // GEMM steps
  trials_suite(2, {36, 20, 12, 10}, 64, 30, true, id++, 1);  // n < b: one GEMM step of n
  trials_suite(2, {100, 96, 10}, 4, 10, true, id++, 0);    // the first weight over one 8192 chunk
  // lr 0: b = 4..1024 dividing 1024 (the small-batch path to 8, then the GEMMs); without
  // --quick every b from 1 (about a minute more under the emulation)
  frozen_trials_suite(2, {7, 5, 4, 3}, 1024, quick ? 4 : 1, id++);
  frozen_trials_suite(2, {36, 20, 12, 10}, 64, 1, id++);
  frozen_trials_suite(2, {36, 20, 12, 10}, 256, 1, id++, 0);  // the first layer
  frozen_trials_suite(3, {7, 5, 4, 3}, 64, 1, id++, 1);       // a middle one
  if (!quick) {
    bsx::cuda::g_emu_sms = 1;  // big tiles
    ensemble_suite(2, {64, 132, 40, 10}, 20, true, id++);
    bsx::cuda::g_emu_sms = 4;
    ensemble_suite(2, {784, 1024, 1024, 10}, 1, true, id++);
  }
  std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
  return g_failures == 0 ? 0 : 1;
}
