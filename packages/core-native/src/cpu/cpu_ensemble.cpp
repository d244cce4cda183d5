// The CPU Ensemble: forward, backward and updates of R MLP replicas, one batched GEMM per
// layer and pass over all replicas. Reference for the maths: packages/core-ts/test/reference/
// (float64 MLP written independently in TypeScript).
#include "cpu/cpu_ensemble.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "cpu/philox.h"
#include "cpu/smallb.h"
#include "cpu/thread_pool.h"
#include "cpu/update.h"
#include "cpu/fpenv.h"

namespace bsx::cpu {

namespace {
// Rows per evaluation chunk: large enough for an efficient GEMM, small enough that R replicas'
// activations stay modest.
constexpr std::int64_t kEvalChunk = 512;
// Rows per forward block of frozen gradient trials (lr 0): whole steps, about this many rows.
constexpr std::int64_t kFrozenRows = 1024;

// One step of a gradient trial: adds the measured layer's gradient g (of the batch-mean loss, b
// samples) to S_mean and b*g to S_sum, and its norm to the step-norm sums (stats layout in
// engine/ensemble.h); the first step also records |g_1|^2.
void trial_step(const float* g, std::int64_t numel, int b, bool first, double* s_mean,
                double* s_sum, double* st) {
  double n2 = 0;
  for (std::int64_t i = 0; i < numel; ++i) {
    const double v = g[i];
    n2 += v * v;
    s_mean[i] += v;
    s_sum[i] += b * v;
  }
  st[2] += std::sqrt(n2);
  st[3] += b * std::sqrt(n2);
  if (first) st[4] = n2;
}
}  // namespace

CpuEnsemble::CpuEnsemble(int replicas, std::vector<int> widths)
    : Ensemble(replicas, std::move(widths)) {
  const int T = tensor_count();
  param_.resize(T);
  snap_.resize(T);
  for (auto& st : state_) st.resize(T);
  grad_.resize(T);
  for (int t = 0; t < T; ++t) {
    const std::size_t n = static_cast<std::size_t>(replicas_) * tensor_numel(t);
    param_[t].assign(n, 0.0f);
    grad_[t].assign(n, 0.0f);
  }
  act_.resize(widths_.size());
  deltas_.resize(widths_.size());
}

std::vector<float>& CpuEnsemble::slot(Slot s, int t) {
  return const_cast<std::vector<float>&>(static_cast<const CpuEnsemble*>(this)->slot(s, t));
}

const std::vector<float>& CpuEnsemble::slot(Slot s, int t) const {
  if (t < 0 || t >= tensor_count()) throw std::out_of_range("tensor index out of range");
  if (s == Slot::Param) return param_[t];
  if (s == Slot::Snapshot) return snap_[t];
  const int k = state_index(s);
  if (k < 0 || k >= optim::kMaxState) throw std::invalid_argument("unknown slot");
  return state_[k][t];
}

void CpuEnsemble::resize_state(int slots) {
  for (int k = 0; k < optim::kMaxState; ++k) {
    for (int t = 0; t < tensor_count(); ++t) {
      std::vector<float>& v = state_[k][t];
      if (k < slots) {
        v.assign(param_[t].size(), 0.0f);
      } else {
        v.clear();
        v.shrink_to_fit();
      }
    }
  }
}

void CpuEnsemble::zero_state(int r) {
  for (int k = 0; k < state_slots_; ++k)
    for (int t = 0; t < tensor_count(); ++t) {
      const std::int64_t n = tensor_numel(t);
      std::fill_n(state_[k][t].begin() + static_cast<std::int64_t>(r) * n, n, 0.0f);
    }
}

void CpuEnsemble::init_xavier(const std::vector<std::uint64_t>& seeds) {
  if (static_cast<int>(seeds.size()) != replicas_)
    throw std::invalid_argument("init: one seed per replica expected");
  for (int l = 0; l < layers(); ++l) {
    const std::int64_t fan_in = widths_[l], fan_out = widths_[l + 1];
    const float bound = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
    const std::int64_t n = fan_in * fan_out;
    std::vector<float>& W = param_[2 * l];
    for (int r = 0; r < replicas_; ++r) {
      std::uint32_t key[2];
      philox_key_from_seed(seeds[r], key);
      float* w = W.data() + static_cast<std::size_t>(r) * n;
      for (std::int64_t blk = 0; blk * 4 < n; ++blk) {
        const std::uint32_t ctr[4] = {static_cast<std::uint32_t>(blk),
                                      static_cast<std::uint32_t>(blk >> 32),
                                      kStreamInitWeights + static_cast<std::uint32_t>(l), 0u};
        const Philox4x32 out = philox4x32_10(ctr, key);
        for (int j = 0; j < 4 && blk * 4 + j < n; ++j)
          w[blk * 4 + j] = (2.0f * philox_uniform01(out.v[j]) - 1.0f) * bound;
      }
    }
    std::fill(param_[2 * l + 1].begin(), param_[2 * l + 1].end(), 0.0f);
  }
  std::fill(steps_.begin(), steps_.end(), 0);
  for (int r = 0; r < replicas_; ++r) zero_state(r);
}

void CpuEnsemble::snapshot() {
  for (int t = 0; t < tensor_count(); ++t) snap_[t] = param_[t];
  has_snapshot_ = true;
}

void CpuEnsemble::ensure_workspace(std::int64_t rows, int count) {
  if (rows <= capacity_rows_ && count <= capacity_reps_) return;
  rows = std::max(rows, capacity_rows_);
  count = std::max(count, capacity_reps_);
  for (std::size_t l = 0; l < widths_.size(); ++l) {
    const std::size_t n = static_cast<std::size_t>(count) * rows * widths_[l];
    act_[l].assign(n, 0.0f);
    if (l > 0) deltas_[l].assign(n, 0.0f);
  }
  labels_.assign(static_cast<std::size_t>(count) * rows, 0);
  capacity_rows_ = rows;
  capacity_reps_ = count;
}

void CpuEnsemble::check_dataset(const Dataset& data) const {
  if (data.dim != widths_.front())
    throw std::invalid_argument("dataset has " + std::to_string(data.dim) +
                                " features per sample, the model's input width is " +
                                std::to_string(widths_.front()));
  if (data.classes != widths_.back())
    throw std::invalid_argument("dataset has " + std::to_string(data.classes) +
                                " classes, the model's output width is " +
                                std::to_string(widths_.back()));
}

void CpuEnsemble::check_indices(const Dataset& data, const std::int32_t* indices,
                                std::int64_t count) const {
  for (std::int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= data.count)
      throw std::out_of_range("index " + std::to_string(indices[i]) + " at position " +
                              std::to_string(i) + " is outside the dataset (0.." +
                              std::to_string(data.count - 1) + ")");
}

void CpuEnsemble::gather(const Dataset& data, const std::int32_t* indices, std::int64_t stride,
                         std::int64_t offset, int b, Reps g) {
  const std::int64_t dim = widths_.front();
  float* x = act_[0].data();
  parallel_for(static_cast<std::int64_t>(g.count) * b, [&](std::int64_t lo, std::int64_t hi, int) {
    for (std::int64_t k = lo; k < hi; ++k) {
      const std::int64_t r = k / b, i = k % b;
      const std::int32_t idx = indices[(g.r0 + r) * stride + offset + i];
      std::memcpy(x + (r * b + i) * dim, data.row(idx), sizeof(float) * dim);
      labels_[r * b + i] = data.labels[idx];
    }
  }, 16);
}

void CpuEnsemble::forward_layers(const float* input, std::int64_t input_stride,
                                 std::int64_t rows, Reps g) {
  const int L = layers();
  const int m = static_cast<int>(rows);
  for (int l = 0; l < L; ++l) {
    const int in = widths_[l], out = widths_[l + 1];
    const float* A = (l == 0) ? input : act_[l].data();
    BatchStrides s;
    s.a = (l == 0) ? input_stride : rows * in;
    s.b = static_cast<std::int64_t>(out) * in;
    s.c = rows * out;
    s.bias = out;
    Epilogue ep;
    ep.bias = param_[2 * l + 1].data() + static_cast<std::int64_t>(g.r0) * out;
    ep.relu = l < L - 1;
    // act[l+1][r] (rows, out) = act[l][r] (rows, in) * W[r]^T (in, out) + b[r]
    sgemm_batched(g.count, s, false, true, m, out, in, 1.0f, A, in,
                  param_[2 * l].data() + g.r0 * s.b, in, 0.0f, act_[l + 1].data(), out, ep);
  }
}

void CpuEnsemble::loss_head(const std::int32_t* labels, std::int64_t labels_stride,
                            std::int64_t rows, bool want_grad, double* loss_sum,
                            std::int64_t* correct, Reps g) {
  const int C = widths_.back();
  const float* logits = act_.back().data();
  float* dl = want_grad ? deltas_.back().data() : nullptr;
  const float scale = 1.0f / static_cast<float>(rows);
  parallel_for(g.count, [&](std::int64_t lo, std::int64_t hi, int) {
    for (std::int64_t r = lo; r < hi; ++r) {
      double ls = 0;
      std::int64_t hits = 0;
      log_softmax_nll(logits + r * rows * C, labels + r * labels_stride, rows, C, scale,
                      dl ? dl + r * rows * C : nullptr, &ls, &hits);
      loss_sum[r] += ls;
      correct[r] += hits;
    }
  });
}

void CpuEnsemble::backward(std::int64_t rows, Reps g) {
  const int L = layers();
  const int b = static_cast<int>(rows);
  for (int l = L - 1; l >= 0; --l) {
    const int in = widths_[l], out = widths_[l + 1];
    const float* delta = deltas_[l + 1].data();  // [R, b, out]
    // dW[r] (out, in) = delta[r]^T (out, b) * act[l][r] (b, in)
    BatchStrides sw;
    sw.a = rows * out;
    sw.b = rows * in;
    sw.c = static_cast<std::int64_t>(out) * in;
    sgemm_batched(g.count, sw, true, false, out, in, b, 1.0f, delta, out, act_[l].data(), in,
                  0.0f, grad_[2 * l].data() + g.r0 * sw.c, in);
    // db[r] (out) = column sums of delta[r]
    float* gb = grad_[2 * l + 1].data() + static_cast<std::int64_t>(g.r0) * out;
    parallel_for(g.count, [&](std::int64_t lo, std::int64_t hi, int) {
      for (std::int64_t r = lo; r < hi; ++r)
        column_sums(delta + r * rows * out, rows, out, gb + r * out);
    });
    if (l > 0) {
      // delta[l][r] (b, in) = (delta[r] (b, out) * W[r] (out, in)) masked by act[l] > 0
      BatchStrides sd;
      sd.a = rows * out;
      sd.b = static_cast<std::int64_t>(out) * in;
      sd.c = rows * in;
      sd.mask = rows * in;
      Epilogue ep;
      ep.mask = act_[l].data();
      ep.ldm = in;
      sgemm_batched(g.count, sd, false, false, b, in, out, 1.0f, delta, out,
                    param_[2 * l].data() + g.r0 * sd.b, in, 0.0f, deltas_[l].data(), in, ep);
    }
  }
}

namespace {
// The weight-gradient GEMM's tile hook: the optimiser's update of the tile's weights (and
// their state) from the gradient tile just computed, while it is in cache.
struct UpdateHook : TileHook {
  optim::Kind kind;
  const UpdateKernels* ks;
  float* W;                         // the replica's weight matrix [out, in]
  std::int64_t ldw;
  float* state[optim::kMaxState];   // its state tensors (or none: held false)
  bool held;
  const float* scalars;             // the replica's step scalars

