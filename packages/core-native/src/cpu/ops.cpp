// CPU kernels of the MLP besides the GEMM (see ops.h). Plain loops the compiler vectorises;
// they are memory-bound next to the GEMMs.
#include "cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace bsx::cpu {

void log_softmax_nll(const float* logits, const std::int32_t* labels, std::int64_t rows,
                     int classes, float grad_scale, float* dlogits, double* loss_sum,
                     std::int64_t* correct) {
  double loss = 0;
  std::int64_t hits = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * classes;
    float zmax = -std::numeric_limits<float>::infinity();
    int arg = 0;
    for (int c = 0; c < classes; ++c) {
      if (z[c] > zmax) {
        zmax = z[c];
        arg = c;
      }
    }
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c]) - zmax);
    const double lse = zmax + std::log(sum);
    const int y = labels[r];
    loss += lse - z[y];
    hits += (arg == y) ? 1 : 0;
    if (dlogits) {
      float* d = dlogits + r * classes;
      for (int c = 0; c < classes; ++c) {
        const double p = std::exp(static_cast<double>(z[c]) - lse);
        d[c] = static_cast<float>((p - (c == y ? 1.0 : 0.0)) * grad_scale);
      }
    }
  }
  *loss_sum += loss;
  *correct += hits;
}

void column_sums(const float* x, std::int64_t rows, std::int64_t cols, float* out) {
  for (std::int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) out[c] += xr[c];
  }
}

void add_bias_relu(float* x, std::int64_t rows, std::int64_t cols, const float* bias,
                   bool relu) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      float v = xr[c] + (bias ? bias[c] : 0.0f);
      xr[c] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
  }
}

void relu_mask(float* g, const float* act, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g[i] = act[i] > 0.0f ? g[i] : 0.0f;
}

void sgd_update(float* p, const float* g, std::size_t n, float lr) {
  for (std::size_t i = 0; i < n; ++i) p[i] -= lr * g[i];
}

void adam_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr,
                 float beta1, float beta2, float eps, std::int64_t step) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float one_m_b1 = 1.0f - beta1, one_m_b2 = 1.0f - beta2;
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    m[i] += (gi - m[i]) * one_m_b1;
    v[i] = v[i] * beta2 + one_m_b2 * gi * gi;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] -= step_size * (m[i] / denom);
  }
}

TensorStats tensor_stats(const float* p, const float* s, std::size_t n) {
  TensorStats st;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = p[i];
    st.norm2 += a * a;
    if (s) {
      const double b = s[i];
      st.dist2 += (a - b) * (a - b);
      st.dot += a * b;
      st.snap_norm2 += b * b;
    }
  }
  return st;
}

void histogram_add(const float* x, std::size_t n, const float* edges, int bins,
                   std::int64_t* counts) {
  const float lo = edges[0], hi = edges[bins];
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (std::isnan(v)) {
      counts[bins + 2] += 1;
    } else if (v < lo) {
      counts[0] += 1;
    } else if (v > hi) {
      counts[bins + 1] += 1;
    } else {
      // first edge > v, minus one: the bin whose left edge is <= v
      const float* it = std::upper_bound(edges, edges + bins + 1, v);
      int k = static_cast<int>(it - edges) - 1;
      if (k >= bins) k = bins - 1;  // v == hi
      counts[1 + k] += 1;
    }
  }
}

}  // namespace bsx::cpu
