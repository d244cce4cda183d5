// Exception types of the engine beyond the standard ones, so that the bindings can give each
// failure its own error code: a bad BSX_* environment variable (EnvError).
#pragma once
#include <stdexcept>

namespace bsx {

struct EnvError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace bsx
