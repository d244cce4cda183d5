// The CUDA Ensemble: R MLP replicas on one GPU, every tensor one device block over replicas.
// Per training step (all replicas in each launch): gather the batch rows from the
// device-resident dataset, forward through each layer, fused loss head, backward, update.
// Batches of up to 8 rows per replica take the bandwidth-bound small-batch kernels
// (kernels/smallb.cuh: each weight read once in the forward and read+written once in a
// backward that also applies the update); larger batches take the tiled GEMM
// (kernels/gemm.cuh) with fused bias/ReLU/mask epilogues, column sums and a per-tensor update.
// A training call of many steps is captured once as a CUDA graph and replayed (the step
// index lives on the device), which removes the launch gaps that dominate small steps.
// Gradient trials run the same SGD step with the last layer's weight gradient kept and summed
// on the device (kernels/trials.cuh); their step loop is replayed the same way.
// Semantics: CpuEnsemble (cpu/cpu_ensemble.cpp), within float tolerance.
// Environment: BSX_CUDA_TF32=1 runs the GEMMs on TF32 tensor cores (kernels/gemm_tf32.cuh;
// about 1e-3 relative error; the default is exact fp32 everywhere); BSX_CUDA_GRAPHS=0 turns
// graphs off. Both are read when an ensemble is created.
#include "cuda/cuda_ensemble.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cpu/philox.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels/data.cuh"
#include "cuda/kernels/gemm.cuh"
#include "cuda/kernels/gemm_tf32.cuh"
#include "cuda/kernels/loss.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/kernels/smallb.cuh"
#include "cuda/kernels/trials.cuh"
#include "cuda/kernels/update.cuh"

namespace bsx::cuda {

namespace k = kernels;

namespace detail {

// ---------------------------------------------------------------------------------------
// Device copies of datasets, uploaded once at first use and shared by all ensembles of the
// process (keyed by Dataset::id, which is never reused); the least recently used beyond
// kDatasetCacheEntries is dropped (freed once no call still holds it).

struct DeviceDataset {
  std::uint64_t id = 0;
  std::int64_t count = 0, dim = 0;
  DeviceBuffer<float> x;  // [count, dim]
  DeviceBuffer<int> y;    // [count]
};

static constexpr std::size_t kDatasetCacheEntries = 4;

static std::shared_ptr<const DeviceDataset> upload_dataset(const cpu::Dataset& ds) {
  auto d = std::make_shared<DeviceDataset>();
  d->id = ds.id;
  d->count = ds.count;
  d->dim = ds.dim;
  d->x.resize(ds.features.size());
  d->y.resize(ds.labels.size());
  BSX_CUDA_CHECK(cudaMemcpy(d->x.get(), ds.features.data(), d->x.bytes(), cudaMemcpyHostToDevice));
  BSX_CUDA_CHECK(cudaMemcpy(d->y.get(), ds.labels.data(), d->y.bytes(), cudaMemcpyHostToDevice));
  return d;
}

static std::shared_ptr<const DeviceDataset> device_dataset(const cpu::Dataset& ds) {
  if (ds.features.size() != static_cast<std::size_t>(ds.count * ds.dim) ||
      ds.labels.size() != static_cast<std::size_t>(ds.count))
    throw std::invalid_argument("dataset arrays do not match its count and dim");
  if (ds.id == 0) return upload_dataset(ds);  // not registered: never cached
  static std::mutex mu;
  // Never destroyed: freeing device memory after the runtime has shut down at exit fails.
  static auto* cache = new std::list<std::shared_ptr<const DeviceDataset>>();
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = cache->begin(); it != cache->end(); ++it) {
    if ((*it)->id == ds.id && (*it)->count == ds.count && (*it)->dim == ds.dim) {
      cache->splice(cache->begin(), *cache, it);
      return cache->front();
    }
  }
  cache->push_front(upload_dataset(ds));
  while (cache->size() > kDatasetCacheEntries) cache->pop_back();
  return cache->front();
}

}  // namespace detail

