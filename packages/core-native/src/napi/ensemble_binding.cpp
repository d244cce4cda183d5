// Ensemble: R MLP replicas on one backend. Long calls (train, evaluate) run on a worker
// thread and return Promises (inputs copied on the JS thread first, baton style); while one
// runs, every other call on the same ensemble throws instead of racing it.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ensemble.h"
#include "napi/check.h"
#include "napi/dataset_binding.h"
#include "napi/register.h"

namespace bsx::napi {

namespace {

constexpr std::int64_t kMaxReplicas = 1 << 20;
constexpr std::int64_t kMaxWidth = 1 << 16;
constexpr std::int64_t kMaxBatch = 1 << 20;

// Runs `exec` off the JS thread; settles a Promise with `done()` or the exception's message.
class TaskWorker : public Napi::AsyncWorker {
 public:
  TaskWorker(Napi::Env env, std::function<void()> exec,
             std::function<Napi::Value(Napi::Env)> done, std::function<void()> finally)
      : Napi::AsyncWorker(env, "bsx:task"),
        deferred_(Napi::Promise::Deferred::New(env)),
        exec_(std::move(exec)),
        done_(std::move(done)),
        finally_(std::move(finally)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      exec_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    finally_();
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(done_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    finally_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> exec_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::function<void()> finally_;
};

Slot ParseSlot(const Napi::Value& v, const std::string& where) {
  const std::string s = ArgString(v, where);
  if (s == "param") return Slot::Param;
  if (s == "snapshot") return Slot::Snapshot;
  if (s == "adamM") return Slot::AdamM;
  if (s == "adamV") return Slot::AdamV;
  ThrowRange(v.Env(), where + " must be one of param, snapshot, adamM, adamV, got '" + s + "'");
}

class EnsembleWrap : public Napi::ObjectWrap<EnsembleWrap> {
 public:
  // new Ensemble({ replicas, widths: number[], backend: 'cpu' | 'cuda' })
  explicit EnsembleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EnsembleWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Value ov = Arg(info, 0);
    if (!ov.IsObject() || ov.IsArray() || ov.IsTypedArray())
      ThrowType(env, "Ensemble: options must be an object, got " + Describe(ov));
    Napi::Object o = ov.As<Napi::Object>();
    const int replicas =
        static_cast<int>(ArgInt(o.Get("replicas"), "Ensemble: replicas", 1, kMaxReplicas));
    Napi::Value wv = o.Get("widths");
    if (!wv.IsArray()) ThrowType(env, "Ensemble: widths must be an array of integers, got " + Describe(wv));
    Napi::Array wa = wv.As<Napi::Array>();
    if (wa.Length() < 2 || wa.Length() > 64)
      ThrowRange(env, "Ensemble: widths must have 2 to 64 entries, got " + std::to_string(wa.Length()));
    std::vector<int> widths;
    for (std::uint32_t i = 0; i < wa.Length(); ++i)
      widths.push_back(static_cast<int>(
          ArgInt(wa.Get(i), "Ensemble: widths[" + std::to_string(i) + "]", 1, kMaxWidth)));
    Napi::Value bv = o.Get("backend");
    const std::string backend = bv.IsUndefined() ? "cpu" : ArgString(bv, "Ensemble: backend");
    if (backend != "cpu" && backend != "cuda")
      ThrowRange(env, "Ensemble: backend must be 'cpu' or 'cuda', got '" + backend + "'");
    std::int64_t params = 0;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l)
      params += static_cast<std::int64_t>(widths[l]) * widths[l + 1] + widths[l + 1];
    if (static_cast<double>(params) * replicas > 4e9)
      ThrowRange(env, "Ensemble: " + std::to_string(replicas) + " replicas of " +
                          std::to_string(params) + " parameters are too many (limit 4e9 floats)");
    try {
      ens_ = make_ensemble(backend, replicas, widths);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("Ensemble: ") + e.what());
    }
  }