  static void apply(const TileHook* self, int m, int n, int rows, int cols, const float* c,
                    std::int64_t ldc) {
    const UpdateHook& h = *static_cast<const UpdateHook*>(self);
    const std::int64_t off = static_cast<std::int64_t>(m) * h.ldw + n;
    float* st[optim::kMaxState] = {nullptr, nullptr};
    for (int k = 0; k < optim::kMaxState; ++k)
      if (h.state[k] != nullptr) st[k] = h.state[k] + off;
    h.ks->apply_2d(h.kind, h.W + off, h.ldw, c, ldc, st, h.held, rows, cols, h.scalars);
  }
};
}  // namespace

void CpuEnsemble::backward_update(std::int64_t rows, int r, float lr, int keep_grad_layer) {
  const int L = layers();
  const int b = static_cast<int>(rows);
  const bool plain = plain_sgd();
  float scalars[optim::kMaxScalars];
  step_scalars(r, lr, scalars);
  const UpdateKernels& uk = update_kernels();
  for (int l = L - 1; l >= 0; --l) {
    const int in = widths_[l], out = widths_[l + 1];
    const std::int64_t nW = static_cast<std::int64_t>(out) * in;
    const float* delta = deltas_[l + 1].data();  // [b, out]
    float* W = param_[2 * l].data() + r * nW;
    float* bias = param_[2 * l + 1].data() + static_cast<std::int64_t>(r) * out;
    if (l > 0) {
      // delta[l] (b, in) = (delta (b, out) * W (out, in)) masked by act[l] > 0, with W before
      // its update
      Epilogue ep;
      ep.mask = act_[l].data();
      ep.ldm = in;
      sgemm(false, false, b, in, out, 1.0f, delta, out, W, in, 0.0f, deltas_[l].data(), in, ep);
    }
    // db (out) = column sums of delta
    float* gb = grad_[2 * l + 1].data() + static_cast<std::int64_t>(r) * out;
    column_sums(delta, rows, out, gb);
    if (l == keep_grad_layer) {
      // the weight gradient kept in grad_ (gradient trials read it), then the update from it
      float* gW = grad_[2 * l].data() + r * nW;
      sgemm(true, false, out, in, b, 1.0f, delta, out, act_[l].data(), in, 0.0f, gW, in);
      float* sw[optim::kMaxState] = {nullptr, nullptr};
      float* sb[optim::kMaxState] = {nullptr, nullptr};
      for (int k = 0; k < state_slots_; ++k) {
        sw[k] = state_[k][2 * l].data() + r * nW;
        sb[k] = state_[k][2 * l + 1].data() + static_cast<std::int64_t>(r) * out;
      }
      uk.apply(opt_.kind, W, gW, sw, state_slots_ > 0, nW, scalars);
      uk.apply(opt_.kind, bias, gb, sb, state_slots_ > 0, out, scalars);
      continue;
    }
    if (plain) {
      // W -= lr * delta^T (out, b) * act[l] (b, in): the update folded into the GEMM (C = W)
      sgemm(true, false, out, in, b, -lr, delta, out, act_[l].data(), in, 1.0f, W, in);
      sgd_update(bias, gb, static_cast<std::size_t>(out), lr);
      continue;
    }
    // dW into the gradient buffer, each tile handed to the optimiser's rule as it is done
    UpdateHook hook;
    hook.fn = &UpdateHook::apply;
    hook.kind = opt_.kind;
    hook.ks = &uk;
    hook.W = W;
    hook.ldw = in;
    hook.held = state_slots_ > 0;
    for (int k = 0; k < optim::kMaxState; ++k)
      hook.state[k] = k < state_slots_ ? state_[k][2 * l].data() + r * nW : nullptr;
    hook.scalars = scalars;
    Epilogue ep;
    ep.hook = &hook;
    sgemm(true, false, out, in, b, 1.0f, delta, out, act_[l].data(), in, 0.0f,
          grad_[2 * l].data() + r * nW, in, ep);
    float* sb[optim::kMaxState] = {nullptr, nullptr};
    for (int k = 0; k < state_slots_; ++k) sb[k] = state_[k][2 * l + 1].data() + static_cast<std::int64_t>(r) * out;
    uk.apply(opt_.kind, bias, gb, sb, state_slots_ > 0, out, scalars);
  }
  steps_[r] += 1;
}

void CpuEnsemble::train(const Dataset& data, const std::int32_t* indices, std::int64_t n,
                        int batch, const float* lr, double* loss_out) {
  const FlushDenormals ftz;  // subnormals off the slow path (cpu/fpenv.h)
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (n < 1) throw std::invalid_argument("train: need at least one index per replica");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * n);
  std::vector<double> loss(replicas_, 0.0);
  if (use_small_batch(batch)) {
    for_each_replica_small_batch([&](int r, SmallBatchWorkspace& ws) {
      small_batch_steps(data, r, indices + static_cast<std::int64_t>(r) * n, n, batch, lr[r],
                        &loss[r], nullptr, ws);
    });
    for (int r = 0; r < replicas_; ++r) loss_out[r] = loss[r] / static_cast<double>(n);
    return;
  }
  ensure_workspace(std::min<std::int64_t>(batch, n), 1);
  std::vector<std::int64_t> hits(replicas_, 0);
  // one replica at a time: its weights, gradients and activations stay in cache from step
  // to step (all replicas at once would stream R times as much through memory every step)
  for (int r = 0; r < replicas_; ++r) {
    const Reps g{r, 1};
    for (std::int64_t off = 0; off < n; off += batch) {
      const int b = static_cast<int>(std::min<std::int64_t>(batch, n - off));
      gather(data, indices, n, off, b, g);
      forward_layers(act_[0].data(), static_cast<std::int64_t>(b) * widths_.front(), b, g);
      loss_head(labels_.data(), b, b, true, &loss[r], &hits[r], g);
      backward_update(b, r, lr[r]);
    }
  }
  for (int r = 0; r < replicas_; ++r) loss_out[r] = loss[r] / static_cast<double>(n);
}

