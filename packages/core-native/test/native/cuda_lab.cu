// The CUDA kernel lab: each kernel of the engine checked against a simple host reference
// (double accumulation, on sampled elements or replicas) and timed with events (median of
// several runs after a warm-up, random inputs), next to the two ceilings measured here: a
// device-to-device copy (GB/s, bytes read + written) for the bandwidth-bound kernels, and
// the GEMM's GFLOP/s on the MLP's shapes. Ends with whole training steps through
// CudaEnsemble: the b=1 trial step over R=1000 replicas against its bandwidth floor
// (weights read in the forward, read + written in the fused backward), and a small-R loop
// with and without CUDA graphs. The opt-in TF32 GEMM is timed beside the fp32 one.
// Dev tooling, not part of the addon.
// Built by CMake where nvcc is found (target cuda_lab, test/native/CMakeLists.txt, with the
// addon's CUDA settings); run it on a GPU machine (scripts/gpu-run builds and runs it there).
// From packages/core-native:
//
//   cmake -S . -B build/tools -DBSX_BUILD_TOOLS=ON -DBSX_CUDA=ON &&
//     cmake --build build/tools --target cuda_lab --parallel 2 &&
//   build/tools/cuda_lab [--quick] [--json FILE]
// (--tiny: small shapes, for a run under test/native/cuda_emu.h without a GPU.)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_ensemble.cu"

namespace lab {

using namespace bsx;
using namespace bsx::cuda;

struct Row {
  std::string name;
  double ms = 0, gflops = 0, gbps = 0, err = 0;
  bool ok = true;
  std::string note;
};
std::vector<Row> g_rows;
int g_fail = 0;

void add_row(const Row& r) {
  g_rows.push_back(r);
  if (!r.ok) ++g_fail;
  std::printf("LAB %-52s %9.4f ms %9.1f GFLOP/s %8.1f GB/s  err %.2e %s %s\n", r.name.c_str(), r.ms,
              r.gflops, r.gbps, r.err, r.ok ? "ok" : "FAIL", r.note.c_str());
  std::fflush(stdout);
}

// Median time (ms) of `reps` runs of fn on stream s, after two warm-up runs.
double time_ms(cudaStream_t s, int reps, const std::function<void()>& fn) {
  fn();
  fn();
  BSX_CUDA_CHECK(cudaStreamSynchronize(s));
  Event a, b;
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    a.record(s);
    fn();
    b.record(s);
    b.sync();
    t.push_back(b.since(a));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

__global__ void fill_uniform(float* p, long long n, unsigned seed, float lo, float hi) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const std::uint32_t ctr[4] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i >> 32), 7u, 0u};
  const std::uint32_t key[2] = {seed, 0x5eedu};
  const Philox4x32 r = philox4x32_10(ctr, key);
  p[i] = lo + (hi - lo) * philox_uniform01(r.v[0]);
}

void fill(DeviceBuffer<float>& b, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  const long long n = static_cast<long long>(b.size());
  BSX_LAUNCH(static_cast<unsigned>((n + 255) / 256), 256, 0, nullptr, fill_uniform)(b.get(), n, seed, lo, hi);
  BSX_CUDA_CHECK_LAUNCH();
  BSX_CUDA_CHECK(cudaDeviceSynchronize());
}

std::vector<float> host(const DeviceBuffer<float>& b) {
  std::vector<float> h(b.size());
  BSX_CUDA_CHECK(cudaMemcpy(h.data(), b.get(), b.bytes(), cudaMemcpyDeviceToHost));
  return h;
}

// Replica r's block of `per` floats (the references check the first and last replica only).
std::vector<float> slice(const DeviceBuffer<float>& b, std::size_t r, std::size_t per) {
  std::vector<float> h(per);
  BSX_CUDA_CHECK(cudaMemcpy(h.data(), b.get() + r * per, per * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

double copy_bandwidth(cudaStream_t s, std::size_t n) {
  DeviceBuffer<float> a(n), b(n);
  fill(a, 1);
  const double ms = time_ms(s, 10, [&] {
    BSX_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), a.bytes(), cudaMemcpyDeviceToDevice, s));
  });
  const double gbps = 2.0 * a.bytes() / (ms * 1e-3) / 1e9;
  Row r;
  r.name = "device copy " + std::to_string(a.bytes() >> 20) + " MiB (read + write)";
  r.ms = ms;
  r.gbps = gbps;
  add_row(r);
  return gbps;
}