  static void Register(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(
        env, "Ensemble",
        {InstanceAccessor<&EnsembleWrap::Replicas>("replicas"),
         InstanceAccessor<&EnsembleWrap::Widths>("widths"),
         InstanceAccessor<&EnsembleWrap::Backend>("backend"),
         InstanceAccessor<&EnsembleWrap::ParameterCount>("parameterCount"),
         InstanceAccessor<&EnsembleWrap::Busy>("busy"),
         InstanceMethod<&EnsembleWrap::Init>("init"),
         InstanceMethod<&EnsembleWrap::Snapshot>("snapshot"),
         InstanceMethod<&EnsembleWrap::SetOptimizer>("setOptimizer"),
         InstanceMethod<&EnsembleWrap::ResetOptimizerState>("resetOptimizerState"),
         InstanceMethod<&EnsembleWrap::GetOptimizerSteps>("getOptimizerSteps"),
         InstanceMethod<&EnsembleWrap::SetOptimizerSteps>("setOptimizerSteps"),
         InstanceMethod<&EnsembleWrap::Train>("train"),
         InstanceMethod<&EnsembleWrap::Evaluate>("evaluate"),
         InstanceMethod<&EnsembleWrap::Forward>("forward"),
         InstanceMethod<&EnsembleWrap::Gradients>("gradients"),
         InstanceMethod<&EnsembleWrap::GetTensor>("getTensor"),
         InstanceMethod<&EnsembleWrap::SetTensor>("setTensor"),
         InstanceMethod<&EnsembleWrap::Stats>("stats"),
         InstanceMethod<&EnsembleWrap::SetTensorBroadcast>("setTensorBroadcast"),
         InstanceMethod<&EnsembleWrap::ResetToSnapshot>("resetToSnapshot"),
         InstanceMethod<&EnsembleWrap::GradTrials>("gradTrials")});
    GetAddonData(env).ensemble_ctor = Napi::Persistent(ctor);
    exports.Set("Ensemble", ctor);
  }

 private:
  void EnsureIdle(Napi::Env env, const char* where) {
    if (busy_.load())
      throw Napi::Error::New(env, std::string(where) +
                                      ": the ensemble is busy with a train/evaluate call; await "
                                      "it before using the ensemble again");
  }
  // Runs fn, turning engine exceptions into JS errors of the matching kind.
  template <typename F>
  auto Guard(Napi::Env env, const char* where, F&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::out_of_range& e) {
      ThrowRange(env, std::string(where) + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      ThrowType(env, std::string(where) + ": " + e.what());
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string(where) + ": " + e.what());
    }
  }
  std::int64_t R() const { return ens_->replicas(); }

