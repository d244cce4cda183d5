// The JS class wrapping a native Dataset (see dataset_binding.cpp).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "cpu/dataset.h"

namespace bsx::napi {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static const napi_type_tag kTag;
  static constexpr const char* kClass = "Dataset";

  explicit DatasetWrap(const Napi::CallbackInfo& info);
  static void Register(Napi::Env env, Napi::Object exports);
  // `Dataset(...)` without `new`: a TypeError with a code (napi/guard.h).
  static Napi::Value OnCalledAsFunction(const Napi::CallbackInfo& info);

  // The dataset of a JS argument (a TypeError naming `where` for anything else, an Error
  // once it has been disposed).
  static std::shared_ptr<const cpu::Dataset> FromValue(const Napi::Value& v, const std::string& where);

 private:
  const cpu::Dataset& Get(Napi::Env env, const std::string& fn) const;
  Napi::Value Count(const Napi::CallbackInfo& info, const std::string& fn);
  Napi::Value Dim(const Napi::CallbackInfo& info, const std::string& fn);
  Napi::Value Classes(const Napi::CallbackInfo& info, const std::string& fn);
  Napi::Value Disposed(const Napi::CallbackInfo& info, const std::string& fn);
  Napi::Value Dispose(const Napi::CallbackInfo& info, const std::string& fn);

  // Shared with the engine calls that use it: a dispose() while a call runs frees the
  // memory when that call ends.
  std::shared_ptr<const cpu::Dataset> dataset_;
};

}  // namespace bsx::napi
