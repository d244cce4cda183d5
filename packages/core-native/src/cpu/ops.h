// Elementwise and reduction kernels of the MLP on the CPU: the loss head, bias gradients,
// optimiser updates and parameter statistics. GEMMs live in gemm.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bsx::cpu {

// Log-softmax + negative log likelihood over `rows` rows of `classes` logits.
// Adds each row's loss to *loss_sum (double) and counts rows whose arg-max equals the label
// (first maximum wins) in *correct. If dlogits != nullptr, writes
// dlogits = (softmax(logits) - onehot(label)) * grad_scale (grad_scale = 1/b for a mean loss).
// logits and dlogits may alias.
void log_softmax_nll(const float* logits, const std::int32_t* labels, std::int64_t rows,
                     int classes, float grad_scale, float* dlogits, double* loss_sum,
                     std::int64_t* correct);

// out[c] = sum over r of x[r*cols + c], accumulated in row order (float).
void column_sums(const float* x, std::int64_t rows, std::int64_t cols, float* out);

// x[r, c] += bias[c]; then max(x, 0) if relu.
void add_bias_relu(float* x, std::int64_t rows, std::int64_t cols, const float* bias, bool relu);

// g[i] = g[i] * (act[i] > 0): the ReLU's backward through its output.
void relu_mask(float* g, const float* act, std::size_t n);

// p -= lr * g
void sgd_update(float* p, const float* g, std::size_t n, float lr);

// PyTorch's Adam (torch.optim.Adam, default non-amsgrad, no weight decay):
// m = m + (g - m)(1 - b1); v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
void adam_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr,
                 float beta1, float beta2, float eps, std::int64_t step);

// Per-tensor statistics against a snapshot s (s may be nullptr: then the snapshot terms are 0).
struct TensorStats {
  double norm2 = 0;      // sum p^2
  double dist2 = 0;      // sum (p - s)^2
  double dot = 0;        // sum p * s
  double snap_norm2 = 0; // sum s^2
};
TensorStats tensor_stats(const float* p, const float* s, std::size_t n);

// Adds the values x[0..n) to counts [underflow, bins..., overflow, nan] for increasing edges
// [bins + 1]: bin k holds edges[k] <= v < edges[k+1]; the last bin also holds v == edges[bins].
void histogram_add(const float* x, std::size_t n, const float* edges, int bins,
                   std::int64_t* counts);

}  // namespace bsx::cpu