EvalResult CpuEnsemble::evaluate(const Dataset& data, std::int64_t start, std::int64_t count) {
  const FlushDenormals ftz;  // subnormals off the slow path (cpu/fpenv.h)
  check_dataset(data);
  if (start < 0 || count < 1 || start + count > data.count)
    throw std::out_of_range("evaluate: rows [" + std::to_string(start) + ", " +
                            std::to_string(start + count) + ") are outside the dataset (" +
                            std::to_string(data.count) + " rows)");
  EvalResult res;
  res.loss_sum.assign(replicas_, 0.0);
  res.correct.assign(replicas_, 0);
  res.count = count;
  ensure_workspace(std::min(kEvalChunk, count), 1);
  for (int r = 0; r < replicas_; ++r) {  // one replica at a time, as in train()
    const Reps g{r, 1};
    for (std::int64_t off = 0; off < count; off += kEvalChunk) {
      const std::int64_t rows = std::min(kEvalChunk, count - off);
      forward_layers(data.row(start + off), 0, rows, g);
      loss_head(data.labels.data() + start + off, 0, rows, false, &res.loss_sum[r],
                &res.correct[r], g);
    }
  }
  return res;
}

void CpuEnsemble::forward(const Dataset& data, const std::int32_t* indices, int batch,
                          float* logprobs) {
  const FlushDenormals ftz;  // subnormals off the slow path (cpu/fpenv.h)
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * batch);
  ensure_workspace(batch, replicas_);
  const Reps all{0, replicas_};
  gather(data, indices, batch, 0, batch, all);
  forward_layers(act_[0].data(), static_cast<std::int64_t>(batch) * widths_.front(), batch, all);
  const int C = widths_.back();
  const float* z = act_.back().data();
  const std::int64_t rows = static_cast<std::int64_t>(replicas_) * batch;
  for (std::int64_t i = 0; i < rows; ++i) {
    float zmax = z[i * C];
    for (int c = 1; c < C; ++c) zmax = std::max(zmax, z[i * C + c]);
    double s = 0;
    for (int c = 0; c < C; ++c) s += std::exp(static_cast<double>(z[i * C + c]) - zmax);
    const double lse = zmax + std::log(s);
    for (int c = 0; c < C; ++c) logprobs[i * C + c] = static_cast<float>(z[i * C + c] - lse);
  }
}

