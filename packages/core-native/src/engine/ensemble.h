// The engine's one interface: an Ensemble of R independent MLP replicas, each tensor held as
// one contiguous block over replicas ([R, out, in] weights, [R, out] biases). The CPU backend
// (cpu/cpu_ensemble.h) implements it; the CUDA backend implements the same calls.
// Callers (the Node-API bindings) validate every argument first; the backends check again
// with exceptions where a wrong value would touch memory out of bounds.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu/dataset.h"
#include "engine/optimizers.h"

namespace bsx {

// The optimiser of an ensemble: its kind (engine/optimizers.h) and every replica's
// hyperparameters, [R, optim::kMaxHyper] row-major in the order of the kind's descriptor
// (unused trailing entries 0). The learning rate is given per call (train()).
struct OptimizerConfig {
  optim::Kind kind = optim::Kind::Sgd;
  std::vector<double> hyper;
};

// Which copy of a tensor: the live parameters, the snapshot they are compared with
// (distance, cosine; usually the initial weights), or state slot k of the optimiser
// (State0 + k; their names are in the optimiser's descriptor).
enum class Slot : int { Param = 0, Snapshot = 1, State0 = 2, State1 = 3 };
constexpr Slot state_slot(int k) { return static_cast<Slot>(2 + k); }
constexpr int state_index(Slot s) { return static_cast<int>(s) - 2; }  // < 0: not a state slot

// Statistics reduced by the engine are named here, in the order of their values; the
// bindings hand the names to TypeScript, which reads the values by name. Adding one: its
// name here and its value in the backends' kernels.
//
// Per replica and layer (all sums in double; W0, b0: the snapshot):
constexpr const char* kLayerStatNames[] = {
    "weightNorm2",      // |W|^2
    "weightDist2",      // |W - W0|^2
    "weightDot",        // <W, W0>
    "weightSnapNorm2",  // |W0|^2
    "biasNorm2",        // |b|^2
    "biasDist2",        // |b - b0|^2
    "biasDot",          // <b, b0>
    "biasSnapNorm2",    // |b0|^2
};
constexpr int kStatsPerLayer = sizeof(kLayerStatNames) / sizeof(kLayerStatNames[0]);

// Gradient-competition trials (docs/findings.md, F4-F7): per replica, statistics of the last
// layer's weight gradient g_i over the steps i of one pass through its indices
// (g_i: the gradient of the batch-mean loss of step i, b_i its batch size):
constexpr const char* kTrialStatNames[] = {
    "sumNormMean",     // |S_mean|, S_mean = sum_i g_i
    "sumNormSum",      // |S_sum|,  S_sum = sum_i b_i g_i (the gradient of the batch-sum loss)
    "stepNormMean",    // mean_i |g_i|
    "stepNormSum",     // mean_i b_i |g_i|
    "firstStepNorm2",  // |g_1|^2 (the first step, taken at the starting weights)
    "steps",           // the number of steps
};
constexpr int kTrialStats = sizeof(kTrialStatNames) / sizeof(kTrialStatNames[0]);

// Histogram counts: [underflow, bins..., overflow, nan]; bin k holds edges[k] <= v < edges[k+1],
// the last bin also holds v == edges[bins].
struct HistogramSpec {
  const float* edges = nullptr;  // bins + 1 increasing values
  int bins = 0;
};

struct GradTrialsResult {
  std::vector<double> stats;             // [R, kTrialStats]
  std::vector<std::int64_t> hist_mean;   // values of S_mean, [bins + 3]
  std::vector<std::int64_t> hist_sum;    // values of S_sum, [bins + 3]
};

// Which kernels a training step takes (Ensemble::step_path), and why.
struct StepPathInfo {
  std::string path;    // "small-batch" or "gemm"
  std::string reason;
};

struct EvalResult {
  std::vector<double> loss_sum;           // [R] sum over samples of -log p(label)
  std::vector<std::int64_t> correct;      // [R]
  std::int64_t count = 0;
};

class Ensemble {
 public:
  Ensemble(int replicas, std::vector<int> widths);
  virtual ~Ensemble() = default;
  Ensemble(const Ensemble&) = delete;
  Ensemble& operator=(const Ensemble&) = delete;

  int replicas() const { return replicas_; }
  int layers() const { return static_cast<int>(widths_.size()) - 1; }
  const std::vector<int>& widths() const { return widths_; }
  // Tensors in the order W0, b0, W1, b1, ...; tensor t's element count per replica.
  int tensor_count() const { return 2 * layers(); }
  std::int64_t tensor_numel(int t) const;
  std::int64_t parameter_count() const;  // per replica
  virtual std::string backend() const = 0;

  // Xavier/Glorot-uniform weights from Philox (key = seed of the replica), zero biases.
  virtual void init_xavier(const std::vector<std::uint64_t>& seeds) = 0;
  // Copies the parameters into the snapshot slot.
  virtual void snapshot() = 0;
  bool has_snapshot() const { return has_snapshot_; }

