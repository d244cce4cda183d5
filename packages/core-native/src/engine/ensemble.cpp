// Shared parts of the Ensemble interface and the backend factory.
#include "engine/ensemble.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

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
  opt_.kind = optim::Kind::Sgd;
  opt_.hyper.assign(static_cast<std::size_t>(replicas_) * optim::kMaxHyper, 0.0);
  const optim::Descriptor& d = optim::describe(opt_.kind);
  for (int r = 0; r < replicas_; ++r)
    for (std::size_t i = 0; i < d.hyper.size(); ++i)
      opt_.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + i] = d.hyper[i].def;
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
  if (cfg.hyper.size() != static_cast<std::size_t>(replicas_) * optim::kMaxHyper)
    throw std::invalid_argument("optimizer: one row of hyperparameters per replica expected");
  const std::string err = optim::validate(cfg.kind, cfg.hyper.data(), replicas_);
  if (!err.empty()) throw std::invalid_argument(err);
  const auto uses = [&](const OptimizerConfig& c, int r) {
    return optim::visit(c.kind, [&](auto rule) {
      return decltype(rule)::uses_state(c.hyper.data() + static_cast<std::ptrdiff_t>(r) * optim::kMaxHyper);
    });
  };
  const bool kind_changed = cfg.kind != opt_.kind;
  std::vector<char> used(static_cast<std::size_t>(replicas_)), wanted(used.size());
  bool any = false;
  for (int r = 0; r < replicas_; ++r) {
    used[r] = uses(opt_, r);
    wanted[r] = uses(cfg, r);
    any = any || wanted[r];
  }
  const OptimizerConfig before = opt_;
  opt_ = cfg;
  try {
    if (kind_changed) {
      reset_optimizer_state();
      return;
    }
    const int slots = any ? static_cast<int>(optim::describe(cfg.kind).state.size()) : 0;
    if (slots != state_slots_) {
      // newly allocated state is zero: the replicas that start using it start from step 0
      resize_state(slots);
      state_slots_ = slots;
    }
    for (int r = 0; r < replicas_; ++r) {
      if (used[r] != wanted[r]) {
        if (state_slots_ > 0) zero_state(r);
        steps_[r] = 0;
      }
    }
  } catch (...) {
    opt_ = before;  // an allocation failed: the optimiser is left as it was
    throw;
  }
}

void Ensemble::reset_optimizer_state() {
  bool any = false;
  for (int r = 0; r < replicas_; ++r)
    any = any || optim::visit(opt_.kind, [&](auto rule) {
            return decltype(rule)::uses_state(opt_.hyper.data() + static_cast<std::ptrdiff_t>(r) * optim::kMaxHyper);
          });
  const int slots = any ? static_cast<int>(optim::describe(opt_.kind).state.size()) : 0;
  if (slots != state_slots_) {
    resize_state(0);  // free the old state before allocating the new one
    state_slots_ = 0;
    resize_state(slots);
    state_slots_ = slots;
  } else {
    for (int r = 0; r < replicas_ && slots > 0; ++r) zero_state(r);
  }
  std::fill(steps_.begin(), steps_.end(), 0);
}

bool Ensemble::read_gives_zeros(Slot slot) const {
  if (slot == Slot::Param) return false;
  if (slot == Slot::Snapshot) {
    if (!has_snapshot_) throw std::logic_error("no snapshot has been taken");
    return false;
  }
  const int k = state_index(slot);
  const optim::Descriptor& d = optimizer_descriptor();
  if (k < 0 || k >= static_cast<int>(d.state.size()))
    throw std::invalid_argument("optimizer " + d.name + " has " + std::to_string(d.state.size()) +
                                " state slots, not slot " + std::to_string(k));
  return k >= state_slots_;
}

void Ensemble::prepare_write(Slot slot) {
  if (slot == Slot::Param || slot == Slot::Snapshot) return;
  if (!read_gives_zeros(slot)) return;
  const int slots = static_cast<int>(optimizer_descriptor().state.size());
  resize_state(slots);
  state_slots_ = slots;
}

bool Ensemble::plain_sgd() const {
  if (opt_.kind != optim::Kind::Sgd) return false;
  for (int r = 0; r < replicas_; ++r)
    if (!optim::Sgd::is_plain_sgd(opt_.hyper.data() + static_cast<std::ptrdiff_t>(r) * optim::kMaxHyper))
      return false;
  return true;
}

void Ensemble::step_scalars(int r, float lr, float* out) const {
  const double* hp = opt_.hyper.data() + static_cast<std::ptrdiff_t>(r) * optim::kMaxHyper;
  const long long t = static_cast<long long>(steps_[static_cast<std::size_t>(r)]) + 1;
  for (int i = 0; i < optim::kMaxScalars; ++i) out[i] = 0.0f;
  optim::visit(opt_.kind, [&](auto rule) { decltype(rule)::prepare(hp, lr, t, out); });
}

int Ensemble::check_grad_trials(std::int64_t n, int batch, float lr,
                                const HistogramSpec& hist_mean, const HistogramSpec& hist_sum,
                                int layer) const {
  if (batch < 1) throw std::invalid_argument("batch size must be >= 1");
  if (n < 1) throw std::invalid_argument("grad_trials: need at least one index per replica");
  if (!(std::isfinite(lr) && lr >= 0.0f))
    throw std::invalid_argument("grad_trials: lr must be a finite number >= 0 (0: frozen weights), got " +
                                std::to_string(lr));
  for (const HistogramSpec* h : {&hist_mean, &hist_sum})
    if (h->bins < 1 || h->edges == nullptr)
      throw std::invalid_argument("grad_trials: a histogram needs at least one bin");
  if (!plain_sgd())
    throw std::invalid_argument(
        "grad_trials: the trials take plain SGD steps; set the optimizer to sgd without momentum or weight decay");
  if (layer == -1) return layers() - 1;
  if (layer < 0 || layer >= layers())
    throw std::out_of_range("grad_trials: layer must be in [0, " + std::to_string(layers() - 1) + "] (or -1: the last), got " +
                            std::to_string(layer));
  return layer;
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