void CpuEnsemble::gradients(const Dataset& data, const std::int32_t* indices, int batch,
                            const std::vector<float*>& grads, double* loss_out) {
  const FlushDenormals ftz;  // subnormals off the slow path (cpu/fpenv.h)
  check_dataset(data);
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (static_cast<int>(grads.size()) != tensor_count())
    throw std::invalid_argument("gradients: one output per tensor expected");
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * batch);
  ensure_workspace(batch, replicas_);
  const Reps all{0, replicas_};
  gather(data, indices, batch, 0, batch, all);
  forward_layers(act_[0].data(), static_cast<std::int64_t>(batch) * widths_.front(), batch, all);
  std::vector<double> loss(replicas_, 0.0);
  std::vector<std::int64_t> hits(replicas_, 0);
  loss_head(labels_.data(), batch, batch, true, loss.data(), hits.data(), all);
  backward(batch, all);
  for (int t = 0; t < tensor_count(); ++t)
    std::memcpy(grads[t], grad_[t].data(), sizeof(float) * grad_[t].size());
  for (int r = 0; r < replicas_; ++r) loss_out[r] = loss[r] / batch;
}

void CpuEnsemble::get_tensor(Slot s, int t, float* out) const {
  const std::size_t n = static_cast<std::size_t>(replicas_) * tensor_numel(t);
  if (read_gives_zeros(s)) {
    std::fill(out, out + n, 0.0f);  // optimiser state not held: it is zero
    return;
  }
  std::memcpy(out, slot(s, t).data(), sizeof(float) * n);
}

