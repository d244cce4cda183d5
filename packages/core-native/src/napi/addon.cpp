// bsx_native: the module's entry point; each binding file registers its exports.
#include <napi.h>

#include "napi/register.h"

namespace bsx::napi {
AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
}  // namespace bsx::napi

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<bsx::napi::AddonData>(new bsx::napi::AddonData());
  bsx::napi::RegisterInfo(env, exports);
  bsx::napi::RegisterGemm(env, exports);
  bsx::napi::RegisterDataset(env, exports);
  bsx::napi::RegisterEnsemble(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(bsx_native, Init)
