// Shared parts of the Ensemble interface and the backend factory.
#include "engine/ensemble.h"

#include <algorithm>
#include <stdexcept>

#include "cpu/cpu_ensemble.h"
#include "cuda/cuda_backend.h"
#ifdef BSX_WITH_CUDA
#include "cuda/cuda_ensemble.h"
#endif

namespace bsx {

Ensemble::Ensemble(int replicas, std::vector<int> widths)
    : replicas_(replicas), widths_(std::move(widths)) {
  if (replicas_ < 1) throw std::invalid_argument("replicas must be >= 1");
  if (widths_.size() < 2) throw std::invalid_argument("widths needs at least 2 entries");
  for (int w : widths_)
    if (w < 1) throw std::invalid_argument("every width must be >= 1");
  steps_.assign(static_cast<std::size_t>(replicas_), 0);
}

std::int64_t Ensemble::tensor_numel(int t) const {
  if (t < 0 || t >= tensor_count()) throw std::out_of_range("tensor index out of range");
  const int l = t / 2;
  const std::int64_t out = widths_[l + 1];
  return (t % 2 == 0) ? out * widths_[l] : out;
}

std::int64_t Ensemble::parameter_count() const {
  std::int64_t n = 0;
  for (int t = 0; t < tensor_count(); ++t) n += tensor_numel(t);
  return n;
}

void Ensemble::set_optimizer_steps(const std::vector<std::int64_t>& s) {
  if (static_cast<int>(s.size()) != replicas_)
    throw std::invalid_argument("optimizer steps: one value per replica expected");
  steps_ = s;
}

void Ensemble::set_tensor_broadcast(Slot slot, int t, const float* one) {
  const std::int64_t n = tensor_numel(t);
  std::vector<float> all(static_cast<std::size_t>(replicas_) * n);
  for (int r = 0; r < replicas_; ++r) std::copy(one, one + n, all.begin() + r * n);
  set_tensor(slot, t, all.data());
}

void Ensemble::reset_to_snapshot() {
  if (!has_snapshot_) throw std::logic_error("reset_to_snapshot: no snapshot has been taken");
  for (int t = 0; t < tensor_count(); ++t) {
    std::vector<float> v(static_cast<std::size_t>(replicas_) * tensor_numel(t));
    get_tensor(Slot::Snapshot, t, v.data());
    set_tensor(Slot::Param, t, v.data());
  }
}

void Ensemble::set_optimizer(const OptimizerConfig& cfg) {
  const bool kind_changed = cfg.kind != opt_.kind;
  opt_ = cfg;
  if (kind_changed) reset_optimizer_state();
}

void Ensemble::check_grad_trials(std::int64_t n, int batch, const HistogramSpec& hist_mean,
                                 const HistogramSpec& hist_sum) const {
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (n < 1) throw std::invalid_argument("grad_trials: need at least one index per replica");
  for (const HistogramSpec* h : {&hist_mean, &hist_sum})
    if (h->bins < 1 || h->edges == nullptr)
      throw std::invalid_argument("grad_trials: a histogram needs at least one bin");
  if (opt_.kind != OptimizerKind::Sgd)
    throw std::invalid_argument("grad_trials: the trials take plain SGD steps; set the optimizer to sgd");
}

std::unique_ptr<Ensemble> make_ensemble(const std::string& backend, int replicas,
                                        const std::vector<int>& widths) {
  if (backend == "cpu") return std::make_unique<cpu::CpuEnsemble>(replicas, widths);
  if (backend == "cuda") {
    const cuda::DeviceInfo info = cuda::probe();
    if (!info.available) throw std::runtime_error("cuda: unavailable (" + info.reason + ")");
#ifdef BSX_WITH_CUDA
    return std::make_unique<cuda::CudaEnsemble>(replicas, widths);
#else
    throw std::runtime_error("cuda: unavailable (not compiled in)");
#endif
  }
  throw std::invalid_argument("unknown backend '" + backend + "' (expected cpu or cuda)");
}

}  // namespace bsx