void CpuEnsemble::set_tensor(Slot s, int t, const float* in) {
  const std::size_t n = static_cast<std::size_t>(replicas_) * tensor_numel(t);
  prepare_write(s);
  std::vector<float>& v = slot(s, t);
  v.assign(in, in + n);
  if (s == Slot::Snapshot) {
    // a snapshot set tensor by tensor counts once every tensor has one
    bool all = true;
    for (int k = 0; k < tensor_count(); ++k)
      all = all && snap_[k].size() == static_cast<std::size_t>(replicas_) * tensor_numel(k);
    has_snapshot_ = all;
  }
}

void CpuEnsemble::stats(double* out) const {
  if (!has_snapshot_) throw std::logic_error("stats: no snapshot has been taken");
  const int L = layers();
  parallel_for(static_cast<std::int64_t>(replicas_) * L, [&](std::int64_t lo, std::int64_t hi, int) {
    for (std::int64_t k = lo; k < hi; ++k) {
      const int r = static_cast<int>(k / L), l = static_cast<int>(k % L);
      for (int part = 0; part < 2; ++part) {
        const int t = 2 * l + part;
        const std::int64_t n = tensor_numel(t);
        const TensorStats st = tensor_stats(param_[t].data() + r * n, snap_[t].data() + r * n,
                                            static_cast<std::size_t>(n));
        double* o = out + (static_cast<std::int64_t>(r) * L + l) * kStatsPerLayer + part * 4;
        o[0] = st.norm2;
        o[1] = st.dist2;
        o[2] = st.dot;
        o[3] = st.snap_norm2;
      }
    }
  });
}

