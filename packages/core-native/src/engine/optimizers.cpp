// The optimiser table's descriptions and checks (engine/optimizers.h).
#include "engine/optimizers.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace bsx::optim {

namespace {
template <typename Rule>
Descriptor make_descriptor(Kind kind) {
  Descriptor d;
  d.kind = kind;
  d.name = Rule::kName;
  d.reference = Rule::kReference;
  static_assert(Rule::kHyperCount <= kMaxHyper, "too many hyperparameters");
  static_assert(Rule::kStateCount <= kMaxState, "too many state slots");
  for (int i = 0; i < Rule::kHyperCount; ++i) d.hyper.push_back(Rule::kHyper[i]);
  for (int i = 0; i < Rule::kStateCount; ++i) d.state.emplace_back(Rule::kStateNames[i]);
  return d;
}

std::string number(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}
}  // namespace

const std::vector<Descriptor>& descriptors() {
  static const std::vector<Descriptor> table = [] {
    std::vector<Descriptor> t;
    for (int k = 0; k < kKindCount; ++k) {
      const Kind kind = static_cast<Kind>(k);
      t.push_back(visit(kind, [&](auto rule) { return make_descriptor<decltype(rule)>(kind); }));
    }
    return t;
  }();
  return table;
}

const Descriptor& describe(Kind kind) {
  const int k = static_cast<int>(kind);
  if (k < 0 || k >= kKindCount) throw std::invalid_argument("unknown optimizer kind");
  return descriptors()[static_cast<std::size_t>(k)];
}

bool find(const std::string& name, Kind* kind) {
  for (const Descriptor& d : descriptors()) {
    if (d.name == name) {
      *kind = d.kind;
      return true;
    }
  }
  return false;
}

std::string validate(Kind kind, const double* hp, int replicas) {
  const Descriptor& d = describe(kind);
  for (int r = 0; r < replicas; ++r) {
    const double* h = hp + static_cast<std::ptrdiff_t>(r) * kMaxHyper;
    for (std::size_t i = 0; i < d.hyper.size(); ++i) {
      const HyperParam& p = d.hyper[i];
      const double v = h[i];
      const std::string where = d.name + " " + p.name + (replicas > 1 ? " of replica " + std::to_string(r) : "");
      if (p.boolean) {
        if (v != 0 && v != 1) return where + " must be true or false, got " + number(v);
        continue;
      }
      const bool low = p.lo_open ? v > p.lo : v >= p.lo;
      const bool high = p.hi_open ? v < p.hi : v <= p.hi;
      if (!std::isfinite(v) || !low || !high)
        return where + " must be in " + (p.lo_open ? "(" : "[") + number(p.lo) + ", " + number(p.hi) +
               (p.hi_open ? ")" : "]") + ", got " + number(v);
    }
    const char* err = visit(kind, [&](auto rule) { return decltype(rule)::check(h); });
    if (err != nullptr)
      return d.name + (replicas > 1 ? " of replica " + std::to_string(r) : "") + ": " + err;
  }
  return "";
}

}  // namespace bsx::optim
