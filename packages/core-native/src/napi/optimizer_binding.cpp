// ParseOptimizer and validateOptimizer() (napi/optimizer_binding.h).
#include "napi/optimizer_binding.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "napi/check.h"
#include "napi/guard.h"
#include "napi/register.h"

namespace bsx::napi {

OptimizerConfig ParseOptimizer(const Napi::Value& ov, const std::string& fn, int replicas) {
  Napi::Env env = ov.Env();
  if (!ov.IsObject() || ov.IsArray() || ov.IsTypedArray() || ov.IsFunction())
    ThrowType(env, fn + ": options must be an object { name, ...hyperparameters }, got " + Describe(ov));
  Napi::Object o = ov.As<Napi::Object>();
  // Read every property first (getters and proxies may run JS), check afterwards.
  napi_value keys_raw;
  if (napi_get_all_property_names(env, o, napi_key_own_only,
                                  static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                                  napi_key_numbers_to_strings, &keys_raw) != napi_ok)
    throw Napi::Error::New(env);
  Napi::Array keys(env, keys_raw);
  std::vector<std::pair<std::string, Napi::Value>> props;
  for (std::uint32_t i = 0; i < keys.Length(); ++i) {
    Napi::Value k = keys.Get(i);
    if (!k.IsString()) continue;
    const std::string name = k.As<Napi::String>().Utf8Value();
    props.emplace_back(name, o.Get(name));
  }
  std::vector<std::vector<Napi::Value>> elems(props.size());
  for (std::size_t i = 0; i < props.size(); ++i) {
    if (!props[i].second.IsArray()) continue;
    Napi::Array a = props[i].second.As<Napi::Array>();
    if (a.Length() != static_cast<std::uint32_t>(replicas))
      ThrowRange(env, fn + ": " + props[i].first + " must hold one value per replica (" + std::to_string(replicas) +
                          "), got " + std::to_string(a.Length()));
    for (std::uint32_t j = 0; j < a.Length(); ++j) elems[i].push_back(a.Get(j));
  }

  const auto name_it = std::find_if(props.begin(), props.end(), [](const auto& p) { return p.first == "name"; });
  if (name_it == props.end()) ThrowType(env, fn + ": options.name must name an optimizer, got undefined");
  const std::string name = ArgString(name_it->second, fn + ": name");
  optim::Kind kind;
  if (!optim::find(name, &kind)) {
    std::string known;
    for (const auto& d : optim::descriptors()) known += (known.empty() ? "" : ", ") + d.name;
    ThrowRange(env, fn + ": unknown optimizer '" + name + "' (known: " + known + ")");
  }
  const optim::Descriptor& d = optim::describe(kind);
  OptimizerConfig cfg;
  cfg.kind = kind;
  cfg.hyper.assign(static_cast<std::size_t>(replicas) * optim::kMaxHyper, 0.0);
  auto at = [&](int r, std::size_t h) -> double& {
    return cfg.hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + h];
  };
  for (int r = 0; r < replicas; ++r)
    for (std::size_t h = 0; h < d.hyper.size(); ++h) at(r, h) = d.hyper[h].def;

  for (std::size_t i = 0; i < props.size(); ++i) {
    const std::string& key = props[i].first;
    if (key == "name") continue;
    std::size_t h = 0;
    while (h < d.hyper.size() && key != d.hyper[h].name) ++h;
    if (h == d.hyper.size()) {
      std::string known;
      for (const auto& p : d.hyper) known += (known.empty() ? "" : ", ") + std::string(p.name);
      ThrowRange(env, fn + ": " + name + " has no hyperparameter '" + key + "' (its hyperparameters: " + known + ")");
    }
    const optim::HyperParam& hp = d.hyper[h];
    const Napi::Value& v = props[i].second;
    if (v.IsUndefined()) continue;
    const std::string where = fn + ": " + key;
    auto value_of = [&](const Napi::Value& x, const std::string& w) -> double {
      if (hp.boolean) {
        if (!x.IsBoolean()) ThrowType(env, w + " must be a boolean, got " + Describe(x));
        return x.As<Napi::Boolean>().Value() ? 1.0 : 0.0;
      }
      const double n = ArgNumber(x, w);
      if (!std::isfinite(n)) ThrowRange(env, w + " must be a finite number, got " + x.ToString().Utf8Value());
      return n;
    };
    if (v.IsArray()) {
      for (int r = 0; r < replicas; ++r)
        at(r, h) = value_of(elems[i][static_cast<std::size_t>(r)], where + "[" + std::to_string(r) + "]");
    } else if (v.IsTypedArray()) {
      if (hp.boolean) ThrowType(env, where + " must be a boolean or an array of booleans, got a typed array");
      auto a = ArgArray<double>(v, where, replicas);
      for (int r = 0; r < replicas; ++r) {
        if (!std::isfinite(a.Data()[r])) ThrowRange(env, where + "[" + std::to_string(r) + "] must be a finite number");
        at(r, h) = a.Data()[r];
      }
    } else {
      const double x = value_of(v, where);
      for (int r = 0; r < replicas; ++r) at(r, h) = x;
    }
  }
  const std::string err = optim::validate(kind, cfg.hyper.data(), replicas);
  if (!err.empty()) ThrowRange(env, fn + ": " + err);
  return cfg;
}

namespace {

// validateOptimizer(options) -> { name, <hyperparameter>: value } with every hyperparameter
// (defaults filled in), or the error setOptimizer would throw. One replica's values: arrays
// are refused.
Napi::Value ValidateOptimizer(const Napi::CallbackInfo& info, const std::string& fn) {
  Napi::Env env = info.Env();
  const OptimizerConfig cfg = ParseOptimizer(Arg(info, 0), fn, 1);
  const optim::Descriptor& d = optim::describe(cfg.kind);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", d.name);
  for (std::size_t h = 0; h < d.hyper.size(); ++h) {
    if (d.hyper[h].boolean) {
      o.Set(d.hyper[h].name, Napi::Boolean::New(env, cfg.hyper[h] != 0));
    } else {
      o.Set(d.hyper[h].name, Napi::Number::New(env, cfg.hyper[h]));
    }
  }
  return o;
}

}  // namespace

void RegisterOptimizer(Napi::Env env, Napi::Object exports) {
  exports.Set("validateOptimizer", Function<ValidateOptimizer>(env, "validateOptimizer"));
}

}  // namespace bsx::napi