void CpuEnsemble::reset_to_snapshot() {
  if (!has_snapshot_) throw std::logic_error("reset_to_snapshot: no snapshot has been taken");
  for (int t = 0; t < tensor_count(); ++t) param_[t] = snap_[t];
}

bool CpuEnsemble::use_small_batch(int batch) const {
  return batch <= small_batch_max() && plain_sgd();
}

StepPathInfo CpuEnsemble::step_path(int batch) const {
  const int max = small_batch_max();
  if (use_small_batch(batch))
    return {"small-batch", "fused small-batch SGD kernels (plain SGD at b <= " + std::to_string(max) + ")"};
  if (batch <= max)
    return {"gemm", "GEMM kernels: the fused small-batch kernels take plain SGD only, and the optimizer is " +
                        optimizer_descriptor().name + (opt_.kind == optim::Kind::Sgd ? " with momentum or weight decay" : "")};
  return {"gemm", "GEMM kernels (b > " + std::to_string(max) + ", the largest batch of the fused small-batch path)"};
}

template <typename F>
void CpuEnsemble::for_each_replica_small_batch(F&& fn) {
  const int T = num_threads();
  if (static_cast<int>(sb_ws_.size()) < T) sb_ws_.resize(T);
  if (T > 1 && replicas_ > 1) {
    // whole replicas per thread: no barrier inside a step
    parallel_for(replicas_, [&](std::int64_t lo, std::int64_t hi, int t) {
      for (std::int64_t r = lo; r < hi; ++r) fn(static_cast<int>(r), sb_ws_[t]);
    });
  } else {
    for (int r = 0; r < replicas_; ++r) fn(r, sb_ws_[0]);
  }
}

void CpuEnsemble::small_batch_steps(const Dataset& data, int r, const std::int32_t* idx,
                                    std::int64_t n, int batch, float lr, double* loss_sum,
                                    TrialSink* trial, SmallBatchWorkspace& ws) {
  const SmallBatchKernels& ks = small_batch_kernels();
  const int L = layers();
  const int C = widths_.back();
  const std::int64_t trial_numel = trial != nullptr ? tensor_numel(2 * trial->layer) : 0;
  ws.act.resize(widths_.size());
  ws.delta.resize(widths_.size());
  // row strides of the workspaces; the logits and their deltas stay contiguous for the loss
  std::vector<int> ld(L + 1);
  for (int l = 1; l <= L; ++l) {
    ld[l] = l < L ? small_batch_stride(widths_[l]) : widths_[l];
    const std::size_t need = static_cast<std::size_t>(kSmallBatchKernelMax) * ld[l];
    if (ws.act[l].size() < need) ws.act[l].assign(need, 0.0f);
    if (ws.delta[l].size() < need) ws.delta[l].assign(need, 0.0f);
  }
  if (trial != nullptr && static_cast<std::int64_t>(ws.grad.size()) < trial_numel)
    ws.grad.assign(static_cast<std::size_t>(trial_numel), 0.0f);
  // Layer l's weights and bias of replica r; its input rows (xs[l][s]).
  std::vector<float*> W(L), bias(L);
  std::vector<std::array<const float*, kSmallBatchKernelMax>> xs(L);
  for (int l = 0; l < L; ++l) {
    W[l] = param_[2 * l].data() + static_cast<std::int64_t>(r) * tensor_numel(2 * l);
    bias[l] = param_[2 * l + 1].data() + static_cast<std::int64_t>(r) * widths_[l + 1];
    if (l > 0)
      for (int s = 0; s < kSmallBatchKernelMax; ++s)
        xs[l][s] = ws.act[l].data() + static_cast<std::int64_t>(s) * ld[l];
  }
  std::int32_t labels[kSmallBatchKernelMax];
  std::int64_t hits = 0;
  std::int64_t steps = 0;
  for (std::int64_t off = 0; off < n; off += batch, ++steps) {
    const int b = static_cast<int>(std::min<std::int64_t>(batch, n - off));
    for (int s = 0; s < b; ++s) {
      xs[0][s] = data.row(idx[off + s]);
      labels[s] = data.labels[idx[off + s]];
    }
    for (int l = 0; l < L; ++l) {
      const int in = widths_[l], out = widths_[l + 1];
      const bool relu = l < L - 1;
      float* y = ws.act[l + 1].data();
      ks.forward_rows(W[l], bias[l], in, xs[l].data(), b, relu, y, ld[l + 1], 0, out);
    }
    log_softmax_nll(ws.act[L].data(), labels, b, C, 1.0f / static_cast<float>(b),
                    ws.delta[L].data(), loss_sum, &hits);
    for (int l = L - 1; l >= 0; --l) {
      const int in = widths_[l], out = widths_[l + 1];
      const float* delta = ws.delta[l + 1].data();
      float* dx = l > 0 ? ws.delta[l].data() : nullptr;
      float* grad = (trial != nullptr && l == trial->layer) ? ws.grad.data() : nullptr;
      ks.backward_cols(W[l], in, out, delta, ld[l + 1], xs[l].data(), b, lr, l > 0, dx, ld[l],
                       grad, 0, in);
      // the bias: its gradient is the column sums of delta (in row order, as column_sums)
      for (int j = 0; j < out; ++j) {
        float g = 0.0f;
        for (int s = 0; s < b; ++s) g += delta[static_cast<std::int64_t>(s) * ld[l + 1] + j];
        bias[l][j] -= lr * g;
      }
    }
    if (trial != nullptr)
      trial_step(ws.grad.data(), trial_numel, b, off == 0, trial->s_mean, trial->s_sum,
                 trial->stats);
  }
  steps_[r] += steps;
}

