// Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW (PyTorch 2.x, _single_tensor_adam
// and _single_tensor_adamw, not amsgrad, not maximize). At step t (1 at the first step):
//   Adam:  g = g + weight_decay * p                (coupled decay, when weight_decay != 0)
//   AdamW: p = p * (1 - lr * weight_decay)         (decoupled decay)
//   m = m + (g - m)(1 - beta1);  v = v beta2 + ((1 - beta2) g) g
//   p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps),
//   step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)   (in double, per replica)
#pragma once
#include "engine/optimizers/rule.h"

namespace bsx::optim {

namespace adam_detail {
constexpr HyperParam kBeta1{"beta1", 0.9, 0.0, 1.0, false, true, false, "decay of the first moment"};
constexpr HyperParam kBeta2{"beta2", 0.999, 0.0, 1.0, false, true, false, "decay of the second moment"};
constexpr HyperParam kEps{"eps", 1e-8, 0.0, 1.0, false, false, false, "added to the denominator"};

// s: step_size, bc2_sqrt, 1 - beta1, beta2, 1 - beta2, eps (float, as the element rule uses them)
BSX_HD void prepare_moments(const double* hp, double lr, long long t, float* s) {
  const double tt = static_cast<double>(t < 1 ? 1 : t);
  s[0] = static_cast<float>(lr / (1.0 - ::pow(hp[0], tt)));
  s[1] = static_cast<float>(::sqrt(1.0 - ::pow(hp[1], tt)));
  const float b1 = static_cast<float>(hp[0]), b2 = static_cast<float>(hp[1]);
  s[2] = 1.0f - b1;
  s[3] = b2;
  s[4] = 1.0f - b2;
  s[5] = static_cast<float>(hp[2]);
}

BSX_HD void moments_step(float& p, float g, float* state, const float* s) {
  float& m = state[0];
  float& v = state[1];
  m = fp::add(m, fp::mul(fp::sub(g, m), s[2]));
  v = fp::add(fp::mul(v, s[3]), fp::mul(fp::mul(s[4], g), g));
  const float denom = fp::add(fp::div(fp::sqrt(v), s[1]), s[5]);
  p = fp::sub(p, fp::mul(s[0], fp::div(m, denom)));
}
}  // namespace adam_detail

struct Adam {
  static constexpr const char* kName = "adam";
  static constexpr const char* kReference = "torch.optim.Adam";
  static constexpr int kHyperCount = 4;
  static constexpr HyperParam kHyper[kHyperCount] = {
      adam_detail::kBeta1, adam_detail::kBeta2, adam_detail::kEps,
      {"weightDecay", 0.0, 0.0, 1e6, false, false, false, "L2 penalty added to the gradient (coupled)"},
  };
  static constexpr int kStateCount = 2;
  static constexpr const char* kStateNames[kStateCount] = {"expAvg", "expAvgSq"};

  static const char* check(const double*) { return nullptr; }
  static bool uses_state(const double*) { return true; }
  static bool is_plain_sgd(const double*) { return false; }

  // s: the moments' scalars, then weight_decay
  BSX_HD static void prepare(const double* hp, double lr, long long t, float* s) {
    adam_detail::prepare_moments(hp, lr, t, s);
    s[6] = static_cast<float>(hp[3]);
  }
  BSX_HD static void step(float& p, float g, float* state, const float* s) {
    if (s[6] != 0.0f) g = fp::add(g, fp::mul(s[6], p));
    adam_detail::moments_step(p, g, state, s);
  }
};

struct AdamW {
  static constexpr const char* kName = "adamw";
  static constexpr const char* kReference = "torch.optim.AdamW";
  static constexpr int kHyperCount = 4;
  static constexpr HyperParam kHyper[kHyperCount] = {
      adam_detail::kBeta1, adam_detail::kBeta2, adam_detail::kEps,
      {"weightDecay", 0.01, 0.0, 1e6, false, false, false, "decoupled weight decay (p *= 1 - lr * weightDecay)"},
  };
  static constexpr int kStateCount = 2;
  static constexpr const char* kStateNames[kStateCount] = {"expAvg", "expAvgSq"};

  static const char* check(const double*) { return nullptr; }
  static bool uses_state(const double*) { return true; }
  static bool is_plain_sgd(const double*) { return false; }

  // s: the moments' scalars, then the decay factor 1 - lr * weight_decay
  BSX_HD static void prepare(const double* hp, double lr, long long t, float* s) {
    adam_detail::prepare_moments(hp, lr, t, s);
    s[6] = static_cast<float>(1.0 - lr * hp[3]);
  }
  BSX_HD static void step(float& p, float g, float* state, const float* s) {
    if (s[6] != 1.0f) p = fp::mul(p, s[6]);
    adam_detail::moments_step(p, g, state, s);
  }
};

}  // namespace bsx::optim
