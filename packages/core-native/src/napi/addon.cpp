// bsx_native: the module's entry point; each binding file registers its exports. The addon
// keeps no per-environment state, so it loads in any number of worker threads.
#include <napi.h>

#include "napi/dataset_binding.h"
#include "napi/optimizer_binding.h"
#include "napi/register.h"

namespace bsx::napi {
void RegisterDataset(Napi::Env env, Napi::Object exports) { DatasetWrap::Register(env, exports); }
}  // namespace bsx::napi

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  bsx::napi::RegisterInfo(env, exports);
  bsx::napi::RegisterGemm(env, exports);
  bsx::napi::RegisterDataset(env, exports);
  bsx::napi::RegisterEnsemble(env, exports);
  bsx::napi::RegisterOptimizer(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(bsx_native, Init)
