// Each binding file adds its part of the addon's exports; addon.cpp calls them in order.
#pragma once
#include <napi.h>

namespace bsx::napi {

void RegisterInfo(Napi::Env env, Napi::Object exports);      // info_binding.cpp
void RegisterGemm(Napi::Env env, Napi::Object exports);      // gemm_binding.cpp
void RegisterDataset(Napi::Env env, Napi::Object exports);   // dataset_binding.cpp (DatasetWrap::Register)
void RegisterEnsemble(Napi::Env env, Napi::Object exports);  // ensemble_binding.cpp

}  // namespace bsx::napi