GradTrialsResult CpuEnsemble::grad_trials(const Dataset& data, const std::int32_t* indices,
                                          std::int64_t n, int batch, float lr,
                                          const HistogramSpec& hist_mean,
                                          const HistogramSpec& hist_sum, float* export_s,
                                          int layer_in) {
  const FlushDenormals ftz;
  check_dataset(data);
  const int layer = check_grad_trials(n, batch, lr, hist_mean, hist_sum, layer_in);
  check_indices(data, indices, static_cast<std::int64_t>(replicas_) * n);
  const int wt = 2 * layer;  // the measured layer's weight matrix
  const std::int64_t numel = tensor_numel(wt);
  const std::size_t total = static_cast<std::size_t>(replicas_) * numel;
  std::vector<double> s_mean(total, 0.0), s_sum(total, 0.0);
  GradTrialsResult res;
  res.stats.assign(static_cast<std::size_t>(replicas_) * kTrialStats, 0.0);
  const std::int64_t steps = (n + batch - 1) / batch;
  if (lr == 0.0f) {
    // Frozen weights: every step of a trial sees the same parameters, so a block of whole
    // steps runs as one set of GEMMs: the forward pass, then each step's loss gradient (scaled
    // by 1/b of that step, as in a training step), then the backward-data pass down to the
    // measured layer (rows are independent, so the block goes through at once; no update);
    // each step's weight gradient is then delta^T a over its own rows.
    const int L = layers();
    const int C = widths_.back(), in = widths_[layer], out = widths_[layer + 1];
    const std::int64_t block = std::min<std::int64_t>(n, std::max<std::int64_t>(1, kFrozenRows / batch) * batch);
    ensure_workspace(block, 1);
    std::vector<float> g(static_cast<std::size_t>(numel));
    for (int r = 0; r < replicas_; ++r) {  // one replica at a time, as the GEMM path
      const Reps one{r, 1};
      double loss = 0;
      std::int64_t hits = 0;
      for (std::int64_t off = 0; off < n; off += block) {  // block: a multiple of batch
        const std::int64_t rows = std::min<std::int64_t>(block, n - off);
        const int m = static_cast<int>(rows);
        gather(data, indices, n, off, m, one);
        forward_layers(act_[0].data(), rows * widths_.front(), rows, one);
        for (std::int64_t s0 = 0; s0 < rows; s0 += batch) {
          const int b = static_cast<int>(std::min<std::int64_t>(batch, rows - s0));
          log_softmax_nll(act_[L].data() + s0 * C, labels_.data() + s0, b, C,
                          1.0f / static_cast<float>(b), deltas_[L].data() + s0 * C, &loss,
                          &hits);
        }
        for (int l = L - 1; l > layer; --l) {
          // delta[l] (rows, in_l) = (delta[l+1] (rows, out_l) * W_l (out_l, in_l)) masked
          const int il = widths_[l], ol = widths_[l + 1];
          Epilogue ep;
          ep.mask = act_[l].data();
          ep.ldm = il;
          sgemm(false, false, m, il, ol, 1.0f, deltas_[l + 1].data(), ol,
                param_[2 * l].data() + static_cast<std::int64_t>(r) * ol * il, il, 0.0f,
                deltas_[l].data(), il, ep);
        }
        for (std::int64_t s0 = 0; s0 < rows; s0 += batch) {
          const int b = static_cast<int>(std::min<std::int64_t>(batch, rows - s0));
          // g (out, in) = delta^T (out, b) * act[layer] (b, in)
          sgemm(true, false, out, in, b, 1.0f, deltas_[layer + 1].data() + s0 * out, out,
                act_[layer].data() + s0 * in, in, 0.0f, g.data(), in);
          trial_step(g.data(), numel, b, off + s0 == 0, s_mean.data() + r * numel,
                     s_sum.data() + r * numel, res.stats.data() + r * kTrialStats);
        }
      }
      steps_[r] += steps;
    }
  } else if (use_small_batch(batch)) {
    for_each_replica_small_batch([&](int r, SmallBatchWorkspace& ws) {
      TrialSink sink{s_mean.data() + r * numel, s_sum.data() + r * numel,
                     res.stats.data() + r * kTrialStats, layer};
      double loss = 0;
      small_batch_steps(data, r, indices + static_cast<std::int64_t>(r) * n, n, batch, lr,
                        &loss, &sink, ws);
    });
  } else {
    ensure_workspace(std::min<std::int64_t>(batch, n), 1);
    for (int r = 0; r < replicas_; ++r) {  // one replica at a time, as in train()
      const Reps g{r, 1};
      double loss = 0;
      std::int64_t hits = 0;
      for (std::int64_t off = 0; off < n; off += batch) {
        const int b = static_cast<int>(std::min<std::int64_t>(batch, n - off));
        gather(data, indices, n, off, b, g);
        forward_layers(act_[0].data(), static_cast<std::int64_t>(b) * widths_.front(), b, g);
        loss_head(labels_.data(), b, b, true, &loss, &hits, g);
        // the step's update fused as in train(), but the measured layer's weight gradient kept
        backward_update(b, r, lr, layer);
        trial_step(grad_[wt].data() + r * numel, numel, b, off == 0,
                   s_mean.data() + r * numel, s_sum.data() + r * numel,
                   res.stats.data() + r * kTrialStats);
      }
    }
  }
  const int hm = hist_mean.bins + 3, hs = hist_sum.bins + 3;
  // per-replica counts, summed in replica order afterwards (integers: exact either way)
  std::vector<std::int64_t> cm(static_cast<std::size_t>(replicas_) * hm, 0);
  std::vector<std::int64_t> cs(static_cast<std::size_t>(replicas_) * hs, 0);
  parallel_for(replicas_, [&](std::int64_t lo, std::int64_t hi, int) {
    std::vector<float> fm(static_cast<std::size_t>(numel)), fs(static_cast<std::size_t>(numel));
    for (std::int64_t r = lo; r < hi; ++r) {
      const double* sm = s_mean.data() + r * numel;
      const double* ss = s_sum.data() + r * numel;
      double a = 0, c = 0;
      for (std::int64_t i = 0; i < numel; ++i) {
        a += sm[i] * sm[i];
        c += ss[i] * ss[i];
        fm[i] = static_cast<float>(sm[i]);
        fs[i] = static_cast<float>(ss[i]);
      }
      double* st = res.stats.data() + r * kTrialStats;
      st[0] = std::sqrt(a);
      st[1] = std::sqrt(c);
      st[2] /= static_cast<double>(steps);
      st[3] /= static_cast<double>(steps);
      st[5] = static_cast<double>(steps);
      // the histograms count the fp32 values that an export would hold
      histogram_add(fm.data(), fm.size(), hist_mean.edges, hist_mean.bins, cm.data() + r * hm);
      histogram_add(fs.data(), fs.size(), hist_sum.edges, hist_sum.bins, cs.data() + r * hs);
      if (export_s) std::memcpy(export_s + r * numel, fm.data(), sizeof(float) * numel);
    }
  });
  res.hist_mean.assign(hm, 0);
  res.hist_sum.assign(hs, 0);
  for (int r = 0; r < replicas_; ++r) {
    for (int k = 0; k < hm; ++k) res.hist_mean[k] += cm[static_cast<std::size_t>(r) * hm + k];
    for (int k = 0; k < hs; ++k) res.hist_sum[k] += cs[static_cast<std::size_t>(r) * hs + k];
  }
  return res;
}

}  // namespace bsx::cpu