// ------------------------------------------------------------------------------------------

void lab_gemm(cudaStream_t s, int sms, const char* name, int R, bool ta, bool tb, int M, int N,
              int K, bool bias, bool mask, bool relu, bool shared_a, bool tf32 = false) {
  const std::int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
  const std::int64_t sa = shared_a ? 0 : lda * (ta ? K : M), sb = ldb * (tb ? N : K), sc = ldc * M;
  DeviceBuffer<float> A(static_cast<std::size_t>(shared_a ? sa + lda * (ta ? K : M) : sa * R)),
      B(static_cast<std::size_t>(sb * R)), C(static_cast<std::size_t>(sc * R)),
      Bi(static_cast<std::size_t>(N) * R), Mk(static_cast<std::size_t>(sc * R));
  fill(A, 11);
  fill(B, 12, -0.05f, 0.05f);
  fill(Bi, 13);
  fill(Mk, 14);
  k::GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = A.get();
  g.lda = lda;
  g.sa = sa;
  g.B = B.get();
  g.ldb = ldb;
  g.sb = sb;
  g.C = C.get();
  g.ldc = ldc;
  g.sc = sc;
  if (bias) {
    g.bias = Bi.get();
    g.sbias = N;
  }
  if (mask) {
    g.mask = Mk.get();
    g.ldm = N;
    g.smask = sc;
  }
  g.relu = relu;
  const double ms = time_ms(s, 10, [&] { gemm(s, sms, R, ta, tb, g, tf32); });
  // check 512 sampled elements of the first and last replica in double
  const auto hA = host(A), hB = host(B), hC = host(C), hBi = host(Bi), hM = host(Mk);
  std::mt19937 rng(5);
  double worst = 0;
  for (int q = 0; q < 512; ++q) {
    const int r = (q % 2) ? R - 1 : 0;
    const int m = static_cast<int>(rng() % M), n = static_cast<int>(rng() % N);
    double acc = 0;
    for (int kk = 0; kk < K; ++kk) {
      const double a = ta ? hA[r * sa + static_cast<std::int64_t>(kk) * lda + m] : hA[r * sa + m * lda + kk];
      const double b = tb ? hB[r * sb + static_cast<std::int64_t>(n) * ldb + kk] : hB[r * sb + kk * ldb + n];
      acc += a * b;
    }
    double v = acc;
    if (bias) v += hBi[r * N + n];
    if (mask && !(hM[r * sc + m * ldc + n] > 0.0f)) v = 0;
    if (relu && !(v > 0)) v = 0;
    worst = std::max(worst, std::fabs(hC[r * sc + m * ldc + n] - v) / (1e-3 + std::fabs(v)));
  }
  Row row;
  row.name = std::string(name) + (tf32 ? " TF32" : "");
  row.ms = ms;
  row.gflops = 2.0 * R * static_cast<double>(M) * N * K / (ms * 1e-3) / 1e9;
  row.err = worst;
  row.ok = worst < (tf32 ? 2e-2 : 1e-4);
  add_row(row);
}