namespace {

using detail::DeviceDataset;

// Evaluation works in chunks of rows sized so that the activations of all replicas stay
// under this many floats (1 GiB), at most kEvalMaxRows rows.
constexpr std::int64_t kEvalBudgetFloats = std::int64_t{1} << 28;
constexpr std::int64_t kEvalMaxRows = 4096;
// A training call of at least this many full steps runs as replays of a captured graph.
constexpr std::int64_t kGraphMinSteps = 16;

bool env_flag(const char* name, bool dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  return std::strcmp(v, "0") != 0;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

unsigned grid_dim(std::int64_t n, std::int64_t per, const char* what) {
  const std::int64_t g = (n + per - 1) / per;
  if (g > 2147483647)
    throw std::runtime_error(std::string("cuda: ") + what + ": problem too large for one launch");
  return static_cast<unsigned>(std::max<std::int64_t>(g, 1));
}

// Runs f(r0, count) over the replicas in launches of at most 65535 (the y/z grid limit).
template <typename F>
void for_replica_chunks(int R, F&& f) {
  for (int r0 = 0; r0 < R; r0 += k::kMaxGridYZ) f(r0, std::min(k::kMaxGridYZ, R - r0));
}

// ---------------------------------------------------------------------------------------
// Launchers: pick the kernel variant (tile size, rows per replica, float4 or not, update
// mode) and split the replicas into launches the grid limits allow.

template <int BM, int BN>
void launch_gemm_tiles(cudaStream_t st, bool ta, bool tb, const dim3& grid, const k::GemmArgs& a) {
  constexpr int threads = (BM / 8) * (BN / 8);
  if (!ta && !tb) {
    BSX_LAUNCH(grid, threads, 0, st, k::sgemm_tiled<BM, BN, false, false>)(a);
  } else if (!ta && tb) {
    BSX_LAUNCH(grid, threads, 0, st, k::sgemm_tiled<BM, BN, false, true>)(a);
  } else if (ta && !tb) {
    BSX_LAUNCH(grid, threads, 0, st, k::sgemm_tiled<BM, BN, true, false>)(a);
  } else {
    BSX_LAUNCH(grid, threads, 0, st, k::sgemm_tiled<BM, BN, true, true>)(a);
  }
  BSX_CUDA_CHECK_LAUNCH();
}

void launch_gemm_tf32(cudaStream_t st, bool ta, bool tb, const dim3& grid, const k::GemmArgs& a) {
  if (!ta && !tb) {
    BSX_LAUNCH(grid, k::kTf32Threads, 0, st, k::sgemm_tf32<false, false>)(a);
  } else if (!ta && tb) {
    BSX_LAUNCH(grid, k::kTf32Threads, 0, st, k::sgemm_tf32<false, true>)(a);
  } else if (ta && !tb) {
    BSX_LAUNCH(grid, k::kTf32Threads, 0, st, k::sgemm_tf32<true, false>)(a);
  } else {
    BSX_LAUNCH(grid, k::kTf32Threads, 0, st, k::sgemm_tf32<true, true>)(a);
  }
  BSX_CUDA_CHECK_LAUNCH();
}

// R GEMMs of one shape (see kernels/gemm.cuh for the arguments); 128x128 tiles when they
// give at least two blocks per multiprocessor, else 64x64; with tf32, the tensor-core kernel.
void gemm(cudaStream_t st, int sm_count, int R, bool ta, bool tb, k::GemmArgs a, bool tf32 = false) {
  if (a.M <= 0 || a.N <= 0) return;
  a.vec_a = a.lda % 4 == 0 && a.sa % 4 == 0 && aligned16(a.A);
  a.vec_b = a.ldb % 4 == 0 && a.sb % 4 == 0 && aligned16(a.B);
  a.vec_c = a.ldc % 4 == 0 && a.sc % 4 == 0 && aligned16(a.C);
  if (tf32) {
    const std::int64_t gy = (a.M + k::kTf32Tile - 1) / k::kTf32Tile;
    if (gy > k::kMaxGridYZ) throw std::runtime_error("cuda: gemm: too many rows for one launch");
    for_replica_chunks(R, [&](int r0, int rc) {
      a.r0 = r0;
      const dim3 grid(grid_dim(a.N, k::kTf32Tile, "gemm"), static_cast<unsigned>(gy), static_cast<unsigned>(rc));
      launch_gemm_tf32(st, ta, tb, grid, a);
    });
    return;
  }
  const std::int64_t tiles128 = ((a.M + 127) / 128) * static_cast<std::int64_t>((a.N + 127) / 128);
  const bool big = tiles128 * R >= 2 * static_cast<std::int64_t>(sm_count);
  const int bm = big ? 128 : 64;
  const std::int64_t gy = (a.M + bm - 1) / bm;
  if (gy > k::kMaxGridYZ) throw std::runtime_error("cuda: gemm: too many rows for one launch");
  for_replica_chunks(R, [&](int r0, int rc) {
    a.r0 = r0;
    const dim3 grid(grid_dim(a.N, bm, "gemm"), static_cast<unsigned>(gy), static_cast<unsigned>(rc));
    if (big) {
      launch_gemm_tiles<128, 128>(st, ta, tb, grid, a);
    } else {
      launch_gemm_tiles<64, 64>(st, ta, tb, grid, a);
    }
  });
}

template <int MAXB, bool VEC>
void launch_smallb_forward(cudaStream_t st, int R, int b, int in, int out, const float* X,
                           std::int64_t sx, const float* W, const float* bias, float* Y, bool relu) {
  for_replica_chunks(R, [&](int r0, int rc) {
    const dim3 grid(grid_dim(out, k::kSmallFwdWarps, "forward"), static_cast<unsigned>(rc));
    BSX_LAUNCH(grid, k::kSmallFwdWarps * k::kWarp, 0, st, k::smallb_forward<MAXB, VEC>)(
        b, in, out, X, sx, W, bias, Y, relu ? 1 : 0, r0);
    BSX_CUDA_CHECK_LAUNCH();
  });
}

template <bool VEC>
void smallb_forward_b(cudaStream_t st, int R, int b, int in, int out, const float* X,
                      std::int64_t sx, const float* W, const float* bias, float* Y, bool relu) {
  if (b <= 1) {
    launch_smallb_forward<1, VEC>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  } else if (b <= 2) {
    launch_smallb_forward<2, VEC>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  } else if (b <= 4) {
    launch_smallb_forward<4, VEC>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  } else {
    launch_smallb_forward<8, VEC>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  }
}

void smallb_forward(cudaStream_t st, int R, int b, int in, int out, const float* X,
                    std::int64_t sx, const float* W, const float* bias, float* Y, bool relu) {
  const bool vec = in % 4 == 0 && sx % 4 == 0 && aligned16(X) && aligned16(W);
  if (vec) {
    smallb_forward_b<true>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  } else {
    smallb_forward_b<false>(st, R, b, in, out, X, sx, W, bias, Y, relu);
  }
}

template <int MAXB, bool VEC, int MODE, typename Rule>
void launch_smallb_backward(cudaStream_t st, int R, k::SmallBackwardArgs a) {
  constexpr int cpb = k::kWarp * (VEC ? 4 : 1);
  for_replica_chunks(R, [&](int r0, int rc) {
    a.r0 = r0;
    const dim3 grid(grid_dim(a.in, cpb, "backward"), static_cast<unsigned>(rc));
    const dim3 block(k::kWarp, k::kSmallBwdRows);
    BSX_LAUNCH(grid, block, 0, st, k::smallb_backward<MAXB, VEC, MODE, Rule>)(a);
    BSX_CUDA_CHECK_LAUNCH();
  });
}

template <int MAXB, int MODE, typename Rule>
void smallb_backward_vec(cudaStream_t st, int R, bool vec, const k::SmallBackwardArgs& a) {
  if (vec) {
    launch_smallb_backward<MAXB, true, MODE, Rule>(st, R, a);
  } else {
    launch_smallb_backward<MAXB, false, MODE, Rule>(st, R, a);
  }
}

template <int MODE, typename Rule = optim::Sgd>
void smallb_backward_b(cudaStream_t st, int R, bool vec, const k::SmallBackwardArgs& a) {
  if (a.b <= 1) {
    smallb_backward_vec<1, MODE, Rule>(st, R, vec, a);
  } else if (a.b <= 2) {
    smallb_backward_vec<2, MODE, Rule>(st, R, vec, a);
  } else if (a.b <= 4) {
    smallb_backward_vec<4, MODE, Rule>(st, R, vec, a);
  } else {
    smallb_backward_vec<8, MODE, Rule>(st, R, vec, a);
  }
}

// mode kGrad, kSgd, or kRule with the optimiser `kind`.
void smallb_backward(cudaStream_t st, int R, int mode, optim::Kind kind, const k::SmallBackwardArgs& a) {
  bool vec = a.in % 4 == 0 && aligned16(a.X) && aligned16(a.W);
  if (a.dX) vec = vec && aligned16(a.dX);
  if (mode == k::kGrad) vec = vec && aligned16(a.gW);
  if (mode == k::kGrad) {
    smallb_backward_b<k::kGrad>(st, R, vec, a);
  } else if (mode == k::kSgd) {
    smallb_backward_b<k::kSgd>(st, R, vec, a);
  } else {
    optim::visit(kind, [&](auto rule) { smallb_backward_b<k::kRule, decltype(rule)>(st, R, vec, a); });
  }
}

template <int MODE, bool VEC, typename Rule = optim::Sgd>
void launch_update(cudaStream_t st, int R, k::UpdateArgs a) {
  for_replica_chunks(R, [&](int r0, int rc) {
    a.r0 = r0;
    const dim3 grid(grid_dim(a.n, k::kUpdateThreads * k::kUpdatePerThread, "update"),
                    static_cast<unsigned>(rc));
    BSX_LAUNCH(grid, k::kUpdateThreads, 0, st, k::update_tensor<MODE, VEC, Rule>)(a);
    BSX_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The device state and the launch sequences of the steps. Launch sequences never
// synchronise or allocate, so a training step can be captured into a graph.

struct CudaEnsemble::State {
  struct DeviceSelect {
    explicit DeviceSelect(int d) { BSX_CUDA_CHECK(cudaSetDevice(d)); }
  };

  State(int dev, int replicas, const std::vector<int>& w) : select(dev), device(dev), R(replicas), widths(w) {}

  DeviceSelect select;  // first member: the device is current before anything is created
  int device = 0;
  int R = 0;
  std::vector<int> widths;
  int sm_count = 1;
  bool graphs = true;
  bool tf32 = false;  // BSX_CUDA_TF32=1: GEMMs on TF32 tensor cores
  Stream stream;

  std::vector<DeviceBuffer<float>> param, snap, grad;  // per tensor [R, numel]
  std::vector<DeviceBuffer<float>> state[optim::kMaxState];  // state[k][t]: optimiser state slot k
  std::vector<DeviceBuffer<float>> act;    // act[l]: [R, rows, widths[l]], l = 0..L
  std::vector<DeviceBuffer<float>> delta;  // delta[l]: [R, rows, widths[l]], l = 1..L
  DeviceBuffer<int> labels;                // [R, rows]
  std::int64_t cap_rows = 0;

  DeviceBuffer<int> idx;  // [R, n] of the current call
  PinnedBuffer<int> idx_host;
  DeviceBuffer<float> lr;  // [R]
  PinnedBuffer<float> lr_host;
  DeviceBuffer<long long> steps0;  // [R] optimiser steps before the current call
  PinnedBuffer<long long> steps_host;
  DeviceBuffer<long long> step_counter;  // [1] steps done so far by the graph of this call
  DeviceBuffer<double> hyper;   // [R, kMaxHyper] the optimiser's hyperparameters
  DeviceBuffer<float> scalars;  // [R, kMaxScalars] the current step's (kRule)
  DeviceBuffer<double> loss_part, loss_acc;           // [R, chunks], [R]
  DeviceBuffer<long long> hits_part, hits_acc;
  PinnedBuffer<double> loss_host;
  PinnedBuffer<long long> hits_host;
  DeviceBuffer<float> logprobs;  // [R, b, classes]
  DeviceBuffer<double> stats_part, stats_out;
  DeviceBuffer<unsigned> keys;  // [R, 2]
  // gradient trials: S_mean, S_sum [R, numel(last weight)], per-step |g|^2 partials [R, chunks],
  // statistics [R, kTrialStats], the two histograms' edges and counts (mean's, then sum's)
  DeviceBuffer<double> trial_s_mean, trial_s_sum, trial_part, trial_stats;
  DeviceBuffer<float> trial_edges, trial_export;
  DeviceBuffer<unsigned long long> trial_hist;

  cudaStream_t st() const { return stream.get(); }
  DeviceBuffer<float>& slot(Slot which, int t) {
    if (which == Slot::Param) return param[t];
    if (which == Slot::Snapshot) return snap[t];
    const int k = state_index(which);
    if (k < 0 || k >= optim::kMaxState) throw std::invalid_argument("unknown slot");
    return state[k][t];
  }
  int L() const { return static_cast<int>(widths.size()) - 1; }
  std::int64_t numel(int t) const {
    const int l = t / 2;
    return (t % 2 == 0) ? static_cast<std::int64_t>(widths[l + 1]) * widths[l] : widths[l + 1];
  }

  // --- allocation (outside any capture)

  void ensure_workspace(std::int64_t rows) {
    if (rows <= cap_rows) return;
    for (std::size_t l = 0; l < widths.size(); ++l) {
      const std::size_t n = static_cast<std::size_t>(R) * rows * widths[l];
      act[l].resize(n);
      if (l > 0) delta[l].resize(n);
    }
    labels.resize(static_cast<std::size_t>(R) * rows);
    cap_rows = rows;
  }

  // Gradient buffers of tensors first, first + 1, ... (the small-batch steps need none, the
  // trials only the last layer's).
  void ensure_grads(std::size_t first = 0) {
    for (std::size_t t = first; t < grad.size(); ++t) grad[t].resize(param[t].size());
  }

  void ensure_loss_buffers(std::int64_t rows) {
    const std::int64_t chunks = (rows + k::kLossRowsPerBlock - 1) / k::kLossRowsPerBlock;
    loss_part.reserve(static_cast<std::size_t>(R) * chunks);
    hits_part.reserve(static_cast<std::size_t>(R) * chunks);
    loss_acc.reserve(R);
    hits_acc.reserve(R);
  }

  void zero_loss() {
    BSX_CUDA_CHECK(cudaMemsetAsync(loss_acc.get(), 0, sizeof(double) * R, st()));
    BSX_CUDA_CHECK(cudaMemsetAsync(hits_acc.get(), 0, sizeof(long long) * R, st()));
  }

  // Copies the running loss sums and hit counts to the host (synchronises).
  void read_loss(std::vector<double>& loss, std::vector<std::int64_t>* hits) {
    loss_host.reserve(R);
    hits_host.reserve(R);
    BSX_CUDA_CHECK(cudaMemcpyAsync(loss_host.get(), loss_acc.get(), sizeof(double) * R,
                                   cudaMemcpyDeviceToHost, st()));
    BSX_CUDA_CHECK(cudaMemcpyAsync(hits_host.get(), hits_acc.get(), sizeof(long long) * R,
                                   cudaMemcpyDeviceToHost, st()));
    stream.sync();
    loss.assign(loss_host.get(), loss_host.get() + R);
    if (hits) hits->assign(hits_host.get(), hits_host.get() + R);
  }

  // Uploads indices [count] through the pinned staging buffer.
  void upload_indices(const std::int32_t* indices, std::int64_t count) {
    idx_host.reserve(static_cast<std::size_t>(count));
    idx.reserve(static_cast<std::size_t>(count));
    std::memcpy(idx_host.get(), indices, sizeof(int) * count);
    BSX_CUDA_CHECK(cudaMemcpyAsync(idx.get(), idx_host.get(), sizeof(int) * count,
                                   cudaMemcpyHostToDevice, st()));
  }

  // --- launch sequences

  // act[0], labels <- dataset rows idx[r * stride + off + i], i < b (off += *dyn_step * b).
  void gather(const DeviceDataset& dd, std::int64_t stride, std::int64_t off, int b,
              const long long* dyn_step) {
    const std::int64_t dim = widths.front();
    const bool vec = dim % 4 == 0;
    for_replica_chunks(R, [&](int r0, int rc) {
      const dim3 grid(static_cast<unsigned>(b), static_cast<unsigned>(rc));
      if (vec) {
        BSX_LAUNCH(grid, k::kGatherThreads, 0, st(), k::gather_rows<true>)(
            dd.x.get(), dd.y.get(), dim, idx.get(), stride, off, b, act[0].get(), labels.get(),
            dyn_step, r0);
      } else {
        BSX_LAUNCH(grid, k::kGatherThreads, 0, st(), k::gather_rows<false>)(
            dd.x.get(), dd.y.get(), dim, idx.get(), stride, off, b, act[0].get(), labels.get(),
            dyn_step, r0);
      }
      BSX_CUDA_CHECK_LAUNCH();
    });
  }

  // act[l+1] = act[l] W[l]^T + b[l] (ReLU but on the last layer); act[0] is `input` with a
  // stride of input_stride floats between replicas (0: all replicas read the same rows).
  void forward_layers(const float* input, std::int64_t input_stride, std::int64_t rows) {
    for (int l = 0; l < L(); ++l) {
      const int in = widths[l], out = widths[l + 1];
      const float* A = (l == 0) ? input : act[l].get();
      const std::int64_t sa = (l == 0) ? input_stride : rows * in;
      const bool relu = l < L() - 1;
      if (rows <= k::kSmallBatchMax) {
        smallb_forward(st(), R, static_cast<int>(rows), in, out, A, sa, param[2 * l].get(),
                       param[2 * l + 1].get(), act[l + 1].get(), relu);
      } else {
        k::GemmArgs g;
        g.M = static_cast<int>(rows);
        g.N = out;
        g.K = in;
        g.A = A;
        g.lda = in;
        g.sa = sa;
        g.B = param[2 * l].get();
        g.ldb = in;
        g.sb = static_cast<std::int64_t>(out) * in;
        g.C = act[l + 1].get();
        g.ldc = out;
        g.sc = rows * out;
        g.bias = param[2 * l + 1].get();
        g.sbias = out;
        g.relu = relu ? 1 : 0;
        // act[l+1][r] (rows, out) = act[l][r] (rows, in) * W[r]^T (in, out) + b[r]
        gemm(st(), sm_count, R, false, true, g, tf32);
      }
    }
  }

  // Loss head on act[L]: adds per-replica loss sums and hits to loss_acc / hits_acc, and
  // writes dlogits (scaled by 1/rows) into delta[L] when want_grad.
  void loss_head(const int* lab, std::int64_t labels_stride, std::int64_t rows, bool want_grad) {
    const int C = widths.back();
    const int chunks = static_cast<int>((rows + k::kLossRowsPerBlock - 1) / k::kLossRowsPerBlock);
    const float scale = 1.0f / static_cast<float>(rows);
    for_replica_chunks(R, [&](int r0, int rc) {
      const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rc));
      BSX_LAUNCH(grid, k::kLossWarps * k::kWarp, 0, st(), k::loss_rows)(
          act[L()].get(), lab, labels_stride, rows, C, scale,
          want_grad ? delta[L()].get() : nullptr, loss_part.get(), hits_part.get(), chunks, r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH(grid_dim(rc, 256, "loss"), 256, 0, st(), k::loss_combine)(
          rc, chunks, loss_part.get(), hits_part.get(), loss_acc.get(), hits_acc.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
  }

  // The optimiser's per-replica scalars for the step that brings the count to steps0[r] + s
  // (+ *dyn_step when set), into `scalars` (kRule).
  void step_scalars(long long s, const long long* dyn_step, const OptimizerConfig& opt) {
    optim::visit(opt.kind, [&](auto rule) {
      BSX_LAUNCH(grid_dim(R, 256, "optimizer"), 256, 0, st(), k::step_scalars<decltype(rule)>)(
          R, steps0.get(), s, dyn_step, lr.get(), hyper.get(), scalars.get());
    });
    BSX_CUDA_CHECK_LAUNCH();
  }

  // The optimiser state of tensor t (none held: nullptrs).
  void state_ptrs(int t, float** out) {
    for (int k = 0; k < optim::kMaxState; ++k)
      out[k] = state[k][static_cast<std::size_t>(t)].empty() ? nullptr : state[k][static_cast<std::size_t>(t)].get();
  }

  // Backward from delta[L] through every layer. mode kGrad: gradients into grad[];
  // kSgd / kRule: parameters updated (lr, or step_scalars' output, on the device).
  // keep_grad_layer >= 0 (small batches, kSgd): that layer's gradients go into grad[] instead,
  // and its parameters are left for the caller to update (the layers below it are updated with
  // the delta its weights, not yet updated, pass down: the order of an SGD step).
  void backward(std::int64_t rows, int mode, const OptimizerConfig& opt, int keep_grad_layer = -1) {
    if (rows <= k::kSmallBatchMax) {
      for (int l = L() - 1; l >= 0; --l) {
        const int lmode = l == keep_grad_layer ? static_cast<int>(k::kGrad) : mode;
        k::SmallBackwardArgs a;
        a.b = static_cast<int>(rows);
        a.in = widths[l];
        a.out = widths[l + 1];
        a.dY = delta[l + 1].get();
        a.X = act[l].get();
        a.W = param[2 * l].get();
        a.bias = param[2 * l + 1].get();
        a.dX = l > 0 ? delta[l].get() : nullptr;
        if (lmode == k::kGrad) {
          a.gW = grad[2 * l].get();
          a.gb = grad[2 * l + 1].get();
        } else if (lmode == k::kSgd) {
          a.lr = lr.get();
        } else {
          state_ptrs(2 * l, a.sW);
          state_ptrs(2 * l + 1, a.sb);
          a.scalars = scalars.get();
        }
        smallb_backward(st(), R, lmode, opt.kind, a);
      }
      return;
    }
    for (int l = L() - 1; l >= 0; --l) {
      const int in = widths[l], out = widths[l + 1];
      // dW[r] (out, in) = delta[r]^T (out, b) * act[l][r] (b, in)
      k::GemmArgs gw;
      gw.M = out;
      gw.N = in;
      gw.K = static_cast<int>(rows);
      gw.A = delta[l + 1].get();
      gw.lda = out;
      gw.sa = rows * out;
      gw.B = act[l].get();
      gw.ldb = in;
      gw.sb = rows * in;
      gw.C = grad[2 * l].get();
      gw.ldc = in;
      gw.sc = static_cast<std::int64_t>(out) * in;
      gemm(st(), sm_count, R, true, false, gw, tf32);
      // db[r] (out) = column sums of delta[r]
      for_replica_chunks(R, [&](int r0, int rc) {
        const dim3 grid(grid_dim(out, 256, "bias gradient"), static_cast<unsigned>(rc));
        BSX_LAUNCH(grid, 256, 0, st(), k::column_sums)(delta[l + 1].get(), rows, out,
                                                        grad[2 * l + 1].get(), r0);
        BSX_CUDA_CHECK_LAUNCH();
      });
      if (l > 0) {
        // delta[l][r] (b, in) = (delta[r] (b, out) * W[r] (out, in)) masked by act[l] > 0
        k::GemmArgs gd;
        gd.M = static_cast<int>(rows);
        gd.N = in;
        gd.K = out;
        gd.A = delta[l + 1].get();
        gd.lda = out;
        gd.sa = rows * out;
        gd.B = param[2 * l].get();
        gd.ldb = in;
        gd.sb = static_cast<std::int64_t>(out) * in;
        gd.C = delta[l].get();
        gd.ldc = in;
        gd.sc = rows * in;
        gd.mask = act[l].get();
        gd.ldm = in;
        gd.smask = rows * in;
        gemm(st(), sm_count, R, false, false, gd, tf32);
      }
    }
    if (mode != k::kGrad) update_all(mode, opt);
  }

  // Updates tensors first, first + 1, ... from grad[].
  // Updates tensors [first, end) (end beyond the last: to the last).
  void update_all(int mode, const OptimizerConfig& opt, std::size_t first = 0, std::size_t end = SIZE_MAX) {
    for (std::size_t t = first; t < param.size() && t < end; ++t) {
      k::UpdateArgs a;
      a.p = param[t].get();
      a.g = grad[t].get();
      a.n = numel(static_cast<int>(t));
      a.lr = lr.get();
      const bool vec = a.n % 4 == 0;  // cudaMalloc bases are 256-byte aligned
      if (mode == k::kSgd) {
        if (vec) {
          launch_update<k::kSgd, true>(st(), R, a);
        } else {
          launch_update<k::kSgd, false>(st(), R, a);
        }
      } else {
        state_ptrs(static_cast<int>(t), a.state);
        a.scalars = scalars.get();
        optim::visit(opt.kind, [&](auto rule) {
          using Rule = decltype(rule);
          if (vec) {
            launch_update<k::kRule, true, Rule>(st(), R, a);
          } else {
            launch_update<k::kRule, false, Rule>(st(), R, a);
          }
        });
      }
    }
  }

  // One training step of b rows per replica at column offset `off` of idx [R, n]
  // (+ *dyn_step * b and optimiser step s + *dyn_step when dyn_step is set). plain: the
  // study's SGD (kSgd), else the optimiser's rule (kRule).
  void train_step(const DeviceDataset& dd, std::int64_t n, std::int64_t off, int b, long long s,
                  const long long* dyn_step, const OptimizerConfig& opt, bool plain) {
    const int mode = plain ? k::kSgd : k::kRule;
    gather(dd, n, off, b, dyn_step);
    forward_layers(act[0].get(), static_cast<std::int64_t>(b) * widths.front(), b);
    loss_head(labels.get(), b, b, true);
    if (mode == k::kRule) step_scalars(s, dyn_step, opt);
    backward(b, mode, opt);
    if (dyn_step != nullptr) {
      BSX_LAUNCH(1, 1, 0, st(), k::advance_counter)(step_counter.get());
      BSX_CUDA_CHECK_LAUNCH();
    }
  }

  // --- gradient trials (kernels/trials.cuh)

  // The weight tensor whose gradient the trials measure (set by grad_trials; default the last).
  std::size_t trial_tensor = SIZE_MAX;
  std::size_t trial_weight() const { return trial_tensor != SIZE_MAX ? trial_tensor : 2 * static_cast<std::size_t>(L() - 1); }
  int trial_chunks() const {
    return static_cast<int>(grid_dim(numel(static_cast<int>(trial_weight())), k::kTrialChunk, "trials"));
  }

  // Allocates and zeroes the sums and statistics, uploads the edges of both histograms
  // (the mean's, then the sum's) and zeroes their counts. The edges are read from the host
  // before the next synchronisation.
  void begin_trials(const HistogramSpec& hm, const HistogramSpec& hs) {
    const std::size_t total = static_cast<std::size_t>(R) * numel(static_cast<int>(trial_weight()));
    trial_s_mean.reserve(total);
    trial_s_sum.reserve(total);
    trial_part.reserve(static_cast<std::size_t>(R) * trial_chunks() * 2);
    trial_stats.reserve(static_cast<std::size_t>(R) * kTrialStats);
    const std::size_t em = static_cast<std::size_t>(hm.bins) + 1, es = static_cast<std::size_t>(hs.bins) + 1;
    trial_edges.reserve(em + es);
    trial_hist.reserve(em + es + 4);
    BSX_CUDA_CHECK(cudaMemsetAsync(trial_s_mean.get(), 0, total * sizeof(double), st()));
    BSX_CUDA_CHECK(cudaMemsetAsync(trial_s_sum.get(), 0, total * sizeof(double), st()));
    BSX_CUDA_CHECK(cudaMemsetAsync(trial_stats.get(), 0, sizeof(double) * R * kTrialStats, st()));
    BSX_CUDA_CHECK(cudaMemsetAsync(trial_hist.get(), 0, (em + es + 4) * sizeof(unsigned long long), st()));
    BSX_CUDA_CHECK(cudaMemcpyAsync(trial_edges.get(), hm.edges, em * sizeof(float),
                                   cudaMemcpyHostToDevice, st()));
    BSX_CUDA_CHECK(cudaMemcpyAsync(trial_edges.get() + em, hs.edges, es * sizeof(float),
                                   cudaMemcpyHostToDevice, st()));
  }

  // One trial step: an SGD step of b rows per replica (train_step's sequence) whose measured
  // layer's weight gradient is kept and added to the trial sums before the update. s: the
  // step's index in the trial (+ *dyn_step when set, which also moves the batch offset on, as
  // in gather).
  void trial_step(const DeviceDataset& dd, std::int64_t n, std::int64_t off, int b, long long s,
                  const long long* dyn_step, const OptimizerConfig& opt) {
    const std::size_t wt = trial_weight();
    const bool small = b <= k::kSmallBatchMax;
    gather(dd, n, off, b, dyn_step);
    forward_layers(act[0].get(), static_cast<std::int64_t>(b) * widths.front(), b);
    loss_head(labels.get(), b, b, true);
    // small batches: the one-pass update of every other layer; larger: every gradient
    backward(b, small ? k::kSgd : k::kGrad, opt, small ? static_cast<int>(wt / 2) : -1);
    const std::int64_t n_w = numel(static_cast<int>(wt));
    const int chunks = trial_chunks();
    for_replica_chunks(R, [&](int r0, int rc) {
      const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rc));
      BSX_LAUNCH(grid, k::kTrialThreads, 0, st(), k::trial_step_partial)(
          grad[wt].get(), n_w, b, trial_s_mean.get(), trial_s_sum.get(), chunks,
          trial_part.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH(grid_dim(rc, 128, "trials"), 128, 0, st(), k::trial_step_combine)(
          rc, chunks, trial_part.get(), b, s, dyn_step, trial_stats.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
    // small: the measured layer's weight and bias; larger: every tensor
    update_all(k::kSgd, opt, small ? wt : 0, small ? wt + 2 : SIZE_MAX);
    if (dyn_step != nullptr) {
      BSX_LAUNCH(1, 1, 0, st(), k::advance_counter)(step_counter.get());
      BSX_CUDA_CHECK_LAUNCH();
    }
  }

  void histogram(const double* values, std::int64_t n, const float* edges, int bins,
                 unsigned long long* counts) {
    const unsigned grid = grid_dim(n, k::kHistPerBlock, "histogram");
    if (bins <= k::kHistSharedBins) {
      BSX_LAUNCH(grid, k::kHistThreads, 0, st(), k::histogram_shared)(values, n, edges, bins, counts);
    } else {
      BSX_LAUNCH(grid, k::kHistThreads, 0, st(), k::histogram_global)(values, n, edges, bins, counts);
    }
    BSX_CUDA_CHECK_LAUNCH();
  }

  // After `steps` trial steps: the norms of the sums and the means over the steps into
  // trial_stats, float(S_mean) into trial_export when want_export, both histograms.
  void finish_trials(std::int64_t steps, const HistogramSpec& hm, const HistogramSpec& hs,
                     bool want_export) {
    const std::int64_t n_w = numel(static_cast<int>(trial_weight()));
    const int chunks = trial_chunks();
    if (want_export) trial_export.reserve(static_cast<std::size_t>(R) * n_w);
    for_replica_chunks(R, [&](int r0, int rc) {
      const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rc));
      BSX_LAUNCH(grid, k::kTrialThreads, 0, st(), k::trial_sums_partial)(
          trial_s_mean.get(), trial_s_sum.get(), n_w, chunks, trial_part.get(),
          want_export ? trial_export.get() : nullptr, r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH(grid_dim(rc, 128, "trials"), 128, 0, st(), k::trial_finish)(
          rc, chunks, trial_part.get(), steps, trial_stats.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
    const std::int64_t total = static_cast<std::int64_t>(R) * n_w;
    histogram(trial_s_mean.get(), total, trial_edges.get(), hm.bins, trial_hist.get());
    histogram(trial_s_sum.get(), total, trial_edges.get() + hm.bins + 1, hs.bins,
              trial_hist.get() + hm.bins + 3);
  }
};

// ---------------------------------------------------------------------------------------

CudaEnsemble::CudaEnsemble(int replicas, std::vector<int> widths)
    : Ensemble(replicas, std::move(widths)) {
  const DeviceInfo info = probe();
  if (!info.available) throw std::runtime_error("cuda: unavailable (" + info.reason + ")");
  s_ = std::make_unique<State>(info.device, replicas_, widths_);
  State& s = *s_;
  s.sm_count = std::max(1, info.multiprocessors);
  s.graphs = env_flag("BSX_CUDA_GRAPHS", true);
  s.tf32 = env_flag("BSX_CUDA_TF32", false);
  const int T = tensor_count();
  s.param.resize(T);
  s.snap.resize(T);
  for (auto& st : s.state) st.resize(T);
  s.grad.resize(T);
  for (int t = 0; t < T; ++t) {
    s.param[t].resize(static_cast<std::size_t>(replicas_) * tensor_numel(t));
    BSX_CUDA_CHECK(cudaMemsetAsync(s.param[t].get(), 0, s.param[t].bytes(), s.st()));
  }
  s.act.resize(widths_.size());
  s.delta.resize(widths_.size());
  s.stream.sync();
}

CudaEnsemble::~CudaEnsemble() {
  if (s_) cudaStreamSynchronize(s_->st());  // queued work finishes before its buffers go
}

void CudaEnsemble::check_dataset(const cpu::Dataset& data) const {
  if (data.dim != widths_.front())
    throw std::invalid_argument("dataset has " + std::to_string(data.dim) +
                                " features per sample, the model's input width is " +
                                std::to_string(widths_.front()));
  if (data.classes != widths_.back())
    throw std::invalid_argument("dataset has " + std::to_string(data.classes) +
                                " classes, the model's output width is " +
                                std::to_string(widths_.back()));
}

void CudaEnsemble::check_indices(const cpu::Dataset& data, const std::int32_t* indices,
                                 std::int64_t count) const {
  for (std::int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= data.count)
      throw std::out_of_range("index " + std::to_string(indices[i]) + " at position " +
                              std::to_string(i) + " is outside the dataset (0.." +
                              std::to_string(data.count - 1) + ")");
}

void CudaEnsemble::init_xavier(const std::vector<std::uint64_t>& seeds) {
  if (static_cast<int>(seeds.size()) != replicas_)
    throw std::invalid_argument("init: one seed per replica expected");
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  std::vector<unsigned> keys(2 * static_cast<std::size_t>(replicas_));
  for (int r = 0; r < replicas_; ++r) {
    std::uint32_t key[2];
    philox_key_from_seed(seeds[r], key);
    keys[2 * r] = key[0];
    keys[2 * r + 1] = key[1];
  }
  s.keys.reserve(keys.size());
  BSX_CUDA_CHECK(cudaMemcpyAsync(s.keys.get(), keys.data(), keys.size() * sizeof(unsigned),
                                 cudaMemcpyHostToDevice, s.st()));
  for (int l = 0; l < layers(); ++l) {
    const std::int64_t fan_in = widths_[l], fan_out = widths_[l + 1];
    const float bound = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
    const std::int64_t n = fan_in * fan_out;
    float* W = s.param[2 * l].get();
    for_replica_chunks(replicas_, [&](int r0, int rc) {
      const dim3 grid(grid_dim((n + 3) / 4, k::kInitThreads, "init"), static_cast<unsigned>(rc));
      BSX_LAUNCH(grid, k::kInitThreads, 0, s.st(), k::xavier_init)(
          W, n, s.keys.get(), kStreamInitWeights + static_cast<unsigned>(l), bound, r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
    BSX_CUDA_CHECK(cudaMemsetAsync(s.param[2 * l + 1].get(), 0, s.param[2 * l + 1].bytes(), s.st()));
  }
  std::fill(steps_.begin(), steps_.end(), 0);
  for (auto& st : s.state)
    for (auto& buf : st)
      if (!buf.empty()) BSX_CUDA_CHECK(cudaMemsetAsync(buf.get(), 0, buf.bytes(), s.st()));
  s.stream.sync();  // the host `keys` must outlive its copy
}

void CudaEnsemble::snapshot() {
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  for (int t = 0; t < tensor_count(); ++t) {
    s.snap[t].resize(s.param[t].size());
    BSX_CUDA_CHECK(cudaMemcpyAsync(s.snap[t].get(), s.param[t].get(), s.param[t].bytes(),
                                   cudaMemcpyDeviceToDevice, s.st()));
  }
  s.stream.sync();
  has_snapshot_ = true;
}

void CudaEnsemble::resize_state(int slots) {
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  for (int k = 0; k < optim::kMaxState; ++k) {
    for (int t = 0; t < tensor_count(); ++t) {
      DeviceBuffer<float>& buf = s.state[k][static_cast<std::size_t>(t)];
      if (k < slots) {
        buf.resize(s.param[t].size());
        BSX_CUDA_CHECK(cudaMemsetAsync(buf.get(), 0, buf.bytes(), s.st()));
      } else {
        buf.release();
      }
    }
  }
  s.stream.sync();
}

void CudaEnsemble::zero_state(int r) {
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  for (int k = 0; k < state_slots_; ++k) {
    for (int t = 0; t < tensor_count(); ++t) {
      const std::int64_t n = tensor_numel(t);
      BSX_CUDA_CHECK(cudaMemsetAsync(s.state[k][static_cast<std::size_t>(t)].get() + static_cast<std::int64_t>(r) * n, 0,
                                     sizeof(float) * n, s.st()));
    }
  }
  s.stream.sync();
}

StepPathInfo CudaEnsemble::step_path(int batch) const {
  if (batch <= k::kSmallBatchMax)
    return {"small-batch", "bandwidth-bound small-batch kernels (b <= " + std::to_string(k::kSmallBatchMax) +
                               "), the update fused into the backward pass"};
  return {"gemm", "tiled GEMM kernels (b > " + std::to_string(k::kSmallBatchMax) + ")"};
}

void CudaEnsemble::train(const cpu::Dataset& data, const std::int32_t* indices, std::int64_t n,
                         int batch, const float* lr, double* loss_out) {
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (n < 1) throw std::invalid_argument("train: need at least one index per replica");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * n);
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const auto dd = detail::device_dataset(data);
  const bool plain = plain_sgd();
  const int R = replicas_;
  const std::int64_t rows = std::min<std::int64_t>(batch, n);
  s.ensure_workspace(rows);
  s.ensure_loss_buffers(rows);
  if (rows > k::kSmallBatchMax) s.ensure_grads();
  s.upload_indices(indices, static_cast<std::int64_t>(R) * n);
  s.lr_host.reserve(R);
  s.lr.reserve(R);
  std::memcpy(s.lr_host.get(), lr, sizeof(float) * R);
  BSX_CUDA_CHECK(cudaMemcpyAsync(s.lr.get(), s.lr_host.get(), sizeof(float) * R,
                                 cudaMemcpyHostToDevice, s.st()));
  if (!plain) {
    // the optimiser's hyperparameters and step counts, for step_scalars on the device
    s.steps_host.reserve(R);
    s.steps0.reserve(R);
    s.scalars.reserve(static_cast<std::size_t>(R) * optim::kMaxScalars);
    s.hyper.reserve(static_cast<std::size_t>(R) * optim::kMaxHyper);
    for (int r = 0; r < R; ++r) s.steps_host.get()[r] = steps_[r];
    BSX_CUDA_CHECK(cudaMemcpyAsync(s.steps0.get(), s.steps_host.get(), sizeof(long long) * R,
                                   cudaMemcpyHostToDevice, s.st()));
    BSX_CUDA_CHECK(cudaMemcpy(s.hyper.get(), opt_.hyper.data(), sizeof(double) * opt_.hyper.size(),
                              cudaMemcpyHostToDevice));
  }
  s.zero_loss();

  const std::int64_t full = n / batch;
  std::int64_t done = 0;  // steps enqueued so far in this call
  if (s.graphs && full >= kGraphMinSteps) {
    // Every full step is the same launch sequence with the step index read on the device.
    s.step_counter.reserve(1);
    BSX_CUDA_CHECK(cudaMemsetAsync(s.step_counter.get(), 0, sizeof(long long), s.st()));
    Graph graph;
    graph.capture(s.st(), [&] {
      s.train_step(*dd, n, 0, batch, 1, s.step_counter.get(), opt_, plain);
    });
    for (std::int64_t i = 0; i < full; ++i) graph.launch(s.st());
    done = full;
    for (auto& st : steps_) st += full;
    // the graph must not be destroyed while its launches are pending
    s.stream.sync();
  }
  for (std::int64_t off = done * batch; off < n; off += batch) {
    const int b = static_cast<int>(std::min<std::int64_t>(batch, n - off));
    ++done;
    s.train_step(*dd, n, off, b, done, nullptr, opt_, plain);
    for (auto& st : steps_) st += 1;
  }
  std::vector<double> loss;
  s.read_loss(loss, nullptr);
  for (int r = 0; r < R; ++r) loss_out[r] = loss[r] / static_cast<double>(n);
}

EvalResult CudaEnsemble::evaluate(const cpu::Dataset& data, std::int64_t start,
                                  std::int64_t count) {
  check_dataset(data);
  if (start < 0 || count < 1 || start + count > data.count)
    throw std::out_of_range("evaluate: rows [" + std::to_string(start) + ", " +
                            std::to_string(start + count) + ") are outside the dataset (" +
                            std::to_string(data.count) + " rows)");
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const auto dd = detail::device_dataset(data);
  std::int64_t per_row = 0;
  for (std::size_t l = 0; l < widths_.size(); ++l) per_row += (l > 0 ? 2 : 1) * widths_[l];
  std::int64_t chunk = kEvalBudgetFloats / (per_row * replicas_);
  chunk = std::max<std::int64_t>(1, std::min({chunk, kEvalMaxRows, count}));
  s.ensure_workspace(chunk);
  s.ensure_loss_buffers(chunk);
  s.zero_loss();
  const std::int64_t dim = widths_.front();
  for (std::int64_t off = 0; off < count; off += chunk) {
    const std::int64_t rows = std::min(chunk, count - off);
    // all replicas read the same input rows: stride 0 between replicas
    s.forward_layers(dd->x.get() + (start + off) * dim, 0, rows);
    s.loss_head(dd->y.get() + start + off, 0, rows, false);
  }
  EvalResult res;
  res.count = count;
  s.read_loss(res.loss_sum, &res.correct);
  return res;
}

void CudaEnsemble::forward(const cpu::Dataset& data, const std::int32_t* indices, int batch,
                           float* logprobs) {
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * batch);
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const auto dd = detail::device_dataset(data);
  s.ensure_workspace(batch);
  s.upload_indices(indices, static_cast<std::int64_t>(replicas_) * batch);
  s.gather(*dd, batch, 0, batch, nullptr);
  s.forward_layers(s.act[0].get(), static_cast<std::int64_t>(batch) * widths_.front(), batch);
  const int C = widths_.back();
  const std::size_t total = static_cast<std::size_t>(replicas_) * batch * C;
  s.logprobs.reserve(total);
  for_replica_chunks(replicas_, [&](int r0, int rc) {
    const dim3 grid(grid_dim(batch, k::kLossWarps, "forward"), static_cast<unsigned>(rc));
    BSX_LAUNCH(grid, k::kLossWarps * k::kWarp, 0, s.st(), k::log_softmax_rows)(
        s.act[layers()].get(), batch, C, s.logprobs.get(), r0);
    BSX_CUDA_CHECK_LAUNCH();
  });
  BSX_CUDA_CHECK(cudaMemcpyAsync(logprobs, s.logprobs.get(), total * sizeof(float),
                                 cudaMemcpyDeviceToHost, s.st()));
  s.stream.sync();
}

void CudaEnsemble::gradients(const cpu::Dataset& data, const std::int32_t* indices, int batch,
                             const std::vector<float*>& grads, double* loss_out) {
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (static_cast<int>(grads.size()) != tensor_count())
    throw std::invalid_argument("gradients: one output per tensor expected");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * batch);
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const auto dd = detail::device_dataset(data);
  s.ensure_workspace(batch);
  s.ensure_loss_buffers(batch);
  s.ensure_grads();
  s.upload_indices(indices, static_cast<std::int64_t>(replicas_) * batch);
  s.zero_loss();
  s.gather(*dd, batch, 0, batch, nullptr);
  s.forward_layers(s.act[0].get(), static_cast<std::int64_t>(batch) * widths_.front(), batch);
  s.loss_head(s.labels.get(), batch, batch, true);
  s.backward(batch, k::kGrad, opt_);
  for (int t = 0; t < tensor_count(); ++t)
    BSX_CUDA_CHECK(cudaMemcpyAsync(grads[t], s.grad[t].get(), s.grad[t].bytes(),
                                   cudaMemcpyDeviceToHost, s.st()));
  std::vector<double> loss;
  s.read_loss(loss, nullptr);  // synchronises
  for (int r = 0; r < replicas_; ++r) loss_out[r] = loss[r] / batch;
}

void CudaEnsemble::get_tensor(Slot slot, int t, float* out) const {
  State& s = *s_;
  const std::size_t n = static_cast<std::size_t>(replicas_) * tensor_numel(t);  // checks t
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  if (read_gives_zeros(slot)) {
    std::fill(out, out + n, 0.0f);  // optimiser state not held: it is zero
    return;
  }
  const DeviceBuffer<float>& buf = s.slot(slot, t);
  BSX_CUDA_CHECK(cudaMemcpyAsync(out, buf.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s.st()));
  s.stream.sync();
}

void CudaEnsemble::set_tensor(Slot slot, int t, const float* in) {
  State& s = *s_;
  const std::size_t n = static_cast<std::size_t>(replicas_) * tensor_numel(t);  // checks t
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  prepare_write(slot);
  DeviceBuffer<float>& buf = s.slot(slot, t);
  buf.resize(n);
  BSX_CUDA_CHECK(cudaMemcpyAsync(buf.get(), in, n * sizeof(float), cudaMemcpyHostToDevice, s.st()));
  s.stream.sync();
  if (slot == Slot::Snapshot) {
    // a snapshot set tensor by tensor counts once every tensor has one
    bool all = true;
    for (int j = 0; j < tensor_count(); ++j) all = all && s.snap[j].size() == s.param[j].size();
    has_snapshot_ = all;
  }
}

void CudaEnsemble::set_tensor_broadcast(Slot slot, int t, const float* one) {
  State& s = *s_;
  const std::size_t per = static_cast<std::size_t>(tensor_numel(t));  // checks t
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  prepare_write(slot);
  DeviceBuffer<float>& buf = s.slot(slot, t);
  buf.resize(per * replicas_);
  BSX_CUDA_CHECK(cudaMemcpyAsync(buf.get(), one, per * sizeof(float), cudaMemcpyHostToDevice, s.st()));
  // replicas [0, done) hold the values: copy them onto [done, 2 done), doubling each time
  for (std::size_t done = 1; done < static_cast<std::size_t>(replicas_); done *= 2) {
    const std::size_t count = std::min(done, static_cast<std::size_t>(replicas_) - done);
    BSX_CUDA_CHECK(cudaMemcpyAsync(buf.get() + done * per, buf.get(), count * per * sizeof(float),
                                   cudaMemcpyDeviceToDevice, s.st()));
  }
  s.stream.sync();
  if (slot == Slot::Snapshot) {
    bool all = true;
    for (int j = 0; j < tensor_count(); ++j) all = all && s.snap[j].size() == s.param[j].size();
    has_snapshot_ = all;
  }
}

void CudaEnsemble::reset_to_snapshot() {
  if (!has_snapshot_) throw std::logic_error("reset_to_snapshot: no snapshot has been taken");
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  for (int t = 0; t < tensor_count(); ++t)
    BSX_CUDA_CHECK(cudaMemcpyAsync(s.param[t].get(), s.snap[t].get(), s.param[t].bytes(),
                                   cudaMemcpyDeviceToDevice, s.st()));
  s.stream.sync();
}


void CudaEnsemble::stats(double* out) const {
  if (!has_snapshot_) throw std::logic_error("stats: no snapshot has been taken");
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const int L = layers();
  const std::size_t total = static_cast<std::size_t>(replicas_) * L * kStatsPerLayer;
  s.stats_out.reserve(total);
  for (int t = 0; t < tensor_count(); ++t) {
    const std::int64_t n = tensor_numel(t);
    const int chunks = static_cast<int>(grid_dim(n, k::kStatsChunk, "stats"));
    s.stats_part.reserve(static_cast<std::size_t>(replicas_) * chunks * 4);
    for_replica_chunks(replicas_, [&](int r0, int rc) {
      const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rc));
      BSX_LAUNCH(grid, k::kStatsThreads, 0, s.st(), k::stats_partial)(
          s.param[t].get(), s.snap[t].get(), n, chunks, s.stats_part.get(), r0);
      BSX_CUDA_CHECK_LAUNCH();
      BSX_LAUNCH(grid_dim(rc, 128, "stats"), 128, 0, s.st(), k::stats_combine)(
          rc, chunks, s.stats_part.get(), s.stats_out.get(), L, t / 2, t % 2, r0);
      BSX_CUDA_CHECK_LAUNCH();
    });
  }
  BSX_CUDA_CHECK(cudaMemcpyAsync(out, s.stats_out.get(), total * sizeof(double),
                                 cudaMemcpyDeviceToHost, s.st()));
  s.stream.sync();
}

GradTrialsResult CudaEnsemble::grad_trials(const cpu::Dataset& data, const std::int32_t* indices,
                                           std::int64_t n, int batch, float lr,
                                           const HistogramSpec& hist_mean,
                                           const HistogramSpec& hist_sum, float* export_s,
                                           int layer_in) {
  check_dataset(data);
  const int layer = check_grad_trials(n, batch, lr, hist_mean, hist_sum, layer_in);
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * n);
  State& s = *s_;
  BSX_CUDA_CHECK(cudaSetDevice(s.device));
  const auto dd = detail::device_dataset(data);
  const int R = replicas_;
  const std::int64_t rows = std::min<std::int64_t>(batch, n);
  s.ensure_workspace(rows);
  s.ensure_loss_buffers(rows);
  s.trial_tensor = 2 * static_cast<std::size_t>(layer);
  // small batches update every other layer in the backward: only the measured layer's
  // gradients are kept (the buffers from it on are allocated)
  s.ensure_grads(rows > k::kSmallBatchMax ? 0 : s.trial_weight());
  s.upload_indices(indices, static_cast<std::int64_t>(R) * n);
  s.lr_host.reserve(R);
  s.lr.reserve(R);
  std::fill(s.lr_host.get(), s.lr_host.get() + R, lr);
  BSX_CUDA_CHECK(cudaMemcpyAsync(s.lr.get(), s.lr_host.get(), sizeof(float) * R,
                                 cudaMemcpyHostToDevice, s.st()));
  s.zero_loss();  // the loss head adds to it; the trials do not report it
  s.begin_trials(hist_mean, hist_sum);

  // The steps are queued without a synchronisation; the one at the end waits for all of them.
  // `graph` is declared first so that it outlives the guard's wait when a call below throws.
  Graph graph;
  struct WaitOnExit {
    cudaStream_t st;
    ~WaitOnExit() { cudaStreamSynchronize(st); }
  } wait_on_exit{s.st()};
  const std::int64_t steps = (n + batch - 1) / batch;
  const std::int64_t full = n / batch;
  std::int64_t done = 0;  // steps enqueued so far
  if (s.graphs && full >= kGraphMinSteps) {
    s.step_counter.reserve(1);
    BSX_CUDA_CHECK(cudaMemsetAsync(s.step_counter.get(), 0, sizeof(long long), s.st()));
    graph.capture(s.st(), [&] { s.trial_step(*dd, n, 0, batch, 0, s.step_counter.get(), opt_); });
    for (std::int64_t i = 0; i < full; ++i) graph.launch(s.st());
    done = full;
  }
  for (std::int64_t off = done * batch; off < n; off += batch, ++done) {
    const int b = static_cast<int>(std::min<std::int64_t>(batch, n - off));
    s.trial_step(*dd, n, off, b, done, nullptr, opt_);
  }
  s.finish_trials(steps, hist_mean, hist_sum, export_s != nullptr);

  GradTrialsResult res;
  res.stats.resize(static_cast<std::size_t>(R) * kTrialStats);
  const int hm = hist_mean.bins + 3, hs = hist_sum.bins + 3;
  std::vector<unsigned long long> counts(static_cast<std::size_t>(hm + hs));
  BSX_CUDA_CHECK(cudaMemcpyAsync(res.stats.data(), s.trial_stats.get(), res.stats.size() * sizeof(double),
                                 cudaMemcpyDeviceToHost, s.st()));
  BSX_CUDA_CHECK(cudaMemcpyAsync(counts.data(), s.trial_hist.get(), counts.size() * sizeof(unsigned long long),
                                 cudaMemcpyDeviceToHost, s.st()));
  if (export_s != nullptr)
    BSX_CUDA_CHECK(cudaMemcpyAsync(export_s, s.trial_export.get(),
                                   static_cast<std::size_t>(R) * tensor_numel(static_cast<int>(s.trial_weight())) * sizeof(float),
                                   cudaMemcpyDeviceToHost, s.st()));
  s.stream.sync();
  for (auto& st : steps_) st += steps;
  res.hist_mean.assign(counts.begin(), counts.begin() + hm);
  res.hist_sum.assign(counts.begin() + hm, counts.end());
  return res;
}

}  // namespace bsx::cuda
