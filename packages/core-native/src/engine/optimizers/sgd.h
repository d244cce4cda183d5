// SGD with momentum, dampening, Nesterov momentum and coupled weight decay, as
// torch.optim.SGD (PyTorch 2.x, _single_tensor_sgd, not maximize):
//   g = g + weight_decay * p                       (when weight_decay != 0)
//   buf = g at the first step, else buf = momentum * buf + (1 - dampening) * g
//   g = g + momentum * buf (nesterov) or g = buf   (when momentum != 0)
//   p = p - lr * g
// With momentum = 0 and weight_decay = 0 (the defaults) this is the study's plain SGD.
#pragma once
#include "engine/optimizers/rule.h"

namespace bsx::optim {

struct Sgd {
  static constexpr const char* kName = "sgd";
  static constexpr const char* kReference = "torch.optim.SGD";
  static constexpr int kHyperCount = 4;
  static constexpr HyperParam kHyper[kHyperCount] = {
      {"momentum", 0.0, 0.0, 1.0, false, true, false, "momentum factor (0: none)"},
      {"dampening", 0.0, 0.0, 1.0, false, false, false, "dampening of the momentum"},
      {"nesterov", 0.0, 0.0, 1.0, false, false, true, "Nesterov momentum"},
      {"weightDecay", 0.0, 0.0, 1e6, false, false, false, "L2 penalty added to the gradient"},
  };
  static constexpr int kStateCount = 1;
  static constexpr const char* kStateNames[kStateCount] = {"momentumBuffer"};

  static const char* check(const double* hp) {
    if (hp[2] != 0 && (hp[0] <= 0 || hp[1] != 0))
      return "nesterov needs momentum > 0 and dampening = 0";
    return nullptr;
  }
  static bool uses_state(const double* hp) { return hp[0] != 0; }
  static bool is_plain_sgd(const double* hp) { return hp[0] == 0 && hp[3] == 0; }

  // s: lr, weight_decay, momentum, 1 - dampening, nesterov, first step
  BSX_HD static void prepare(const double* hp, double lr, long long t, float* s) {
    s[0] = static_cast<float>(lr);
    s[1] = static_cast<float>(hp[3]);
    s[2] = static_cast<float>(hp[0]);
    s[3] = static_cast<float>(1.0 - hp[1]);
    s[4] = hp[2] != 0 ? 1.0f : 0.0f;
    s[5] = t <= 1 ? 1.0f : 0.0f;
  }
  BSX_HD static void step(float& p, float g, float* state, const float* s) {
    if (s[1] != 0.0f) g = fp::add(g, fp::mul(s[1], p));
    if (s[2] != 0.0f) {
      const float buf = s[5] != 0.0f ? g : fp::add(fp::mul(state[0], s[2]), fp::mul(g, s[3]));
      state[0] = buf;
      g = s[4] != 0.0f ? fp::add(g, fp::mul(s[2], buf)) : buf;
    }
    p = fp::sub(p, fp::mul(s[0], g));
  }
};

}  // namespace bsx::optim
