// The JS class wrapping a native Dataset (see dataset_binding.cpp).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "cpu/dataset.h"

namespace bsx::napi {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  explicit DatasetWrap(const Napi::CallbackInfo& info);
  // The DatasetWrap behind a JS value, or a TypeError naming `where`.
  static DatasetWrap* FromValue(const Napi::Value& v, const std::string& where);
  std::shared_ptr<const cpu::Dataset> dataset() const { return dataset_; }

  Napi::Value Count(const Napi::CallbackInfo& info);
  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Classes(const Napi::CallbackInfo& info);
 private:
  std::shared_ptr<const cpu::Dataset> dataset_;
};

}  // namespace bsx::napi
