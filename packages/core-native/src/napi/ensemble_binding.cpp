// Ensemble: R MLP replicas on one backend.
//   new Ensemble({ replicas, widths: number[], backend?: 'cpu' | 'cuda' })
// Long calls (train, evaluate, gradTrials) run on a worker thread and return Promises (inputs
// copied on the JS thread first, baton style). Every method checks its receiver (type tag),
// reads and checks all its arguments, and only then claims the ensemble: while a long call
// runs, every other call on the same ensemble is refused (BSX_BUSY) instead of racing it.
// dispose() frees the engine's memory (at the end of a running call, if one runs); every
// later call but `disposed` and `dispose()` throws BSX_DISPOSED.
// The optimisers, the slots of their state and the names of the statistics come from the
// engine's tables (engine/optimizers.h, engine/ensemble.h), listed by describe()
// (info_binding.cpp).
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "cuda/cuda_backend.h"
#include "engine/ensemble.h"
#include "napi/async_task.h"
#include "napi/check.h"
#include "napi/dataset_binding.h"
#include "napi/guard.h"
#include "napi/optimizer_binding.h"
#include "napi/register.h"

namespace bsx::napi {

namespace {

constexpr std::int64_t kMaxReplicas = 1 << 20;
constexpr std::int64_t kMaxWidth = 1 << 16;
constexpr std::int64_t kMaxBatch = 1 << 20;

// The engine object and its busy flag, shared by the JS wrapper and the calls in flight: a
// call keeps it alive after dispose() or after the wrapper was collected.
struct Core {
  std::unique_ptr<Ensemble> ens;
  std::atomic<bool> busy{false};
};

double PhysicalMemoryBytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<double>(pages) * static_cast<double>(page);
#endif
  return 0;
}

std::string Gigabytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  return buf;
}

class EnsembleWrap : public Napi::ObjectWrap<EnsembleWrap> {
 public:
  static const napi_type_tag kTag;
  static constexpr const char* kClass = "Ensemble";

  explicit EnsembleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EnsembleWrap>(info) {
    Napi::Env env = info.Env();
    Guard(env, "new Ensemble", [&] { Construct(info); });
    info.This().As<Napi::Object>().TypeTag(&kTag);
  }

  static Napi::Value OnCalledAsFunction(const Napi::CallbackInfo& info) {
    return CalledAsFunction<EnsembleWrap>(info);
  }

