// The CUDA backend of the Ensemble: parameters, snapshot, optimiser state, gradients and
// activations live on the GPU, one contiguous block per tensor over replicas; the host only
// sends indices and learning rates and receives losses, statistics and requested tensors.
// Kernels: cuda/kernels/*.cuh; semantics: CpuEnsemble (cpu/cpu_ensemble.cpp), which this
// backend matches within float tolerance (and bit for bit at initialisation).
// This header includes no CUDA header: the device state is private to cuda_ensemble.cu.
#pragma once
#include <memory>
#include <vector>

#include "engine/ensemble.h"

namespace bsx::cuda {

class CudaEnsemble final : public Ensemble {
 public:
  // Throws std::runtime_error when the GPU or its memory is not available.
  CudaEnsemble(int replicas, std::vector<int> widths);
  ~CudaEnsemble() override;
  std::string backend() const override { return "cuda"; }

  void init_xavier(const std::vector<std::uint64_t>& seeds) override;
  void snapshot() override;
  StepPathInfo step_path(int batch) const override;
  void train(const cpu::Dataset& data, const std::int32_t* indices, std::int64_t n, int batch,
             const float* lr, double* loss_out) override;
  EvalResult evaluate(const cpu::Dataset& data, std::int64_t start, std::int64_t count) override;
  void forward(const cpu::Dataset& data, const std::int32_t* indices, int batch,
               float* logprobs) override;
  void gradients(const cpu::Dataset& data, const std::int32_t* indices, int batch,
                 const std::vector<float*>& grads, double* loss_out) override;
  void get_tensor(Slot slot, int t, float* out) const override;
  void set_tensor(Slot slot, int t, const float* in) override;
  void stats(double* out) const override;
  // In place on the device (the defaults would round-trip every replica through the host).
  void set_tensor_broadcast(Slot slot, int t, const float* one) override;
  void reset_to_snapshot() override;
  // The step loop on the device (graph-replayed like train's), one synchronisation at the end.
  GradTrialsResult grad_trials(const cpu::Dataset& data, const std::int32_t* indices,
                               std::int64_t n, int batch, float lr, const HistogramSpec& hist_mean,
                               const HistogramSpec& hist_sum, float* export_s,
                               int layer = -1) override;

 protected:
  void resize_state(int slots) override;
  void zero_state(int r) override;

 private:
  struct State;
  void check_dataset(const cpu::Dataset& data) const;
  void check_indices(const cpu::Dataset& data, const std::int32_t* indices,
                     std::int64_t count) const;
  std::unique_ptr<State> s_;
};

}  // namespace bsx::cuda