  Napi::Value Replicas(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ens_->replicas());
  }
  Napi::Value Widths(const Napi::CallbackInfo& info) {
    Napi::Array a = Napi::Array::New(info.Env(), ens_->widths().size());
    for (std::size_t i = 0; i < ens_->widths().size(); ++i)
      a.Set(static_cast<std::uint32_t>(i), ens_->widths()[i]);
    return a;
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), ens_->backend());
  }
  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(ens_->parameter_count()));
  }
  Napi::Value Busy(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), busy_.load());
  }

  // init(seeds: Float64Array [R]): each an integer in [0, 2^53)
  Napi::Value Init(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "init");
    auto seeds = ArgArray<double>(Arg(info, 0), "init: seeds", R());
    std::vector<std::uint64_t> s(static_cast<std::size_t>(R()));
    for (std::int64_t r = 0; r < R(); ++r) {
      const double d = seeds.Data()[r];
      if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d)
        ThrowRange(env, "init: seeds[" + std::to_string(r) +
                            "] must be an integer in [0, 2^53), got " + std::to_string(d));
      s[r] = static_cast<std::uint64_t>(d);
    }
    Guard(env, "init", [&] { ens_->init_xavier(s); });
    return env.Undefined();
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    EnsureIdle(info.Env(), "snapshot");
    ens_->snapshot();
    return info.Env().Undefined();
  }

  // setOptimizer(kind: 'sgd' | 'adam', beta1?, beta2?, eps?)
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "setOptimizer");
    const std::string kind = ArgString(Arg(info, 0), "setOptimizer: kind");
    OptimizerConfig cfg;
    if (kind == "sgd") {
      cfg.kind = OptimizerKind::Sgd;
    } else if (kind == "adam") {
      cfg.kind = OptimizerKind::Adam;
    } else {
      ThrowRange(env, "setOptimizer: kind must be 'sgd' or 'adam', got '" + kind + "'");
    }
    auto opt_num = [&](std::size_t i, const char* name, float dflt, double lo, double hi) {
      Napi::Value v = Arg(info, i);
      if (v.IsUndefined()) return dflt;
      const double d = ArgNumber(v, std::string("setOptimizer: ") + name);
      if (!(d >= lo && d < hi))
        ThrowRange(env, std::string("setOptimizer: ") + name + " must be in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "), got " +
                            std::to_string(d));
      return static_cast<float>(d);
    };
    cfg.beta1 = opt_num(1, "beta1", 0.9f, 0.0, 1.0);
    cfg.beta2 = opt_num(2, "beta2", 0.999f, 0.0, 1.0);
    cfg.eps = opt_num(3, "eps", 1e-8f, 0.0, 1.0);
    ens_->set_optimizer(cfg);
    return env.Undefined();
  }

  Napi::Value ResetOptimizerState(const Napi::CallbackInfo& info) {
    EnsureIdle(info.Env(), "resetOptimizerState");
    ens_->reset_optimizer_state();
    return info.Env().Undefined();
  }

  Napi::Value GetOptimizerSteps(const Napi::CallbackInfo& info) {
    auto out = Napi::Float64Array::New(info.Env(), static_cast<std::size_t>(R()));
    for (std::int64_t r = 0; r < R(); ++r)
      out.Data()[r] = static_cast<double>(ens_->optimizer_steps()[r]);
    return out;
  }

  Napi::Value SetOptimizerSteps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "setOptimizerSteps");
    auto a = ArgArray<double>(Arg(info, 0), "setOptimizerSteps: steps", R());
    std::vector<std::int64_t> s(static_cast<std::size_t>(R()));
    for (std::int64_t r = 0; r < R(); ++r) {
      const double v = a.Data()[r];
      if (!(v >= 0 && v <= 9007199254740991.0) || std::floor(v) != v)
        ThrowRange(env, "setOptimizerSteps: steps[" + std::to_string(r) +
                            "] must be a non-negative integer");
      s[r] = static_cast<std::int64_t>(v);
    }
    ens_->set_optimizer_steps(s);
    return env.Undefined();
  }

  // Indices [R, per] from JS, each in [0, dataset.count), copied.
  std::vector<std::int32_t> CopyIndices(const Napi::Value& v, const std::string& where,
                                        std::int64_t per, const cpu::Dataset& ds) {
    Napi::Env env = v.Env();
    auto a = ArgArray<std::int32_t>(v, where, R() * per);
    std::vector<std::int32_t> idx(a.Data(), a.Data() + a.ElementLength());
    for (std::size_t i = 0; i < idx.size(); ++i)
      if (idx[i] < 0 || idx[i] >= ds.count)
        ThrowRange(env, where + "[" + std::to_string(i) + "] = " + std::to_string(idx[i]) +
                            " is outside the dataset (0.." + std::to_string(ds.count - 1) + ")");
    return idx;
  }

  void CheckDataset(Napi::Env env, const cpu::Dataset& ds, const std::string& where) {
    if (ds.dim != ens_->widths().front())
      ThrowRange(env, where + ": the dataset has " + std::to_string(ds.dim) +
                          " features, the model's input width is " +
                          std::to_string(ens_->widths().front()));
    if (ds.classes != ens_->widths().back())
      ThrowRange(env, where + ": the dataset has " + std::to_string(ds.classes) +
                          " classes, the model's output width is " +
                          std::to_string(ens_->widths().back()));
  }

  // Marks the ensemble busy and keeps it alive until the worker settles.
  std::function<void()> Hold(const Napi::CallbackInfo& info) {
    busy_.store(true);
    auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(info.This().As<Napi::Object>()));
    return [this, self]() mutable {
      busy_.store(false);
      self->Reset();
    };
  }

  // train(dataset, indices: Int32Array [R*n], n, batchSize, lr: Float32Array [R])
  //   -> Promise<Float64Array [R]> mean training loss per replica
  Napi::Value Train(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "train");
    DatasetWrap* dw = DatasetWrap::FromValue(Arg(info, 0), "train: dataset");
    auto ds = dw->dataset();
    CheckDataset(env, *ds, "train");
    const std::int64_t n = ArgInt(Arg(info, 2), "train: n", 1, 1LL << 31);
    const int batch = static_cast<int>(ArgInt(Arg(info, 3), "train: batchSize", 1, kMaxBatch));
    if (static_cast<double>(n) * R() > 2147483647.0)
      ThrowRange(env, "train: replicas * n must be < 2^31");
    auto idx = std::make_shared<std::vector<std::int32_t>>(
        CopyIndices(Arg(info, 1), "train: indices", n, *ds));
    auto lra = ArgArray<float>(Arg(info, 4), "train: lr", R());
    auto lr = std::make_shared<std::vector<float>>(lra.Data(), lra.Data() + R());
    for (std::int64_t r = 0; r < R(); ++r)
      if (!(std::isfinite((*lr)[r]) && (*lr)[r] > 0))
        ThrowRange(env, "train: lr[" + std::to_string(r) + "] must be a finite number > 0, got " +
                            std::to_string((*lr)[r]));
    auto loss = std::make_shared<std::vector<double>>(static_cast<std::size_t>(R()));
    Ensemble* ens = ens_.get();
    auto* w = new TaskWorker(
        env, [=] { ens->train(*ds, idx->data(), n, batch, lr->data(), loss->data()); },
        [loss](Napi::Env e) -> Napi::Value {
          auto out = Napi::Float64Array::New(e, loss->size());
          for (std::size_t i = 0; i < loss->size(); ++i) out.Data()[i] = (*loss)[i];
          return out;
        },
        Hold(info));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // evaluate(dataset, start = 0, count = dataset.count - start)
  //   -> Promise<{ lossSum: Float64Array [R], correct: Float64Array [R], count }>
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "evaluate");
    DatasetWrap* dw = DatasetWrap::FromValue(Arg(info, 0), "evaluate: dataset");
    auto ds = dw->dataset();
    CheckDataset(env, *ds, "evaluate");
    const std::int64_t start =
        Arg(info, 1).IsUndefined() ? 0 : ArgInt(Arg(info, 1), "evaluate: start", 0, ds->count - 1);
    const std::int64_t count = Arg(info, 2).IsUndefined()
                                   ? ds->count - start
                                   : ArgInt(Arg(info, 2), "evaluate: count", 1, ds->count - start);
    auto res = std::make_shared<EvalResult>();
    Ensemble* ens = ens_.get();
    auto* w = new TaskWorker(
        env, [=] { *res = ens->evaluate(*ds, start, count); },
        [res](Napi::Env e) -> Napi::Value {
          Napi::Object o = Napi::Object::New(e);
          auto ls = Napi::Float64Array::New(e, res->loss_sum.size());
          auto cc = Napi::Float64Array::New(e, res->correct.size());
          for (std::size_t i = 0; i < res->loss_sum.size(); ++i) {
            ls.Data()[i] = res->loss_sum[i];
            cc.Data()[i] = static_cast<double>(res->correct[i]);
          }
          o.Set("lossSum", ls);
          o.Set("correct", cc);
          o.Set("count", Napi::Number::New(e, static_cast<double>(res->count)));
          return o;
        },
        Hold(info));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // forward(dataset, indices: Int32Array [R*b], b) -> Float32Array [R*b*classes] log-probs
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "forward");
    DatasetWrap* dw = DatasetWrap::FromValue(Arg(info, 0), "forward: dataset");
    auto ds = dw->dataset();
    CheckDataset(env, *ds, "forward");
    const int b = static_cast<int>(ArgInt(Arg(info, 2), "forward: batchSize", 1, kMaxBatch));
    auto idx = CopyIndices(Arg(info, 1), "forward: indices", b, *ds);
    auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(R() * b * ens_->widths().back()));
    Guard(env, "forward", [&] { ens_->forward(*ds, idx.data(), b, out.Data()); });
    return out;
  }

  // gradients(dataset, indices: Int32Array [R*b], b)
  //   -> { loss: Float64Array [R], grads: Float32Array[] (W0, b0, W1, b1, ...; each [R, numel]) }
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "gradients");
    DatasetWrap* dw = DatasetWrap::FromValue(Arg(info, 0), "gradients: dataset");
    auto ds = dw->dataset();
    CheckDataset(env, *ds, "gradients");
    const int b = static_cast<int>(ArgInt(Arg(info, 2), "gradients: batchSize", 1, kMaxBatch));
    auto idx = CopyIndices(Arg(info, 1), "gradients: indices", b, *ds);
    Napi::Array grads = Napi::Array::New(env);
    std::vector<float*> ptrs;
    for (int t = 0; t < ens_->tensor_count(); ++t) {
      auto g = Napi::Float32Array::New(env, static_cast<std::size_t>(R() * ens_->tensor_numel(t)));
      ptrs.push_back(g.Data());
      grads.Set(static_cast<std::uint32_t>(t), g);
    }
    auto loss = Napi::Float64Array::New(env, static_cast<std::size_t>(R()));
    Guard(env, "gradients", [&] { ens_->gradients(*ds, idx.data(), b, ptrs, loss.Data()); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    o.Set("grads", grads);
    return o;
  }

  // getTensor(slot, t) -> Float32Array [R * numel(t)]
  Napi::Value GetTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "getTensor");
    const Slot s = ParseSlot(Arg(info, 0), "getTensor: slot");
    const int t = static_cast<int>(ArgInt(Arg(info, 1), "getTensor: tensor", 0, ens_->tensor_count() - 1));
    if (s == Slot::Snapshot && !ens_->has_snapshot())
      throw Napi::Error::New(env, "getTensor: no snapshot has been taken");
    auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(R() * ens_->tensor_numel(t)));
    Guard(env, "getTensor", [&] { ens_->get_tensor(s, t, out.Data()); });
    return out;
  }

  // setTensor(slot, t, data: Float32Array [R * numel(t)])
  Napi::Value SetTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "setTensor");
    const Slot s = ParseSlot(Arg(info, 0), "setTensor: slot");
    const int t = static_cast<int>(ArgInt(Arg(info, 1), "setTensor: tensor", 0, ens_->tensor_count() - 1));
    auto a = ArgArray<float>(Arg(info, 2), "setTensor: data", R() * ens_->tensor_numel(t));
    Guard(env, "setTensor", [&] { ens_->set_tensor(s, t, a.Data()); });
    return env.Undefined();
  }

  // stats() -> Float64Array [R, layers, 8] (see engine/ensemble.h)
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "stats");
    if (!ens_->has_snapshot()) throw Napi::Error::New(env, "stats: no snapshot has been taken");
    auto out = Napi::Float64Array::New(
        env, static_cast<std::size_t>(R() * ens_->layers() * kStatsPerLayer));
    Guard(env, "stats", [&] { ens_->stats(out.Data()); });
    return out;
  }

  // setTensorBroadcast(slot, t, data: Float32Array [numel(t)]): every replica gets `data`
  Napi::Value SetTensorBroadcast(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "setTensorBroadcast");
    const Slot s = ParseSlot(Arg(info, 0), "setTensorBroadcast: slot");
    const int t = static_cast<int>(ArgInt(Arg(info, 1), "setTensorBroadcast: tensor", 0, ens_->tensor_count() - 1));
    auto a = ArgArray<float>(Arg(info, 2), "setTensorBroadcast: data", ens_->tensor_numel(t));
    Guard(env, "setTensorBroadcast", [&] { ens_->set_tensor_broadcast(s, t, a.Data()); });
    return env.Undefined();
  }

  Napi::Value ResetToSnapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "resetToSnapshot");
    if (!ens_->has_snapshot()) throw Napi::Error::New(env, "resetToSnapshot: no snapshot has been taken");
    ens_->reset_to_snapshot();
    return env.Undefined();
  }

  static std::vector<float> CopyEdges(const Napi::Value& v, const std::string& where) {
    Napi::Env env = v.Env();
    auto a = ArgArray<float>(v, where);
    if (a.ElementLength() < 2 || a.ElementLength() > (1u << 20))
      ThrowRange(env, where + " must hold 2 to 2^20 edges, got " + std::to_string(a.ElementLength()));
    std::vector<float> e(a.Data(), a.Data() + a.ElementLength());
    for (std::size_t i = 0; i < e.size(); ++i) {
      if (!std::isfinite(e[i])) ThrowRange(env, where + "[" + std::to_string(i) + "] is not finite");
      if (i > 0 && !(e[i] > e[i - 1]))
        ThrowRange(env, where + " must be strictly increasing (at index " + std::to_string(i) + ")");
    }
    return e;
  }

  // gradTrials(dataset, indices: Int32Array [R*n], n, batchSize, lr, edgesMean: Float32Array,
  //            edgesSum: Float32Array, exportS: boolean)
  //   -> Promise<{ stats: Float64Array [R*6], histMean: Float64Array, histSum: Float64Array,
  //                s?: Float32Array [R * numel(last weight)] }>
  Napi::Value GradTrials(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureIdle(env, "gradTrials");
    DatasetWrap* dw = DatasetWrap::FromValue(Arg(info, 0), "gradTrials: dataset");
    auto ds = dw->dataset();
    CheckDataset(env, *ds, "gradTrials");
    const std::int64_t n = ArgInt(Arg(info, 2), "gradTrials: n", 1, 1LL << 24);
    const int batch = static_cast<int>(ArgInt(Arg(info, 3), "gradTrials: batchSize", 1, kMaxBatch));
    if (static_cast<double>(n) * R() > 2147483647.0) ThrowRange(env, "gradTrials: replicas * n must be < 2^31");
    auto idx = std::make_shared<std::vector<std::int32_t>>(CopyIndices(Arg(info, 1), "gradTrials: indices", n, *ds));
    const double lr = ArgNumber(Arg(info, 4), "gradTrials: lr");
    if (!(std::isfinite(lr) && lr > 0)) ThrowRange(env, "gradTrials: lr must be a finite number > 0");
    auto em = std::make_shared<std::vector<float>>(CopyEdges(Arg(info, 5), "gradTrials: edgesMean"));
    auto es = std::make_shared<std::vector<float>>(CopyEdges(Arg(info, 6), "gradTrials: edgesSum"));
    Napi::Value ev = Arg(info, 7);
    if (!ev.IsUndefined() && !ev.IsBoolean()) ThrowType(env, "gradTrials: exportS must be a boolean, got " + Describe(ev));
    const bool want_s = ev.IsBoolean() && ev.As<Napi::Boolean>().Value();
    if (ens_->optimizer().kind != OptimizerKind::Sgd)
      throw Napi::Error::New(env, "gradTrials: the trials take plain SGD steps; call setOptimizer('sgd') first");
    const int last = 2 * (ens_->layers() - 1);
    auto s_out = std::make_shared<std::vector<float>>(want_s ? static_cast<std::size_t>(R() * ens_->tensor_numel(last)) : 0);
    auto res = std::make_shared<GradTrialsResult>();
    Ensemble* ens = ens_.get();
    auto* w = new TaskWorker(
        env,
        [=] {
          HistogramSpec hm{em->data(), static_cast<int>(em->size()) - 1};
          HistogramSpec hs{es->data(), static_cast<int>(es->size()) - 1};
          *res = ens->grad_trials(*ds, idx->data(), n, batch, static_cast<float>(lr), hm, hs,
                                  want_s ? s_out->data() : nullptr);
        },
        [res, s_out, want_s](Napi::Env e) -> Napi::Value {
          Napi::Object o = Napi::Object::New(e);
          auto st = Napi::Float64Array::New(e, res->stats.size());
          std::copy(res->stats.begin(), res->stats.end(), st.Data());
          auto hm = Napi::Float64Array::New(e, res->hist_mean.size());
          for (std::size_t i = 0; i < res->hist_mean.size(); ++i) hm.Data()[i] = static_cast<double>(res->hist_mean[i]);
          auto hs = Napi::Float64Array::New(e, res->hist_sum.size());
          for (std::size_t i = 0; i < res->hist_sum.size(); ++i) hs.Data()[i] = static_cast<double>(res->hist_sum[i]);
          o.Set("stats", st);
          o.Set("histMean", hm);
          o.Set("histSum", hs);
          if (want_s) {
            auto sa = Napi::Float32Array::New(e, s_out->size());
            std::copy(s_out->begin(), s_out->end(), sa.Data());
            o.Set("s", sa);
          }
          return o;
        },
        Hold(info));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  std::unique_ptr<Ensemble> ens_;
  std::atomic<bool> busy_{false};
};

}  // namespace

void RegisterEnsemble(Napi::Env env, Napi::Object exports) { EnsembleWrap::Register(env, exports); }

}  // namespace bsx::napi
