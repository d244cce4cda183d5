// Dataset: features and labels copied once into engine memory.
// new Dataset(features: Float32Array [count*dim], labels: Uint8Array|Int32Array [count],
//             count, dim, classes)
#include <napi.h>

#include <atomic>
#include <memory>

#include "cpu/dataset.h"
#include "napi/check.h"
#include "napi/dataset_binding.h"
#include "napi/register.h"

namespace bsx::napi {

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  Napi::Env env = info.Env();
  const std::int64_t count = ArgInt(Arg(info, 2), "Dataset: count", 1, 1LL << 31);
  const std::int64_t dim = ArgInt(Arg(info, 3), "Dataset: dim", 1, 1LL << 24);
  const std::int64_t classes = ArgInt(Arg(info, 4), "Dataset: classes", 1, 1 << 20);
  auto feats = ArgArray<float>(Arg(info, 0), "Dataset: features", count * dim);
  static std::atomic<std::uint64_t> next_id{1};
  auto ds = std::make_shared<cpu::Dataset>();
  ds->id = next_id.fetch_add(1);
  ds->count = count;
  ds->dim = dim;
  ds->classes = static_cast<int>(classes);
  ds->features.assign(feats.Data(), feats.Data() + count * dim);
  ds->labels.resize(static_cast<std::size_t>(count));
  Napi::Value lv = Arg(info, 1);
  if (lv.IsTypedArray() && lv.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    auto lab = ArgArray<std::uint8_t>(lv, "Dataset: labels", count);
    for (std::int64_t i = 0; i < count; ++i) ds->labels[i] = lab.Data()[i];
  } else if (lv.IsTypedArray() &&
             lv.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    auto lab = ArgArray<std::int32_t>(lv, "Dataset: labels", count);
    for (std::int64_t i = 0; i < count; ++i) ds->labels[i] = lab.Data()[i];
  } else {
    ThrowType(env, "Dataset: labels must be a Uint8Array or an Int32Array, got " + Describe(lv));
  }
  for (std::int64_t i = 0; i < count; ++i) {
    if (ds->labels[i] < 0 || ds->labels[i] >= classes)
      ThrowRange(env, "Dataset: label " + std::to_string(ds->labels[i]) + " at index " +
                          std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
  }
  dataset_ = std::move(ds);
}

Napi::Value DatasetWrap::Count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dataset_->count));
}
Napi::Value DatasetWrap::Dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dataset_->dim));
}
Napi::Value DatasetWrap::Classes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), dataset_->classes);
}

DatasetWrap* DatasetWrap::FromValue(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(GetAddonData(v.Env()).dataset_ctor.Value()))
    ThrowType(v.Env(), where + " must be a native Dataset, got " + Describe(v));
  return Napi::ObjectWrap<DatasetWrap>::Unwrap(v.As<Napi::Object>());
}

void RegisterDataset(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DatasetWrap::DefineClass(
      env, "Dataset",
      {DatasetWrap::InstanceAccessor<&DatasetWrap::Count>("count"),
       DatasetWrap::InstanceAccessor<&DatasetWrap::Dim>("dim"),
       DatasetWrap::InstanceAccessor<&DatasetWrap::Classes>("classes")});
  GetAddonData(env).dataset_ctor = Napi::Persistent(ctor);
  exports.Set("Dataset", ctor);
}

}  // namespace bsx::napi