// Adam's per-replica scalars (optim::Adam::prepare with PyTorch's defaults, lr 1e-3 * (1 + r % 3),
// step t) into sc [R, kMaxScalars].
void upload_adam_scalars(DeviceBuffer<float>& sc, int R, long long t) {
  std::vector<float> h(static_cast<std::size_t>(R) * optim::kMaxScalars, 0.0f);
  const double hp[optim::kMaxHyper] = {0.9, 0.999, 1e-8, 0.0};
  for (int r = 0; r < R; ++r) optim::Adam::prepare(hp, 1e-3 * (1 + r % 3), t, h.data() + static_cast<std::size_t>(r) * optim::kMaxScalars);
  BSX_CUDA_CHECK(cudaMemcpy(sc.get(), h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
}

// ------------------------------------------------------------------------------------------
// Small-batch kernels over R replicas of one layer (in -> out), against a host reference on
// the first and last replica.

void lab_smallb(cudaStream_t s, double bw, int R, int b, int in, int out, bool quick) {
  const std::size_t nW = static_cast<std::size_t>(R) * out * in;
  DeviceBuffer<float> W(nW), bias(static_cast<std::size_t>(R) * out), X(static_cast<std::size_t>(R) * b * in),
      Y(static_cast<std::size_t>(R) * b * out), dY(static_cast<std::size_t>(R) * b * out),
      dX(static_cast<std::size_t>(R) * b * in), gW(nW), gb(static_cast<std::size_t>(R) * out),
      lr(static_cast<std::size_t>(R)), m(nW), v(nW), mb(static_cast<std::size_t>(R) * out),
      vb(static_cast<std::size_t>(R) * out), sc(static_cast<std::size_t>(R) * optim::kMaxScalars);
  fill(W, 21, -0.05f, 0.05f);
  fill(bias, 22, -0.1f, 0.1f);
  fill(X, 23, 0.0f, 1.0f);  // post-ReLU activations: the mask keeps them all
  fill(dY, 24, -0.01f, 0.01f);
  fill(lr, 25, 0.01f, 0.02f);
  fill(m, 26, -1e-3f, 1e-3f);
  fill(v, 27, 0.0f, 1e-6f);
  fill(mb, 28, -1e-3f, 1e-3f);
  fill(vb, 29, 0.0f, 1e-6f);
  upload_adam_scalars(sc, R, 3);
  const std::string tag = "R=" + std::to_string(R) + " b=" + std::to_string(b) + " " +
                          std::to_string(in) + "->" + std::to_string(out);
  const double wbytes = 4.0 * nW;

  // forward
  {
    const double ms = time_ms(s, quick ? 5 : 20, [&] {
      smallb_forward(s, R, b, in, out, X.get(), static_cast<std::int64_t>(b) * in, W.get(), bias.get(), Y.get(), true);
    });
    double worst = 0;
    for (int r : {0, R - 1}) {
      const auto hW = slice(W, r, nW / R), hX = slice(X, r, static_cast<std::size_t>(b) * in),
                 hB = slice(bias, r, out), hY = slice(Y, r, static_cast<std::size_t>(b) * out);
      for (int i = 0; i < b; ++i)
        for (int o = 0; o < out; ++o) {
          double acc = hB[o];
          for (int kk = 0; kk < in; ++kk)
            acc += static_cast<double>(hW[static_cast<std::size_t>(o) * in + kk]) * hX[static_cast<std::size_t>(i) * in + kk];
          if (!(acc > 0)) acc = 0;
          worst = std::max(worst, std::fabs(hY[static_cast<std::size_t>(i) * out + o] - acc) / (1e-3 + std::fabs(acc)));
        }
    }
    Row row;
    row.name = "smallb forward " + tag;
    row.ms = ms;
    row.gbps = wbytes / (ms * 1e-3) / 1e9;
    row.gflops = 2.0 * nW * b / (ms * 1e-3) / 1e9;
    row.err = worst;
    row.ok = worst < 1e-4;
    char note[64];
    std::snprintf(note, sizeof note, "(%.0f%% of copy bw)", 100.0 * row.gbps / bw);
    row.note = note;
    add_row(row);
  }
  // backward: gradients (checked), then the fused SGD and Adam (the table's rule) updates (timed)
  for (int mode : {k::kGrad, k::kSgd, k::kRule}) {
    k::SmallBackwardArgs a;
    a.b = b;
    a.in = in;
    a.out = out;
    a.dY = dY.get();
    a.X = X.get();
    a.W = W.get();
    a.bias = bias.get();
    a.dX = dX.get();
    a.gW = gW.get();
    a.gb = gb.get();
    a.lr = lr.get();
    a.sW[0] = m.get();
    a.sW[1] = v.get();
    a.sb[0] = mb.get();
    a.sb[1] = vb.get();
    a.scalars = sc.get();
    std::vector<float> hW0[2];
    if (mode == k::kGrad) {
      hW0[0] = slice(W, 0, nW / R);
      hW0[1] = slice(W, R - 1, nW / R);
    }
    const double ms = time_ms(s, quick ? 5 : 20, [&] { smallb_backward(s, R, mode, optim::Kind::Adam, a); });
    double worst = 0;
    if (mode == k::kGrad) {
      for (int which = 0; which < 2; ++which) {
        const std::size_t r = which == 0 ? 0 : R - 1;
        const auto hdY = slice(dY, r, static_cast<std::size_t>(b) * out), hX = slice(X, r, static_cast<std::size_t>(b) * in),
                   hgW = slice(gW, r, nW / R), hdX = slice(dX, r, static_cast<std::size_t>(b) * in), hgb = slice(gb, r, out);
        const std::vector<float>& w0 = hW0[which];
        for (int o = 0; o < out; o += 7)
          for (int kk = 0; kk < in; kk += 5) {
            double g = 0;
            for (int i = 0; i < b; ++i)
              g += static_cast<double>(hdY[static_cast<std::size_t>(i) * out + o]) * hX[static_cast<std::size_t>(i) * in + kk];
            worst = std::max(worst, std::fabs(hgW[static_cast<std::size_t>(o) * in + kk] - g) / (1e-7 + std::fabs(g)));
          }
        for (int i = 0; i < b; ++i)
          for (int kk = 0; kk < in; kk += 3) {
            double d = 0;
            for (int o = 0; o < out; ++o)
              d += static_cast<double>(hdY[static_cast<std::size_t>(i) * out + o]) * w0[static_cast<std::size_t>(o) * in + kk];
            if (!(hX[static_cast<std::size_t>(i) * in + kk] > 0)) d = 0;
            worst = std::max(worst, std::fabs(hdX[static_cast<std::size_t>(i) * in + kk] - d) / (1e-6 + std::fabs(d)));
          }
        for (int o = 0; o < out; ++o) {
          double g = 0;
          for (int i = 0; i < b; ++i) g += hdY[static_cast<std::size_t>(i) * out + o];
          worst = std::max(worst, std::fabs(hgb[o] - g) / (1e-7 + std::fabs(g)));
        }
      }
    }
    // bytes: W read (+ written unless kGrad, where gW is written instead); Adam: m, v too
    const double bytes = mode == k::kRule ? 6 * wbytes : 2 * wbytes;
    Row row;
    row.name = std::string("smallb backward+") + (mode == k::kGrad ? "grad " : mode == k::kSgd ? "sgd " : "adam ") + tag;
    row.ms = ms;
    row.gbps = bytes / (ms * 1e-3) / 1e9;
    row.gflops = 4.0 * nW * b / (ms * 1e-3) / 1e9;
    row.err = worst;
    row.ok = mode != k::kGrad || worst < 1e-3;
    char note[64];
    std::snprintf(note, sizeof note, "(%.0f%% of copy bw)", 100.0 * row.gbps / bw);
    row.note = note;
    add_row(row);
  }
}

void lab_update(cudaStream_t s, double bw, int R, std::int64_t n) {
  const std::size_t total = static_cast<std::size_t>(R) * n;
  DeviceBuffer<float> p(total), g(total), m(total), v(total), lr(R), sc(static_cast<std::size_t>(R) * optim::kMaxScalars);
  fill(p, 41);
  fill(g, 42, -0.01f, 0.01f);
  fill(m, 43, -1e-3f, 1e-3f);
  fill(v, 44, 0.0f, 1e-6f);
  fill(lr, 45, 0.01f, 0.02f);
  upload_adam_scalars(sc, R, 5);
  for (int mode : {k::kSgd, k::kRule}) {
    const std::size_t last = static_cast<std::size_t>(R) - 1;
    std::vector<float> p0[2] = {slice(p, 0, n), slice(p, last, n)}, g0[2] = {slice(g, 0, n), slice(g, last, n)},
                       m0[2] = {slice(m, 0, n), slice(m, last, n)}, v0[2] = {slice(v, 0, n), slice(v, last, n)};
    const auto lr0 = host(lr), sc0 = host(sc);
    k::UpdateArgs a;
    a.p = p.get();
    a.g = g.get();
    a.state[0] = m.get();
    a.state[1] = v.get();
    a.n = n;
    a.lr = lr.get();
    a.scalars = sc.get();
    const bool vec = n % 4 == 0;  // as CudaEnsemble's update_all
    auto run = [&] {
      if (mode == k::kSgd) {
        if (vec) launch_update<k::kSgd, true>(s, R, a);
        else launch_update<k::kSgd, false>(s, R, a);
      } else {
        if (vec) launch_update<k::kRule, true, optim::Adam>(s, R, a);
        else launch_update<k::kRule, false, optim::Adam>(s, R, a);
      }
    };
    run();  // one checked run
    BSX_CUDA_CHECK(cudaStreamSynchronize(s));
    double worst = 0;
    for (int which = 0; which < 2; ++which) {
      const std::size_t r = which == 0 ? 0 : last;
      const auto p1 = slice(p, r, n);
      for (std::int64_t q = 0; q < n; q += 97) {
        float want;
        if (mode == k::kSgd) {
          want = p0[which][q] - lr0[r] * g0[which][q];
        } else {
          // Adam's rule written out here (host, double), with the replica's scalars
          const float* c = sc0.data() + r * optim::kMaxScalars;  // step_size, bc2_sqrt, 1-b1, b2, 1-b2, eps
          const double gg = g0[which][q];
          const double mm = m0[which][q] + (gg - m0[which][q]) * c[2];
          const double vv = v0[which][q] * c[3] + c[4] * gg * gg;
          want = static_cast<float>(p0[which][q] - c[0] * (mm / (std::sqrt(vv) / c[1] + c[5])));
        }
        worst = std::max(worst, static_cast<double>(std::fabs(p1[q] - want)) / (1e-6 + std::fabs(want)));
      }
    }
    const double ms = time_ms(s, 10, run);
    const double bytes = 4.0 * total * (mode == k::kSgd ? 3 : 7);
    Row row;
    row.name = std::string("update ") + (mode == k::kSgd ? "sgd" : "adam") + " R=" + std::to_string(R) + " n=" + std::to_string(n);
    row.ms = ms;
    row.gbps = bytes / (ms * 1e-3) / 1e9;
    row.err = worst;
    row.ok = worst < 1e-5;
    char note[64];
    std::snprintf(note, sizeof note, "(%.0f%% of copy bw)", 100.0 * row.gbps / bw);
    row.note = note;
    add_row(row);
  }
}

void lab_loss_and_stats(cudaStream_t s, double bw, int R, int rows, int C, std::int64_t n) {
  DeviceBuffer<float> z(static_cast<std::size_t>(R) * rows * C), d(z.size());
  DeviceBuffer<int> y(static_cast<std::size_t>(R) * rows);
  std::vector<int> hy(y.size());
  for (std::size_t i = 0; i < hy.size(); ++i) hy[i] = static_cast<int>((i * 7) % C);
  BSX_CUDA_CHECK(cudaMemcpy(y.get(), hy.data(), y.size() * sizeof(int), cudaMemcpyHostToDevice));
  fill(z, 51, -3.0f, 3.0f);
  const int chunks = (rows + k::kLossRowsPerBlock - 1) / k::kLossRowsPerBlock;
  DeviceBuffer<double> lp(static_cast<std::size_t>(R) * chunks), acc(R);
  DeviceBuffer<long long> hp(static_cast<std::size_t>(R) * chunks), hacc(R);
  auto run = [&] {
    BSX_CUDA_CHECK(cudaMemsetAsync(acc.get(), 0, acc.bytes(), s));
    BSX_CUDA_CHECK(cudaMemsetAsync(hacc.get(), 0, hacc.bytes(), s));
    for_replica_chunks(R, [&](int r0, int rc) {
      BSX_LAUNCH(dim3(chunks, rc), k::kLossWarps * k::kWarp, 0, s, k::loss_rows)(
          z.get(), y.get(), rows, rows, C, 1.0f / rows, d.get(), lp.get(), hp.get(), chunks, r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH((rc + 255) / 256, 256, 0, s, k::loss_combine)(rc, chunks, lp.get(), hp.get(), acc.get(), hacc.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
  };
  const double ms = time_ms(s, 10, run);
  const auto hz = host(z);
  std::vector<double> ha(R);
  BSX_CUDA_CHECK(cudaMemcpy(ha.data(), acc.get(), acc.bytes(), cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int r : {0, R - 1}) {
    double ls = 0;
    for (int i = 0; i < rows; ++i) {
      const float* zr = hz.data() + (static_cast<std::size_t>(r) * rows + i) * C;
      double mx = zr[0];
      for (int c = 1; c < C; ++c) mx = std::max(mx, static_cast<double>(zr[c]));
      double se = 0;
      for (int c = 0; c < C; ++c) se += std::exp(zr[c] - mx);
      ls += mx + std::log(se) - zr[hy[static_cast<std::size_t>(r) * rows + i]];
    }
    worst = std::max(worst, std::fabs(ha[r] - ls) / std::fabs(ls));
  }
  Row row;
  row.name = "loss head R=" + std::to_string(R) + " rows=" + std::to_string(rows) + " C=" + std::to_string(C);
  row.ms = ms;
  row.gbps = 8.0 * z.size() / (ms * 1e-3) / 1e9;
  row.err = worst;
  row.ok = worst < 1e-9;
  add_row(row);

  DeviceBuffer<float> p(static_cast<std::size_t>(R) * n), q(p.size());
  fill(p, 61);
  fill(q, 62);
  const int sch = static_cast<int>((n + k::kStatsChunk - 1) / k::kStatsChunk);
  DeviceBuffer<double> part(static_cast<std::size_t>(R) * sch * 4), out(static_cast<std::size_t>(R) * 8);
  const double ms2 = time_ms(s, 10, [&] {
    for_replica_chunks(R, [&](int r0, int rc) {
      BSX_LAUNCH(dim3(sch, rc), k::kStatsThreads, 0, s, k::stats_partial)(p.get(), q.get(), n, sch, part.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH((rc + 127) / 128, 128, 0, s, k::stats_combine)(rc, sch, part.get(), out.get(), 1, 0, 0, r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
  });
  std::vector<double> ho(out.size());
  BSX_CUDA_CHECK(cudaMemcpy(ho.data(), out.get(), out.bytes(), cudaMemcpyDeviceToHost));
  double w2 = 0;
  for (int r : {0, R - 1}) {
    const auto hp2 = slice(p, r, n), hq = slice(q, r, n);
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double x = hp2[i], yy = hq[i];
      a0 += x * x;
      a1 += (x - yy) * (x - yy);
      a2 += x * yy;
      a3 += yy * yy;
    }
    const double want[4] = {a0, a1, a2, a3};
    for (int j = 0; j < 4; ++j) w2 = std::max(w2, std::fabs(ho[r * 8 + j] - want[j]) / std::fabs(want[j]));
  }
  Row r2;
  r2.name = "stats R=" + std::to_string(R) + " n=" + std::to_string(n);
  r2.ms = ms2;
  r2.gbps = 8.0 * p.size() / (ms2 * 1e-3) / 1e9;
  r2.err = w2;
  r2.ok = w2 < 1e-9;
  char note[64];
  std::snprintf(note, sizeof note, "(%.0f%% of copy bw)", 100.0 * r2.gbps / bw);
  r2.note = note;
  add_row(r2);
}

// Whole training steps through the engine.
void lab_train(double bw, const std::vector<int>& widths, int R, int b, std::int64_t steps, bool adam,
               bool graphs) {
  setenv("BSX_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  cpu::Dataset ds;
  ds.id = 0x1ab0000 + static_cast<std::uint64_t>(R);
  ds.count = 4096;
  ds.dim = widths.front();
  ds.classes = widths.back();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> U(-1, 1);
  ds.features.resize(static_cast<std::size_t>(ds.count) * ds.dim);
  for (float& x : ds.features) x = U(rng);
  ds.labels.resize(ds.count);
  for (auto& y : ds.labels) y = static_cast<int>(rng() % ds.classes);
  CudaEnsemble ens(R, widths);
  std::vector<std::uint64_t> seeds(R);
  for (int r = 0; r < R; ++r) seeds[r] = r + 1;
  ens.init_xavier(seeds);
  if (adam) {
    OptimizerConfig c;
    c.kind = optim::Kind::Adam;
    c.hyper.assign(static_cast<std::size_t>(R) * optim::kMaxHyper, 0.0);
    for (int r = 0; r < R; ++r) {
      c.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + 0] = 0.9;
      c.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + 1] = 0.999;
      c.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + 2] = 1e-8;
    }
    ens.set_optimizer(c);
  }
  const std::int64_t n = steps * b;
  std::vector<std::int32_t> idx(static_cast<std::size_t>(R) * n);
  for (auto& i : idx) i = static_cast<std::int32_t>(rng() % ds.count);
  std::vector<float> lr(R, adam ? 1e-4f : 0.01f);
  std::vector<double> loss(R);
  ens.train(ds, idx.data(), n, b, lr.data(), loss.data());  // warm-up
  std::vector<double> t;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ens.train(ds, idx.data(), n, b, lr.data(), loss.data());
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double ms_step = t[1] / steps;
  const double P = static_cast<double>(ens.parameter_count());
  const double bytes = 4.0 * P * R * (adam ? 7 : 3);  // the floor's bytes per step
  Row row;
  row.name = std::string("train step R=") + std::to_string(R) + " b=" + std::to_string(b) + (adam ? " adam" : " sgd") +
             (graphs ? " graphs" : " no-graphs");
  row.ms = ms_step;
  row.gbps = bytes / (ms_step * 1e-3) / 1e9;
  row.gflops = 6.0 * P * R * b / (ms_step * 1e-3) / 1e9;
  row.ok = std::isfinite(loss[0]);
  char note[96];
  std::snprintf(note, sizeof note, "(floor %.3f ms at copy bw: %.0f%%)", bytes / (bw * 1e9) * 1e3,
                100.0 * (bytes / (bw * 1e9) * 1e3) / ms_step);
  row.note = note;
  add_row(row);
  unsetenv("BSX_CUDA_GRAPHS");
}

}  // namespace lab

int main(int argc, char** argv) {
  using namespace lab;
  bool quick = false, tiny = false;
  const char* json = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--tiny") == 0) tiny = quick = true;  // small shapes (emulation)
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
  }
  try {
    const DeviceInfo info = probe();
    if (!info.available) {
      std::printf("cuda_lab: no usable GPU: %s\n", info.reason.c_str());
      return 2;
    }
    std::printf("cuda_lab on %s (sm_%d%d, %d SMs, %.1f GiB)\n", info.name.c_str(), info.sm_major,
                info.sm_minor, info.multiprocessors, info.total_memory / 1073741824.0);
    Stream stream;
    const cudaStream_t s = stream.get();
    const int sms = info.multiprocessors;
    const double bw = copy_bandwidth(s, tiny ? std::size_t{1} << 20 : std::size_t{1} << 28);
    if (tiny) {
      lab_gemm(s, sms, "gemm fwd  R=2 40x72x52 (nt, bias, relu)", 2, false, true, 40, 72, 52, true, false, true, false);
      lab_gemm(s, 1, "gemm dW   R=2 72x52x40 (tn)", 2, true, false, 72, 52, 40, false, false, false, false);
      lab_gemm(s, sms, "gemm dX   R=2 40x52x72 (nn, mask)", 2, false, false, 40, 52, 72, false, true, false, false);
      lab_gemm(s, 1, "gemm eval R=2 130x72x52 shared input (nt)", 2, false, true, 130, 72, 52, true, false, true, true);
      lab_gemm(s, sms, "gemm dX   R=2 40x52x72 (nn, mask)", 2, false, false, 40, 52, 72, false, true, false, false, true);
      for (int b : {1, 3, 8}) {
        lab_smallb(s, bw, 3, b, 36, 20, quick);
        lab_smallb(s, bw, 3, b, 7, 5, quick);
      }
      lab_update(s, bw, 3, 1000);
      lab_update(s, bw, 3, 1001);
      lab_loss_and_stats(s, bw, 3, 70, 10, 10000);
      lab_train(bw, {36, 20, 12, 10}, 3, 1, 20, false, true);
      lab_train(bw, {36, 20, 12, 10}, 3, 1, 20, true, false);
      lab_train(bw, {36, 20, 12, 10}, 3, 16, 4, true, true);
    } else {
      const std::vector<int> mlp = {784, 1024, 1024, 10};
      // the MLP's GEMMs (784-1024-1024-10) at b = 256, R = 2, and at b = 64, R = 100
      lab_gemm(s, sms, "gemm fwd  R=2 256x1024x784 (nt, bias, relu)", 2, false, true, 256, 1024, 784, true, false, true, false);
      lab_gemm(s, sms, "gemm dW   R=2 1024x784x256 (tn)", 2, true, false, 1024, 784, 256, false, false, false, false);
      lab_gemm(s, sms, "gemm dX   R=2 256x1024x1024 (nn, mask)", 2, false, false, 256, 1024, 1024, false, true, false, false);
      lab_gemm(s, sms, "gemm fwd  R=100 64x1024x1024 (nt, bias, relu)", 100, false, true, 64, 1024, 1024, true, false, true, false);
      lab_gemm(s, sms, "gemm eval R=2 4096x1024x784 shared input (nt)", 2, false, true, 4096, 1024, 784, true, false, true, true);
      lab_gemm(s, sms, "gemm square R=1 4096^3 (nn)", 1, false, false, 4096, 4096, 4096, false, false, false, false);
      // the opt-in TF32 tensor-core path (BSX_CUDA_TF32=1) on the same shapes
      lab_gemm(s, sms, "gemm fwd  R=2 256x1024x784 (nt, bias, relu)", 2, false, true, 256, 1024, 784, true, false, true, false, true);
      lab_gemm(s, sms, "gemm dW   R=2 1024x784x256 (tn)", 2, true, false, 1024, 784, 256, false, false, false, false, true);
      lab_gemm(s, sms, "gemm dX   R=2 256x1024x1024 (nn, mask)", 2, false, false, 256, 1024, 1024, false, true, false, false, true);
      lab_gemm(s, sms, "gemm square R=1 4096^3 (nn)", 1, false, false, 4096, 4096, 4096, false, false, false, false, true);
      // small-batch kernels: the trial step's layers over R = 1000 replicas
      for (int b : {1, 8}) {
        lab_smallb(s, bw, 1000, b, 784, 1024, quick);
        lab_smallb(s, bw, 1000, b, 1024, 1024, quick);
        if (!quick) lab_smallb(s, bw, 1000, b, 1024, 10, quick);
      }
      lab_smallb(s, bw, 2, 1, 784, 1024, quick);
      lab_update(s, bw, 1000, 1024 * 784);
      lab_loss_and_stats(s, bw, 1000, 256, 10, 1024 * 784);
      // whole steps
      lab_train(bw, mlp, 1000, 1, quick ? 8 : 32, false, true);
      lab_train(bw, mlp, 1000, 1, quick ? 8 : 32, true, true);
      lab_train(bw, mlp, 2, 1, 2000, false, true);
      lab_train(bw, mlp, 2, 1, 2000, false, false);
      lab_train(bw, mlp, 2, 64, 200, false, true);
      lab_train(bw, mlp, 100, 64, 20, false, true);
    }
  } catch (const std::exception& e) {
    std::printf("cuda_lab: error: %s\n", e.what());
    ++g_fail;
  }
  std::printf("\n%-52s %10s %10s %9s %9s\n", "kernel", "ms", "GFLOP/s", "GB/s", "err");
  for (const Row& r : g_rows)
    std::printf("%-52s %10.4f %10.1f %9.1f %9.2e %s %s\n", r.name.c_str(), r.ms, r.gflops, r.gbps, r.err,
                r.ok ? "" : "FAIL", r.note.c_str());
  if (json) {
    if (FILE* f = std::fopen(json, "w")) {
      std::fprintf(f, "[\n");
      for (std::size_t i = 0; i < g_rows.size(); ++i) {
        const Row& r = g_rows[i];
        std::fprintf(f, "  {\"name\": \"%s\", \"ms\": %.6g, \"gflops\": %.6g, \"gbps\": %.6g, \"err\": %.3g, \"ok\": %s}%s\n",
                     r.name.c_str(), r.ms, r.gflops, r.gbps, r.err, r.ok ? "true" : "false",
                     i + 1 < g_rows.size() ? "," : "");
      }
      std::fprintf(f, "]\n");
      std::fclose(f);
    }
  }
  std::printf("cuda_lab: %zu measurements, %d failed\n", g_rows.size(), g_fail);
  return g_fail == 0 ? 0 : 1;
}
