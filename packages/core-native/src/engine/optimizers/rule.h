// What every optimiser of the engine is made of: its hyperparameters (name, default, valid
// range), its state slots, and an element rule written once for the CPU and the CUDA backend
// (host and device code; the emulation of the CUDA runtime compiles it as plain C++).
//
// An optimiser is a struct with
//   static constexpr const char* kName, kReference;
//   static constexpr HyperParam kHyper[kHyperCount];           // in the order of hp[]
//   static constexpr const char* kStateNames[kStateCount];     // its state tensors
//   static const char* check(const double* hp);                // nullptr or what is wrong
//   static bool uses_state(const double* hp);                  // the state tensors are used
//   static bool is_plain_sgd(const double* hp);                // p -= lr * g exactly
//   BSX_HD static void prepare(const double* hp, double lr, long long t, float* s);
//   BSX_HD static void step(float& p, float g, float* state, const float* s);
// prepare() turns one replica's hyperparameters, learning rate and step count t (1 at the
// first step since its state was reset) into the per-step scalars s[kScalars] (in double,
// then rounded once); step() updates one parameter p with its gradient g and its state
// values state[kStateCount], in float with every operation rounded on its own (no fused
// multiply-add), so that the CPU and the GPU give the same bits for the same gradient.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace bsx::optim {

constexpr int kMaxHyper = 4;    // hyperparameters per optimiser (besides the lr)
constexpr int kMaxState = 2;    // state tensors per parameter tensor
constexpr int kMaxScalars = 8;  // per-replica scalars of one step

struct HyperParam {
  const char* name;
  double def;
  double lo, hi;        // valid range
  bool lo_open, hi_open;  // the bound itself is excluded
  bool boolean;          // 0 or 1
  const char* doc;
};

// Float operations rounded one at a time (the CUDA intrinsics on the device; plain operations
// on the host, where the engine is compiled without floating-point contraction).
namespace fp {
BSX_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
BSX_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
BSX_HD float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
BSX_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
BSX_HD float sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
}  // namespace fp

}  // namespace bsx::optim
