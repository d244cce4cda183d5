// The engine's optimisers, one table: each entry is a struct in engine/optimizers/ that
// describes it (name, hyperparameters with defaults and ranges, state slots) and holds its
// element rule, shared by the CPU and CUDA backends. Everything else (the bindings, the
// checkpoints, the TypeScript types and the command line) reads this table at run time.
// Adding an optimiser: its struct, one line in Kind and one in visit() below, and its
// reference test.
#pragma once
#include <string>
#include <vector>

#include "engine/optimizers/adam.h"
#include "engine/optimizers/rule.h"
#include "engine/optimizers/sgd.h"

namespace bsx::optim {

enum class Kind : int { Sgd = 0, Adam = 1, AdamW = 2 };
constexpr int kKindCount = 3;

// Calls f(Rule{}) with the optimiser struct of `kind`.
template <typename F>
decltype(auto) visit(Kind kind, F&& f) {
  switch (kind) {
    case Kind::Sgd: return f(Sgd{});
    case Kind::Adam: return f(Adam{});
    case Kind::AdamW: return f(AdamW{});
  }
  return f(Sgd{});
}

// The description of one optimiser, as the table above gives it.
struct Descriptor {
  Kind kind;
  std::string name;
  std::string reference;
  std::vector<HyperParam> hyper;
  std::vector<std::string> state;
};

const std::vector<Descriptor>& descriptors();
const Descriptor& describe(Kind kind);
// The kind named `name`; false when there is none.
bool find(const std::string& name, Kind* kind);

// Checks the hyperparameters of R replicas (hp: [R, kMaxHyper], the optimiser's own first):
// each in its range, booleans 0 or 1, and the optimiser's own rule; returns "" or a message
// that names the replica, the hyperparameter and the value.
std::string validate(Kind kind, const double* hp, int replicas);

}  // namespace bsx::optim
