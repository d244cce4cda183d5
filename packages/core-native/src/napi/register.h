// Each binding file adds its part of the addon's exports; addon.cpp calls them in order.
#pragma once
#include <napi.h>

namespace bsx::napi {

// Per-environment data (one per Node.js main thread or worker), so that the addon works in
// worker_threads too: the class constructors used for instanceof checks.
struct AddonData {
  Napi::FunctionReference dataset_ctor;
  Napi::FunctionReference ensemble_ctor;
};
AddonData& GetAddonData(Napi::Env env);

void RegisterInfo(Napi::Env env, Napi::Object exports);      // info_binding.cpp
void RegisterGemm(Napi::Env env, Napi::Object exports);      // gemm_binding.cpp
void RegisterDataset(Napi::Env env, Napi::Object exports);   // dataset_binding.cpp
void RegisterEnsemble(Napi::Env env, Napi::Object exports);  // ensemble_binding.cpp

}  // namespace bsx::napi
