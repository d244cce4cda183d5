// Dataset: features and labels copied once into engine memory.
//   new Dataset(features: Float32Array [count*dim], labels: Uint8Array|Int32Array [count],
//               count, dim, classes)
//   .count .dim .classes .disposed; .dispose() frees the engine's copy (idempotent).
#include "napi/dataset_binding.h"

#include <atomic>
#include <memory>

#include "napi/check.h"
#include "napi/guard.h"

namespace bsx::napi {

const napi_type_tag DatasetWrap::kTag = {0x6a1c5b0e93d24f7aULL, 0xb8e40c2d5f6917c3ULL};

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  Napi::Env env = info.Env();
  Guard(env, "new Dataset", [&] {
    const std::int64_t count = ArgInt(Arg(info, 2), "new Dataset: count", 1, 1LL << 31);
    const std::int64_t dim = ArgInt(Arg(info, 3), "new Dataset: dim", 1, 1LL << 24);
    const std::int64_t classes = ArgInt(Arg(info, 4), "new Dataset: classes", 1, 1 << 20);
    auto feats = ArgArray<float>(Arg(info, 0), "new Dataset: features", count * dim);
    Napi::Value lv = Arg(info, 1);
    const bool u8 = lv.IsTypedArray() && lv.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
    const bool i32 = lv.IsTypedArray() && lv.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array;
    if (!u8 && !i32)
      ThrowType(env, "new Dataset: labels must be a Uint8Array or an Int32Array, got " + Describe(lv));
    static std::atomic<std::uint64_t> next_id{1};
    auto ds = std::make_shared<cpu::Dataset>();
    ds->count = count;
    ds->dim = dim;
    ds->classes = static_cast<int>(classes);
    ds->labels.resize(static_cast<std::size_t>(count));
    if (u8) {
      auto lab = ArgArray<std::uint8_t>(lv, "new Dataset: labels", count);
      for (std::int64_t i = 0; i < count; ++i) ds->labels[i] = lab.Data()[i];
    } else {
      auto lab = ArgArray<std::int32_t>(lv, "new Dataset: labels", count);
      for (std::int64_t i = 0; i < count; ++i) ds->labels[i] = lab.Data()[i];
    }
    for (std::int64_t i = 0; i < count; ++i) {
      if (ds->labels[i] < 0 || ds->labels[i] >= classes)
        ThrowRange(env, "new Dataset: label " + std::to_string(ds->labels[i]) + " at index " +
                            std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
    }
    ds->features.assign(feats.Data(), feats.Data() + count * dim);
    ds->id = next_id.fetch_add(1);
    dataset_ = std::move(ds);
  });
  info.This().As<Napi::Object>().TypeTag(&kTag);
}

const cpu::Dataset& DatasetWrap::Get(Napi::Env env, const std::string& fn) const {
  if (!dataset_) ThrowError(env, code::kDisposed, fn + ": the dataset has been disposed");
  return *dataset_;
}

Napi::Value DatasetWrap::Count(const Napi::CallbackInfo& info, const std::string& fn) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env(), fn).count));
}
Napi::Value DatasetWrap::Dim(const Napi::CallbackInfo& info, const std::string& fn) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env(), fn).dim));
}
Napi::Value DatasetWrap::Classes(const Napi::CallbackInfo& info, const std::string& fn) {
  return Napi::Number::New(info.Env(), Get(info.Env(), fn).classes);
}
Napi::Value DatasetWrap::Disposed(const Napi::CallbackInfo& info, const std::string&) {
  return Napi::Boolean::New(info.Env(), !dataset_);
}
Napi::Value DatasetWrap::Dispose(const Napi::CallbackInfo& info, const std::string&) {
  dataset_.reset();
  return info.Env().Undefined();
}

std::shared_ptr<const cpu::Dataset> DatasetWrap::FromValue(const Napi::Value& v, const std::string& where) {
  DatasetWrap& w = Argument<DatasetWrap>(v, where);
  if (!w.dataset_) ThrowError(v.Env(), code::kDisposed, where + ": the dataset has been disposed");
  return w.dataset_;
}

Napi::Value DatasetWrap::OnCalledAsFunction(const Napi::CallbackInfo& info) {
  return CalledAsFunction<DatasetWrap>(info);
}

void DatasetWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Dataset", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  using D = DatasetWrap;
  proto.DefineProperties({
      Getter<D, &D::Count>("Dataset.count", "count"),
      Getter<D, &D::Dim>("Dataset.dim", "dim"),
      Getter<D, &D::Classes>("Dataset.classes", "classes"),
      Getter<D, &D::Disposed>("Dataset.disposed", "disposed"),
      Method<D, &D::Dispose>(env, "Dataset.dispose", "dispose"),
  });
  exports.Set("Dataset", ctor);
}

}  // namespace bsx::napi