  static void Register(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "Ensemble", {});
    Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
    using E = EnsembleWrap;
    proto.DefineProperties({
        Getter<E, &E::Replicas>("Ensemble.replicas", "replicas"),
        Getter<E, &E::Widths>("Ensemble.widths", "widths"),
        Getter<E, &E::Backend>("Ensemble.backend", "backend"),
        Getter<E, &E::ParameterCount>("Ensemble.parameterCount", "parameterCount"),
        Getter<E, &E::Busy>("Ensemble.busy", "busy"),
        Getter<E, &E::Disposed>("Ensemble.disposed", "disposed"),
        Method<E, &E::Init>(env, "Ensemble.init", "init"),
        Method<E, &E::Snapshot>(env, "Ensemble.snapshot", "snapshot"),
        Method<E, &E::SetOptimizer>(env, "Ensemble.setOptimizer", "setOptimizer"),
        Method<E, &E::GetOptimizer>(env, "Ensemble.getOptimizer", "getOptimizer"),
        Method<E, &E::ResetOptimizerState>(env, "Ensemble.resetOptimizerState", "resetOptimizerState"),
        Method<E, &E::GetOptimizerSteps>(env, "Ensemble.getOptimizerSteps", "getOptimizerSteps"),
        Method<E, &E::SetOptimizerSteps>(env, "Ensemble.setOptimizerSteps", "setOptimizerSteps"),
        Method<E, &E::StepPath>(env, "Ensemble.stepPath", "stepPath"),
        Method<E, &E::Train>(env, "Ensemble.train", "train"),
        Method<E, &E::Evaluate>(env, "Ensemble.evaluate", "evaluate"),
        Method<E, &E::Forward>(env, "Ensemble.forward", "forward"),
        Method<E, &E::Gradients>(env, "Ensemble.gradients", "gradients"),
        Method<E, &E::GetTensor>(env, "Ensemble.getTensor", "getTensor"),
        Method<E, &E::SetTensor>(env, "Ensemble.setTensor", "setTensor"),
        Method<E, &E::SetTensorBroadcast>(env, "Ensemble.setTensorBroadcast", "setTensorBroadcast"),
        Method<E, &E::Stats>(env, "Ensemble.stats", "stats"),
        Method<E, &E::ResetToSnapshot>(env, "Ensemble.resetToSnapshot", "resetToSnapshot"),
        Method<E, &E::GradTrials>(env, "Ensemble.gradTrials", "gradTrials"),
        Method<E, &E::Dispose>(env, "Ensemble.dispose", "dispose"),
    });
    exports.Set("Ensemble", ctor);
  }

 private:
  void Construct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = "new Ensemble";
    Napi::Value ov = Arg(info, 0);
    if (!ov.IsObject() || ov.IsArray() || ov.IsTypedArray() || ov.IsFunction())
      ThrowType(env, fn + ": options must be an object, got " + Describe(ov));
    Napi::Object o = ov.As<Napi::Object>();
    // every property read (may run getters) before any check that relies on them
    Napi::Value rv = o.Get("replicas"), wv = o.Get("widths"), bv = o.Get("backend");
    const int replicas = static_cast<int>(ArgInt(rv, fn + ": replicas", 1, kMaxReplicas));
    if (!wv.IsArray()) ThrowType(env, fn + ": widths must be an array of integers, got " + Describe(wv));
    Napi::Array wa = wv.As<Napi::Array>();
    const std::uint32_t nw = wa.Length();
    if (nw < 2 || nw > 64) ThrowRange(env, fn + ": widths must have 2 to 64 entries, got " + std::to_string(nw));
    std::vector<Napi::Value> wvals;
    for (std::uint32_t i = 0; i < nw; ++i) wvals.push_back(wa.Get(i));
    std::vector<int> widths;
    for (std::uint32_t i = 0; i < nw; ++i)
      widths.push_back(static_cast<int>(ArgInt(wvals[i], fn + ": widths[" + std::to_string(i) + "]", 1, kMaxWidth)));
    const std::string backend = bv.IsUndefined() ? "cpu" : ArgString(bv, fn + ": backend");
    if (backend != "cpu" && backend != "cuda")
      ThrowRange(env, fn + ": backend must be 'cpu' or 'cuda', got '" + backend + "'");
    CheckMemory(env, fn, replicas, widths, backend);
    auto core = std::make_shared<Core>();
    try {
      core->ens = make_ensemble(backend, replicas, widths);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      const bool unavailable = backend == "cuda" && std::string(e.what()).rfind("cuda: unavailable", 0) == 0;
      ThrowError(env, unavailable ? code::kDeviceUnavailable : code::kNative, fn + ": " + e.what());
    }
    core_ = std::move(core);
  }

  // Refuses an ensemble whose parameters, gradients and snapshot alone need more memory than
  // the machine (or the GPU) has, before anything is allocated.
  static void CheckMemory(Napi::Env env, const std::string& fn, int replicas, const std::vector<int>& widths,
                          const std::string& backend) {
    double params = 0;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l)
      params += static_cast<double>(widths[l]) * widths[l + 1] + widths[l + 1];
    const double need = 3.0 * 4.0 * params * replicas;
    double have = 0;
    std::string where = "this machine has";
    if (backend == "cuda") {
      const cuda::DeviceInfo d = cuda::probe();
      if (d.available) {
        have = static_cast<double>(d.total_memory);
        where = "the GPU has";
      }
    } else {
      have = PhysicalMemoryBytes();
    }
    if ((have > 0 && need > have) || need > 1.6e10 * 4)
      throw WithCode(Napi::RangeError::New(env, fn + ": " + std::to_string(replicas) + " replicas of " +
                                                    std::to_string(static_cast<long long>(params)) +
                                                    " parameters need at least " + Gigabytes(need) +
                                                    " (parameters, gradients and snapshot); " + where + " " +
                                                    Gigabytes(have)),
                     code::kTooLarge);
  }

  // The ensemble for a call that reads or changes nothing a running call uses.
  Ensemble& Live(Napi::Env env, const std::string& fn) const {
    if (!core_) ThrowError(env, code::kDisposed, fn + ": the ensemble has been disposed");
    return *core_->ens;
  }
  // The ensemble for a call that uses its state: refused while a long call runs.
  Ensemble& Idle(Napi::Env env, const std::string& fn) const {
    Ensemble& e = Live(env, fn);
    if (core_->busy.load())
      ThrowError(env, code::kBusy, fn + ": the ensemble is busy with a train, evaluate or gradTrials call; "
                                        "await it before using the ensemble again");
    return e;
  }
  // Claims the ensemble for a long call; the returned release() frees it.
  std::shared_ptr<Core> Claim(Napi::Env env, const std::string& fn) {
    Idle(env, fn);
    core_->busy.store(true);
    return core_;
  }
  static std::function<void()> Releaser(std::shared_ptr<Core> core) {
    return [core]() { core->busy.store(false); };
  }

  std::int64_t R(Napi::Env env, const std::string& fn) const { return Live(env, fn).replicas(); }

  Napi::Value Replicas(const Napi::CallbackInfo& info, const std::string& fn) {
    return Napi::Number::New(info.Env(), Live(info.Env(), fn).replicas());
  }
  Napi::Value Widths(const Napi::CallbackInfo& info, const std::string& fn) {
    const std::vector<int>& w = Live(info.Env(), fn).widths();
    Napi::Array a = Napi::Array::New(info.Env(), w.size());
    for (std::size_t i = 0; i < w.size(); ++i) a.Set(static_cast<std::uint32_t>(i), w[i]);
    return a;
  }
  Napi::Value Backend(const Napi::CallbackInfo& info, const std::string& fn) {
    return Napi::String::New(info.Env(), Live(info.Env(), fn).backend());
  }
  Napi::Value ParameterCount(const Napi::CallbackInfo& info, const std::string& fn) {
    return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env(), fn).parameter_count()));
  }
  Napi::Value Busy(const Napi::CallbackInfo& info, const std::string&) {
    return Napi::Boolean::New(info.Env(), core_ && core_->busy.load());
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info, const std::string&) {
    return Napi::Boolean::New(info.Env(), !core_);
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info, const std::string&) {
    core_.reset();  // a call in flight holds its own reference and frees the engine at its end
    return info.Env().Undefined();
  }

  // init(seeds: Float64Array [R]): each an integer in [0, 2^53)
  Napi::Value Init(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto seeds = ArgArray<double>(Arg(info, 0), fn + ": seeds", R_);
    std::vector<std::uint64_t> s(static_cast<std::size_t>(R_));
    for (std::int64_t r = 0; r < R_; ++r) {
      const double d = seeds.Data()[r];
      if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d)
        ThrowRange(env, fn + ": seeds[" + std::to_string(r) + "] must be an integer in [0, 2^53), got " +
                            std::to_string(d));
      s[r] = static_cast<std::uint64_t>(d);
    }
    Idle(env, fn).init_xavier(s);
    return env.Undefined();
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info, const std::string& fn) {
    Idle(info.Env(), fn).snapshot();
    return info.Env().Undefined();
  }

  // setOptimizer({ name, <hyperparameter>: value | one value per replica }) (see
  // napi/optimizer_binding.h)
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const OptimizerConfig cfg = ParseOptimizer(Arg(info, 0), fn, static_cast<int>(R(env, fn)));
    Idle(env, fn).set_optimizer(cfg);
    return env.Undefined();
  }

  // getOptimizer() -> { name, <hyperparameter>: Float64Array [R] ... }
  Napi::Value GetOptimizer(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const Ensemble& e = Live(env, fn);
    const optim::Descriptor& d = e.optimizer_descriptor();
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    for (std::size_t h = 0; h < d.hyper.size(); ++h) {
      auto a = Napi::Float64Array::New(env, static_cast<std::size_t>(e.replicas()));
      for (int r = 0; r < e.replicas(); ++r)
        a.Data()[r] = e.optimizer().hyper[static_cast<std::size_t>(r) * optim::kMaxHyper + h];
      o.Set(d.hyper[h].name, a);
    }
    return o;
  }

  Napi::Value ResetOptimizerState(const Napi::CallbackInfo& info, const std::string& fn) {
    Idle(info.Env(), fn).reset_optimizer_state();
    return info.Env().Undefined();
  }

  Napi::Value GetOptimizerSteps(const Napi::CallbackInfo& info, const std::string& fn) {
    const Ensemble& e = Idle(info.Env(), fn);
    auto out = Napi::Float64Array::New(info.Env(), static_cast<std::size_t>(e.replicas()));
    for (int r = 0; r < e.replicas(); ++r) out.Data()[r] = static_cast<double>(e.optimizer_steps()[r]);
    return out;
  }

  Napi::Value SetOptimizerSteps(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto a = ArgArray<double>(Arg(info, 0), fn + ": steps", R_);
    std::vector<std::int64_t> s(static_cast<std::size_t>(R_));
    for (std::int64_t r = 0; r < R_; ++r) {
      const double v = a.Data()[r];
      if (!(v >= 0 && v <= 9007199254740991.0) || std::floor(v) != v)
        ThrowRange(env, fn + ": steps[" + std::to_string(r) + "] must be a non-negative integer");
      s[r] = static_cast<std::int64_t>(v);
    }
    Idle(env, fn).set_optimizer_steps(s);
    return env.Undefined();
  }

  // stepPath(batchSize) -> { path, reason }: which kernels a training step of that batch
  // size takes with the current optimiser.
  Napi::Value StepPath(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const int b = static_cast<int>(ArgInt(Arg(info, 0), fn + ": batchSize", 1, kMaxBatch));
    const StepPathInfo p = Live(env, fn).step_path(b);
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", p.path);
    o.Set("reason", p.reason);
    return o;
  }

  // Indices [R, per] from JS, each in [0, dataset.count), copied.
  std::vector<std::int32_t> CopyIndices(const Napi::Value& v, const std::string& where, std::int64_t R_,
                                        std::int64_t per, const cpu::Dataset& ds) {
    Napi::Env env = v.Env();
    auto a = ArgArray<std::int32_t>(v, where, R_ * per);
    std::vector<std::int32_t> idx(a.Data(), a.Data() + a.ElementLength());
    for (std::size_t i = 0; i < idx.size(); ++i)
      if (idx[i] < 0 || idx[i] >= ds.count)
        ThrowRange(env, where + "[" + std::to_string(i) + "] = " + std::to_string(idx[i]) +
                            " is outside the dataset (0.." + std::to_string(ds.count - 1) + ")");
    return idx;
  }

  void CheckDataset(Napi::Env env, const cpu::Dataset& ds, const std::string& fn) const {
    const Ensemble& e = Live(env, fn);
    if (ds.dim != e.widths().front())
      ThrowRange(env, fn + ": the dataset has " + std::to_string(ds.dim) + " features, the model's input width is " +
                          std::to_string(e.widths().front()));
    if (ds.classes != e.widths().back())
      ThrowRange(env, fn + ": the dataset has " + std::to_string(ds.classes) +
                          " classes, the model's output width is " + std::to_string(e.widths().back()));
  }

  // train(dataset, indices: Int32Array [R*n], n, batchSize, lr: Float32Array [R])
  //   -> Promise<Float64Array [R]> mean training loss per replica
  Napi::Value Train(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto ds = DatasetWrap::FromValue(Arg(info, 0), fn + ": dataset");
    CheckDataset(env, *ds, fn);
    const std::int64_t n = ArgInt(Arg(info, 2), fn + ": n", 1, 1LL << 31);
    const int batch = static_cast<int>(ArgInt(Arg(info, 3), fn + ": batchSize", 1, kMaxBatch));
    if (static_cast<double>(n) * R_ > 2147483647.0) ThrowRange(env, fn + ": replicas * n must be < 2^31");
    auto idx = std::make_shared<std::vector<std::int32_t>>(CopyIndices(Arg(info, 1), fn + ": indices", R_, n, *ds));
    auto lra = ArgArray<float>(Arg(info, 4), fn + ": lr", R_);
    auto lr = std::make_shared<std::vector<float>>(lra.Data(), lra.Data() + R_);
    for (std::int64_t r = 0; r < R_; ++r)
      if (!(std::isfinite((*lr)[r]) && (*lr)[r] > 0))
        ThrowRange(env, fn + ": lr[" + std::to_string(r) + "] must be a finite number > 0, got " +
                            std::to_string((*lr)[r]));
    auto loss = std::make_shared<std::vector<double>>(static_cast<std::size_t>(R_));
    std::shared_ptr<Core> core = Claim(env, fn);
    TaskSpec t;
    t.exec = [core, ds, idx, n, batch, lr, loss] {
      core->ens->train(*ds, idx->data(), n, batch, lr->data(), loss->data());
    };
    t.done = [loss](Napi::Env e) -> Napi::Value {
      auto out = Napi::Float64Array::New(e, loss->size());
      std::copy(loss->begin(), loss->end(), out.Data());
      return out;
    };
    t.release = Releaser(core);
    return StartTask(env, fn, std::move(t));
  }

  // evaluate(dataset, start = 0, count = dataset.count - start)
  //   -> Promise<{ lossSum: Float64Array [R], correct: Float64Array [R], count }>
  Napi::Value Evaluate(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    auto ds = DatasetWrap::FromValue(Arg(info, 0), fn + ": dataset");
    CheckDataset(env, *ds, fn);
    const std::int64_t start =
        Arg(info, 1).IsUndefined() ? 0 : ArgInt(Arg(info, 1), fn + ": start", 0, ds->count - 1);
    const std::int64_t count = Arg(info, 2).IsUndefined()
                                   ? ds->count - start
                                   : ArgInt(Arg(info, 2), fn + ": count", 1, ds->count - start);
    auto res = std::make_shared<EvalResult>();
    std::shared_ptr<Core> core = Claim(env, fn);
    TaskSpec t;
    t.exec = [core, ds, start, count, res] { *res = core->ens->evaluate(*ds, start, count); };
    t.done = [res](Napi::Env e) -> Napi::Value {
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
    };
    t.release = Releaser(core);
    return StartTask(env, fn, std::move(t));
  }

  // forward(dataset, indices: Int32Array [R*b], b) -> Float32Array [R*b*classes] log-probs
  Napi::Value Forward(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto ds = DatasetWrap::FromValue(Arg(info, 0), fn + ": dataset");
    CheckDataset(env, *ds, fn);
    const int b = static_cast<int>(ArgInt(Arg(info, 2), fn + ": batchSize", 1, kMaxBatch));
    if (static_cast<double>(b) * R_ > 2147483647.0) ThrowRange(env, fn + ": replicas * batchSize must be < 2^31");
    auto idx = CopyIndices(Arg(info, 1), fn + ": indices", R_, b, *ds);
    Ensemble& e = Idle(env, fn);
    // The result is one typed array made by V8, which ends the process instead of throwing
    // when it cannot allocate it: refused beyond the machine's memory or V8's limit of 2^32
    // elements for a typed array made through its API.
    const double floats = static_cast<double>(R_) * b * e.widths().back(), have = PhysicalMemoryBytes();
    if (floats > 4294967296.0 || (have > 0 && 4.0 * floats > have))
      throw WithCode(Napi::RangeError::New(env, fn + ": the result (replicas x batchSize x classes = " +
                                                    std::to_string(static_cast<long long>(floats)) + " floats, " +
                                                    Gigabytes(4.0 * floats) + ") is larger than a typed array can be (2^32 " +
                                                    "elements, and this machine has " + Gigabytes(have) + ")"),
                     code::kTooLarge);
    auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(R_ * b * e.widths().back()));
    e.forward(*ds, idx.data(), b, out.Data());
    return out;
  }

  // gradients(dataset, indices: Int32Array [R*b], b)
  //   -> { loss: Float64Array [R], grads: Float32Array[] (W0, b0, W1, b1, ...; each [R, numel]) }
  Napi::Value Gradients(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto ds = DatasetWrap::FromValue(Arg(info, 0), fn + ": dataset");
    CheckDataset(env, *ds, fn);
    const int b = static_cast<int>(ArgInt(Arg(info, 2), fn + ": batchSize", 1, kMaxBatch));
    if (static_cast<double>(b) * R_ > 2147483647.0) ThrowRange(env, fn + ": replicas * batchSize must be < 2^31");
    auto idx = CopyIndices(Arg(info, 1), fn + ": indices", R_, b, *ds);
    Ensemble& e = Idle(env, fn);
    Napi::Array grads = Napi::Array::New(env);
    std::vector<float*> ptrs;
    for (int t = 0; t < e.tensor_count(); ++t) {
      auto g = Napi::Float32Array::New(env, static_cast<std::size_t>(R_ * e.tensor_numel(t)));
      ptrs.push_back(g.Data());
      grads.Set(static_cast<std::uint32_t>(t), g);
    }
    auto loss = Napi::Float64Array::New(env, static_cast<std::size_t>(R_));
    e.gradients(*ds, idx.data(), b, ptrs, loss.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    o.Set("grads", grads);
    return o;
  }

  // A slot by name: 'param', 'snapshot' or a state slot of the current optimiser.
  Slot ParseSlot(const Napi::Value& v, const std::string& where, const Ensemble& e) {
    const std::string s = ArgString(v, where);
    if (s == "param") return Slot::Param;
    if (s == "snapshot") return Slot::Snapshot;
    const optim::Descriptor& d = e.optimizer_descriptor();
    std::string known = "param, snapshot";
    for (std::size_t k = 0; k < d.state.size(); ++k) {
      if (s == d.state[k]) return state_slot(static_cast<int>(k));
      known += ", " + d.state[k];
    }
    ThrowRange(v.Env(), where + " must be one of " + known + " (the optimizer is " + d.name + "), got '" + s + "'");
  }

  // getTensor(slot, t) -> Float32Array [R * numel(t)]
  Napi::Value GetTensor(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    Ensemble& e = Idle(env, fn);
    const Slot s = ParseSlot(Arg(info, 0), fn + ": slot", e);
    const int t = static_cast<int>(ArgInt(Arg(info, 1), fn + ": tensor", 0, e.tensor_count() - 1));
    if (s == Slot::Snapshot && !e.has_snapshot()) ThrowError(env, code::kInvalidState, fn + ": no snapshot has been taken");
    auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(e.replicas() * e.tensor_numel(t)));
    e.get_tensor(s, t, out.Data());
    return out;
  }

  // setTensor(slot, t, data: Float32Array [R * numel(t)])
  Napi::Value SetTensor(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    Ensemble& e = Idle(env, fn);
    const Slot s = ParseSlot(Arg(info, 0), fn + ": slot", e);
    const int t = static_cast<int>(ArgInt(Arg(info, 1), fn + ": tensor", 0, e.tensor_count() - 1));
    auto a = ArgArray<float>(Arg(info, 2), fn + ": data", e.replicas() * e.tensor_numel(t));
    e.set_tensor(s, t, a.Data());
    return env.Undefined();
  }

  // setTensorBroadcast(slot, t, data: Float32Array [numel(t)]): every replica gets `data`
  Napi::Value SetTensorBroadcast(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    Ensemble& e = Idle(env, fn);
    const Slot s = ParseSlot(Arg(info, 0), fn + ": slot", e);
    const int t = static_cast<int>(ArgInt(Arg(info, 1), fn + ": tensor", 0, e.tensor_count() - 1));
    auto a = ArgArray<float>(Arg(info, 2), fn + ": data", e.tensor_numel(t));
    e.set_tensor_broadcast(s, t, a.Data());
    return env.Undefined();
  }

  // stats() -> Float64Array [R, layers, kStatsPerLayer] (names: describe().layerStats)
  Napi::Value Stats(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    Ensemble& e = Idle(env, fn);
    if (!e.has_snapshot()) ThrowError(env, code::kInvalidState, fn + ": no snapshot has been taken");
    auto out = Napi::Float64Array::New(env, static_cast<std::size_t>(e.replicas()) * e.layers() * kStatsPerLayer);
    e.stats(out.Data());
    return out;
  }

  Napi::Value ResetToSnapshot(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    Ensemble& e = Idle(env, fn);
    if (!e.has_snapshot()) ThrowError(env, code::kInvalidState, fn + ": no snapshot has been taken");
    e.reset_to_snapshot();
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
  //            edgesSum: Float32Array, exportS: boolean, layer?: number (0-based; default the last))
  //   -> Promise<{ stats: Float64Array [R * kTrialStats] (names: describe().trialStats),
  //                histMean: Float64Array, histSum: Float64Array, s?: Float32Array [R * numel(the layer's weight)] }>
  Napi::Value GradTrials(const Napi::CallbackInfo& info, const std::string& fn) {
    Napi::Env env = info.Env();
    const std::int64_t R_ = R(env, fn);
    auto ds = DatasetWrap::FromValue(Arg(info, 0), fn + ": dataset");
    CheckDataset(env, *ds, fn);
    const std::int64_t n = ArgInt(Arg(info, 2), fn + ": n", 1, 1LL << 24);
    const int batch = static_cast<int>(ArgInt(Arg(info, 3), fn + ": batchSize", 1, kMaxBatch));
    if (static_cast<double>(n) * R_ > 2147483647.0) ThrowRange(env, fn + ": replicas * n must be < 2^31");
    auto idx = std::make_shared<std::vector<std::int32_t>>(CopyIndices(Arg(info, 1), fn + ": indices", R_, n, *ds));
    const double lr = ArgNumber(Arg(info, 4), fn + ": lr");
    if (!(std::isfinite(lr) && lr >= 0))
      ThrowRange(env, fn + ": lr must be a finite number >= 0 (0: frozen weights)");
    auto em = std::make_shared<std::vector<float>>(CopyEdges(Arg(info, 5), fn + ": edgesMean"));
    auto es = std::make_shared<std::vector<float>>(CopyEdges(Arg(info, 6), fn + ": edgesSum"));
    Napi::Value ev = Arg(info, 7);
    if (!ev.IsUndefined() && !ev.IsBoolean()) ThrowType(env, fn + ": exportS must be a boolean, got " + Describe(ev));
    const bool want_s = ev.IsBoolean() && ev.As<Napi::Boolean>().Value();
    if (!Live(env, fn).plain_sgd())
      ThrowError(env, code::kInvalidState,
                 fn + ": the trials take plain SGD steps; set the optimizer to sgd without momentum or weight decay first");
    const Ensemble& e = Live(env, fn);
    Napi::Value lv = Arg(info, 8);
    const int layer = lv.IsUndefined() ? e.layers() - 1 : static_cast<int>(ArgInt(lv, fn + ": layer", 0, e.layers() - 1));
    auto s_out = std::make_shared<std::vector<float>>(want_s ? static_cast<std::size_t>(R_ * e.tensor_numel(2 * layer)) : 0);
    auto res = std::make_shared<GradTrialsResult>();
    std::shared_ptr<Core> core = Claim(env, fn);
    TaskSpec t;
    t.exec = [core, ds, idx, n, batch, lr, em, es, want_s, s_out, res, layer] {
      HistogramSpec hm{em->data(), static_cast<int>(em->size()) - 1};
      HistogramSpec hs{es->data(), static_cast<int>(es->size()) - 1};
      *res = core->ens->grad_trials(*ds, idx->data(), n, batch, static_cast<float>(lr), hm, hs,
                                    want_s ? s_out->data() : nullptr, layer);
    };
    t.done = [res, s_out, want_s](Napi::Env e2) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e2);
      auto st = Napi::Float64Array::New(e2, res->stats.size());
      std::copy(res->stats.begin(), res->stats.end(), st.Data());
      auto hm = Napi::Float64Array::New(e2, res->hist_mean.size());
      for (std::size_t i = 0; i < res->hist_mean.size(); ++i) hm.Data()[i] = static_cast<double>(res->hist_mean[i]);
      auto hs = Napi::Float64Array::New(e2, res->hist_sum.size());
      for (std::size_t i = 0; i < res->hist_sum.size(); ++i) hs.Data()[i] = static_cast<double>(res->hist_sum[i]);
      o.Set("stats", st);
      o.Set("histMean", hm);
      o.Set("histSum", hs);
      if (want_s) {
        auto sa = Napi::Float32Array::New(e2, s_out->size());
        std::copy(s_out->begin(), s_out->end(), sa.Data());
        o.Set("s", sa);
      }
      return o;
    };
    t.release = Releaser(core);
    return StartTask(env, fn, std::move(t));
  }

  std::shared_ptr<Core> core_;
};

const napi_type_tag EnsembleWrap::kTag = {0x2f7d9a41c6e35b08ULL, 0x94b1e7530dac26f1ULL};

}  // namespace

void RegisterEnsemble(Napi::Env env, Napi::Object exports) { EnsembleWrap::Register(env, exports); }

}  // namespace bsx::napi
