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
  void set_optimizer(const OptimizerConfig& cfg) override;
  void reset_optimizer_state() override;
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
                               const HistogramSpec& hist_sum, float* export_s) override;

 private:
  std::vector<float>& slot(Slot s, int t);
  const std::vector<float>& slot(Slot s, int t) const;
  void ensure_workspace(std::int64_t rows);
  // Gathers rows of `indices` ([R, b], a row stride of `stride` between replicas, starting at
  // `offset`) into act_[0] and labels_.
  void gather(const Dataset& data, const std::int32_t* indices, std::int64_t stride,
              std::int64_t offset, int b);
  // Forward through every layer for rows already in act_[0]; input_stride = floats between
  // replicas' inputs (0 when all replicas share one input block `input`).
  void forward_layers(const float* input, std::int64_t input_stride, std::int64_t rows);
  // Loss head on act_.back(): per replica loss sums / hits; writes dlogits when wanted.
  void loss_head(const std::int32_t* labels, std::int64_t labels_stride, std::int64_t rows,
                 bool want_grad, double* loss_sum, std::int64_t* correct);
  // Backward from deltas_.back() into grad_ (all tensors).
  void backward(std::int64_t rows);
  void apply_update(const float* lr);
  void check_dataset(const Dataset& data) const;
  void check_indices(const Dataset& data, const std::int32_t* indices, std::int64_t count) const;

  std::vector<std::vector<float>> param_, snap_, adam_m_, adam_v_, grad_;  // per tensor
  std::vector<std::vector<float>> act_;     // act_[l]: [R, rows, widths[l]], l = 0..L
  std::vector<std::vector<float>> deltas_;  // deltas_[l]: [R, rows, widths[l]], l = 1..L
  std::vector<std::int32_t> labels_;        // [R, rows]
  std::int64_t capacity_rows_ = 0;
};

}  // namespace bsx::cpu