  // Sets the optimiser (hyperparameters checked against its descriptor; std::invalid_argument
  // names a bad one). Changing the kind resets the optimiser state of every replica; the same
  // kind keeps it (phases), except for a replica whose use of the state changes (SGD's
  // momentum turned on or off), whose state is reset.
  void set_optimizer(const OptimizerConfig& cfg);
  // Zeroes the optimiser state and the step counts of every replica.
  void reset_optimizer_state();
  const OptimizerConfig& optimizer() const { return opt_; }
  const optim::Descriptor& optimizer_descriptor() const { return optim::describe(opt_.kind); }
  // State tensors held per parameter tensor: the kind's state count when some replica uses
  // its state, else 0.
  int state_slots() const { return state_slots_; }
  const std::vector<std::int64_t>& optimizer_steps() const { return steps_; }
  void set_optimizer_steps(const std::vector<std::int64_t>& s);
  // Every replica steps with p -= lr * g exactly (SGD without momentum or weight decay).
  bool plain_sgd() const;
  // The scalars of replica r's next step (optim rule prepare(): its hyperparameters, lr and
  // step count steps_[r] + 1), [optim::kMaxScalars].
  void step_scalars(int r, float lr, float* out) const;

  // The kernels a training step of `batch` rows takes with the current optimiser.
  virtual StepPathInfo step_path(int batch) const = 0;

  // Trains every replica on its own indices: indices [R, n] row-major; steps of batch b in
  // order (the last one short when b does not divide n); lr [R]. loss_out[r] = mean over the
  // n samples of the loss at the step that used them.
  virtual void train(const cpu::Dataset& data, const std::int32_t* indices, std::int64_t n,
                     int batch, const float* lr, double* loss_out) = 0;

  // Loss and accuracy of every replica on rows [start, start + count) of the dataset.
  virtual EvalResult evaluate(const cpu::Dataset& data, std::int64_t start,
                              std::int64_t count) = 0;

  // Log-probabilities [R, b, classes] for the batch indices [R, b].
  virtual void forward(const cpu::Dataset& data, const std::int32_t* indices, int batch,
                       float* logprobs) = 0;

  // Gradient of the batch-mean loss for indices [R, b] without changing any state.
  // grads[t] receives tensor t's gradient [R, numel(t)]; loss_out[r] = mean batch loss.
  virtual void gradients(const cpu::Dataset& data, const std::int32_t* indices, int batch,
                         const std::vector<float*>& grads, double* loss_out) = 0;

  virtual void get_tensor(Slot slot, int t, float* out) const = 0;  // [R, numel(t)]
  virtual void set_tensor(Slot slot, int t, const float* in) = 0;

  // [R, layers, kStatsPerLayer]; requires a snapshot.
  virtual void stats(double* out) const = 0;

  // Sets tensor t of every replica from one replica's values ([numel(t)]). The default goes
  // through set_tensor; backends may do it in place.
  virtual void set_tensor_broadcast(Slot slot, int t, const float* one);
  // Parameters of every replica := its snapshot (the start of a trial). The default goes
  // through get_tensor/set_tensor.
  virtual void reset_to_snapshot();

  // One gradient-competition trial per replica: plain SGD steps at lr over indices [R, n] in
  // batches of b (the last one short), recording the statistics above for the weight gradient
  // of layer `layer` (0-based; -1: the last layer); histograms of the values of S_mean and S_sum
  // (counted over all replicas) into the given edges.
  // lr 0 freezes the weights: the same samples and steps, no update (the frozen-weights
  // control, docs/findings.md, F14); the optimiser step count advances as for any step.
  // export_s (nullable): [R, numel(that layer's weight)] receives S_mean.
  // (Every override declares the same default for `layer`.)
  virtual GradTrialsResult grad_trials(const cpu::Dataset& data, const std::int32_t* indices,
                                       std::int64_t n, int batch, float lr,
                                       const HistogramSpec& hist_mean,
                                       const HistogramSpec& hist_sum, float* export_s,
                                       int layer = -1) = 0;

 protected:
  // The checks of grad_trials' arguments that do not depend on the backend (batch, n, lr,
  // bins, the optimiser, the layer); the backends check the dataset and the indices themselves.
  // Returns the layer the trials measure (-1 resolved to the last).
  int check_grad_trials(std::int64_t n, int batch, float lr, const HistogramSpec& hist_mean,
                        const HistogramSpec& hist_sum, int layer) const;

  // For get_tensor/set_tensor of the backends: throw std::invalid_argument unless `slot` is
  // the parameters, the snapshot (taken, for a read) or a state slot of the current optimiser.
  // A read of a state slot that is not held gives zeros (read_gives_zeros); a write into one
  // allocates the state (zero) first (prepare_write).
  bool read_gives_zeros(Slot slot) const;
  void prepare_write(Slot slot);

  // The backends hold `slots` state tensors per parameter tensor (zeroed when allocated;
  // 0: freed) ...
  virtual void resize_state(int slots) = 0;
  // ... and zero replica r's rows of every state tensor they hold.
  virtual void zero_state(int r) = 0;

  int replicas_;
  std::vector<int> widths_;
  bool has_snapshot_ = false;
  OptimizerConfig opt_{};
  int state_slots_ = 0;
  std::vector<std::int64_t> steps_;  // optimiser steps taken per replica since its state was reset
};

// Creates an ensemble on a backend ("cpu" or "cuda"); throws std::runtime_error when the
// backend is not available, with the reason.
std::unique_ptr<Ensemble> make_ensemble(const std::string& backend, int replicas,
                                        const std::vector<int>& widths);

}  // namespace bsx
