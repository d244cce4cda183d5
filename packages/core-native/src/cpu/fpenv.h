// Subnormal floats off the slow path: flush-to-zero (results) and denormals-are-zero (inputs)
// in the x86 MXCSR, for the engine's own arithmetic. Adam's first moment of a unit that stops
// receiving gradient decays by beta1 per step into the subnormal range (after ~800 steps at
// 0.9), where Intel cores take a microcode assist on every operation touching it (AMD's cores
// much less): a 2-7x slowdown of every later epoch, for values that no longer change the
// weights (PyTorch offers the same switch, torch.set_flush_denormal). Results differ from IEEE
// only where a subnormal would appear. The pool's workers run with it always; the thread that
// calls into the engine runs with it inside a FlushDenormals scope, which restores its MXCSR.
// BSX_FTZ=0 turns it off (read once).
// Reference: Intel 64 and IA-32 Architectures Software Developer's Manual, Vol. 1, 10.2.3.
#pragma once

namespace bsx::cpu {

// Whether the engine flushes subnormals (BSX_FTZ unset or not "0"), and on this CPU it can.
bool flush_denormals_enabled();

// Sets FTZ and DAZ on this thread when enabled (a no-op elsewhere) for the scope's lifetime.
class FlushDenormals {
 public:
  FlushDenormals();
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
  bool set_ = false;
};

// FTZ and DAZ on for good on this thread, when enabled (the pool's workers).
void flush_denormals_on_this_thread();

}  // namespace bsx::cpu
