#include <napi.h>
#include "cuda/cuda_backend.h"
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaReason", Napi::String::New(env, bsx::cuda::probe().reason));
  return exports;
}
NODE_API_MODULE(bsx_native, Init)
