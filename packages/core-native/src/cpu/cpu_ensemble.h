// The CPU backend of the Ensemble: GEMMs through cpu/gemm.h (batched over replicas),
// the loss head and optimiser updates through cpu/ops.h, threads through cpu/thread_pool.h.
#pragma once
#include <vector>

#include "engine/ensemble.h"

namespace bsx::cpu {

class CpuEnsemble final : public Ensemble {
 public:
  CpuEnsemble(int replicas, std::vector<int> widths);
  std::string backend() const override { return "cpu"; }

  void init_xavier(const std::vector<std::uint64_t>& seeds) override;
  void snapshot() override;
  StepPathInfo step_path(int batch) const override;
  void train(const Dataset& data, const std::int32_t* indices, std::int64_t n, int batch,
             const float* lr, double* loss_out) override;
  EvalResult evaluate(const Dataset& data, std::int64_t start, std::int64_t count) override;
  void forward(const Dataset& data, const std::int32_t* indices, int batch,
               float* logprobs) override;
  void gradients(const Dataset& data, const std::int32_t* indices, int batch,
                 const std::vector<float*>& grads, double* loss_out) override;
  void get_tensor(Slot slot, int t, float* out) const override;
  void set_tensor(Slot slot, int t, const float* in) override;
  void stats(double* out) const override;
  void reset_to_snapshot() override;
  GradTrialsResult grad_trials(const Dataset& data, const std::int32_t* indices, std::int64_t n,
                               int batch, float lr, const HistogramSpec& hist_mean,
                               const HistogramSpec& hist_sum, float* export_s,
                               int layer = -1) override;

 protected:
  void resize_state(int slots) override;
  void zero_state(int r) override;

 private:
  // A range of replicas [r0, r0 + count) that the batched steps below work on; their
  // workspaces (act_, deltas_, labels_) hold the range's replicas from index 0.
  struct Reps {
    int r0;
    int count;
  };
  std::vector<float>& slot(Slot s, int t);
  const std::vector<float>& slot(Slot s, int t) const;
  // Workspaces for `rows` rows of `count` replicas.
  void ensure_workspace(std::int64_t rows, int count);
  // Gathers rows of `indices` ([R, b], a row stride of `stride` between replicas, starting at
  // `offset`) of the replicas in g into act_[0] and labels_.
  void gather(const Dataset& data, const std::int32_t* indices, std::int64_t stride,
              std::int64_t offset, int b, Reps g);
  // Forward through every layer for rows already in act_[0]; input_stride = floats between
  // replicas' inputs (0 when all replicas share one input block `input`).
  void forward_layers(const float* input, std::int64_t input_stride, std::int64_t rows, Reps g);
  // Loss head on act_.back(): per replica of g, loss sums / hits into loss_sum[0..count),
  // correct[0..count); writes dlogits when wanted.
  void loss_head(const std::int32_t* labels, std::int64_t labels_stride, std::int64_t rows,
                 bool want_grad, double* loss_sum, std::int64_t* correct, Reps g);
  // Backward from deltas_.back() into grad_ (all tensors of the replicas in g), no update
  // (gradients()).
  void backward(std::int64_t rows, Reps g);
  // One training step's backward pass of replica r (its rows already forward in act_ and
  // its loss gradient in deltas_.back()) with the update fused in: each layer's deltas are
  // propagated with its weights before they change, then its weight gradient is computed
  // and applied at once (plain SGD: inside the GEMM, C = W; other optimisers: tile by tile
  // through the GEMM's hook, while the gradient tile is in cache). Counts the step.
  // keep_grad_layer >= 0: that layer's weight gradient is left in grad_ (gradient trials).
  void backward_update(std::int64_t rows, int r, float lr, int keep_grad_layer = -1);

  // The small-batch path (cpu/smallb.h): plain SGD (plain_sgd()) at b <= small_batch_max();
  // other optimisers take the GEMM path at every batch size (their state would double or
  // triple the traffic the fused kernels are built to avoid). Each replica's steps run
  // back to back (its weights stay in cache from step to step), threads taking whole
  // replicas. A single replica runs on one thread: cutting its layers across two threads was
  // measured 2.7x slower at b = 1 on the 2-core build machine (every weight row, written by
  // both threads in the backward pass and read by one in the forward pass, moved between the
  // cores' caches each step). Results equal the GEMM path's to float rounding and do not
  // depend on the thread count.
  bool use_small_batch(int batch) const;
  struct SmallBatchWorkspace {
    std::vector<std::vector<float>> act;    // [b, widths[l]], l = 1..L
    std::vector<std::vector<float>> delta;  // [b, widths[l]], l = 1..L
    std::vector<float> grad;                // the measured layer's weight gradient (trials)
  };
  // Statistics of gradient trials, accumulated step by step (see grad_trials).
  struct TrialSink {
    double* s_mean;  // [numel of the measured layer's weight]
    double* s_sum;
    double* stats;   // the replica's kTrialStats row
    int layer;       // the layer whose weight gradient is measured
  };
  // Runs `fn(r, workspace)` for every replica r, in parallel over replicas.
  template <typename F>
  void for_each_replica_small_batch(F&& fn);
  // Steps of replica r over idx[0..n) in batches of `batch`; adds the loss sums to *loss_sum.
  // trial (nullable): accumulate the statistics of the gradient of trial->layer's weight.
  void small_batch_steps(const Dataset& data, int r, const std::int32_t* idx, std::int64_t n,
                         int batch, float lr, double* loss_sum, TrialSink* trial,
                         SmallBatchWorkspace& ws);
  void check_dataset(const Dataset& data) const;
  void check_indices(const Dataset& data, const std::int32_t* indices, std::int64_t count) const;

  std::vector<std::vector<float>> param_, snap_, grad_;  // per tensor [R, numel]
  std::vector<std::vector<float>> state_[optim::kMaxState];  // state_[k][t]: optimiser state slot k
  std::vector<std::vector<float>> act_;     // act_[l]: [R, rows, widths[l]], l = 0..L
  std::vector<std::vector<float>> deltas_;  // deltas_[l]: [R, rows, widths[l]], l = 1..L
  std::vector<std::int32_t> labels_;        // [R, rows]
  std::int64_t capacity_rows_ = 0;
  int capacity_reps_ = 0;
  std::vector<SmallBatchWorkspace> sb_ws_;  // one per pool thread
};

}  // namespace bsx::cpu
