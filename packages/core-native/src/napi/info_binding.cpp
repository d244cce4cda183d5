// Exports that describe the engine (version, backends, CPU features, threads, CUDA; the
// optimisers and the names of the statistics, from the engine's tables) and the Philox
// generator as a test hook for its known-answer tests.
#include <napi.h>

#include "cpu/cpu_features.h"
#include "cpu/fpenv.h"
#include "cpu/gemm.h"
#include "cpu/philox.h"
#include "cpu/thread_pool.h"
#include "cuda/cuda_backend.h"
#include "engine/ensemble.h"
#include "engine/optimizers.h"
#include "napi/check.h"
#include "napi/guard.h"
#include "napi/register.h"

#ifndef BSX_VERSION
#define BSX_VERSION "0.1.0"
#endif

namespace bsx::napi {

namespace {

Napi::Value Info(const Napi::CallbackInfo& info, const std::string&) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", BSX_VERSION);
  o.Set("napiVersion", NAPI_VERSION);

  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, "cpu");
  if (cuda::compiled_in()) backends.Set(1u, "cuda");
  o.Set("backendsCompiled", backends);

  const cpu::CpuFeatures& f = cpu::cpu_features();
  Napi::Object cpuo = Napi::Object::New(env);
  cpuo.Set("vendor", f.vendor);
  cpuo.Set("brand", f.brand);
  Napi::Array feats = Napi::Array::New(env);
  std::uint32_t k = 0;
  auto add = [&](bool on, const char* name) {
    if (on) feats.Set(k++, name);
  };
  add(f.sse42, "sse4.2");
  add(f.avx && f.os_avx, "avx");
  add(f.avx2 && f.os_avx, "avx2");
  add(f.fma && f.os_avx, "fma");
  add(f.f16c && f.os_avx, "f16c");
  add(f.avx512f && f.os_avx512, "avx512f");
  add(f.avx512vl && f.os_avx512, "avx512vl");
  add(f.avx512bw && f.os_avx512, "avx512bw");
  add(f.avx512dq && f.os_avx512, "avx512dq");
  cpuo.Set("features", feats);
  cpuo.Set("simdPath", cpu::simd_path_name(cpu::simd_path()));
  cpuo.Set("gemmKernel", cpu::gemm_kernel_name());
  cpuo.Set("threads", cpu::num_threads());
  cpuo.Set("flushDenormals", cpu::flush_denormals_enabled());
  o.Set("cpu", cpuo);

  const cuda::DeviceInfo d = cuda::probe();
  Napi::Object cu = Napi::Object::New(env);
  cu.Set("compiled", cuda::compiled_in());
  cu.Set("available", d.available);
  if (d.available) {
    cu.Set("name", d.name);
    cu.Set("computeCapability", std::to_string(d.sm_major) + "." + std::to_string(d.sm_minor));
    cu.Set("multiprocessors", d.multiprocessors);
    cu.Set("totalMemoryBytes", static_cast<double>(d.total_memory));
    cu.Set("driverVersion", d.driver_version);
  } else {
    cu.Set("reason", d.reason);
  }
  cu.Set("runtimeVersion", d.runtime_version);
  o.Set("cuda", cu);
  return o;
}

// philox(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4)
Napi::Value Philox(const Napi::CallbackInfo& info, const std::string& fn) {
  auto ctr = ArgArray<std::uint32_t>(Arg(info, 0), fn + ": counter", 4);
  auto key = ArgArray<std::uint32_t>(Arg(info, 1), fn + ": key", 2);
  const std::uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  const std::uint32_t k[2] = {key[0], key[1]};
  const Philox4x32 r = philox4x32_10(c, k);
  auto out = Napi::Uint32Array::New(info.Env(), 4);
  for (int i = 0; i < 4; ++i) out[i] = r.v[i];
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info, const std::string& fn) {
  const auto n = ArgInt(Arg(info, 0), fn + ": n", 1, 256);
  cpu::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Array Names(Napi::Env env, const char* const* names, int count) {
  Napi::Array a = Napi::Array::New(env, static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) a.Set(static_cast<std::uint32_t>(i), names[i]);
  return a;
}

// describe() -> { optimizers: [{ name, reference, hyperparameters: [{ name, type, default, min,
//   max, minExclusive, maxExclusive, doc }], state: string[] }], layerStats: string[],
//   trialStats: string[] }: the engine's tables, for @bsx/core.
Napi::Value DescribeEngine(const Napi::CallbackInfo& info, const std::string&) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array opts = Napi::Array::New(env);
  std::uint32_t i = 0;
  for (const optim::Descriptor& d : optim::descriptors()) {
    Napi::Object od = Napi::Object::New(env);
    od.Set("name", d.name);
    od.Set("reference", d.reference);
    Napi::Array hp = Napi::Array::New(env);
    std::uint32_t j = 0;
    for (const optim::HyperParam& p : d.hyper) {
      Napi::Object h = Napi::Object::New(env);
      h.Set("name", p.name);
      h.Set("type", p.boolean ? "boolean" : "number");
      if (p.boolean) {
        h.Set("default", Napi::Boolean::New(env, p.def != 0));
      } else {
        h.Set("default", p.def);
        h.Set("min", p.lo);
        h.Set("max", p.hi);
        h.Set("minExclusive", p.lo_open);
        h.Set("maxExclusive", p.hi_open);
      }
      h.Set("doc", p.doc);
      hp.Set(j++, h);
    }
    od.Set("hyperparameters", hp);
    Napi::Array st = Napi::Array::New(env);
    for (std::size_t k = 0; k < d.state.size(); ++k) st.Set(static_cast<std::uint32_t>(k), d.state[k]);
    od.Set("state", st);
    opts.Set(i++, od);
  }
  o.Set("optimizers", opts);
  o.Set("layerStats", Names(env, kLayerStatNames, kStatsPerLayer));
  o.Set("trialStats", Names(env, kTrialStatNames, kTrialStats));
  return o;
}

}  // namespace

void RegisterInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Function<Info>(env, "info"));
  exports.Set("describe", Function<DescribeEngine>(env, "describe"));
  exports.Set("philox", Function<Philox>(env, "philox"));
  exports.Set("setThreads", Function<SetThreads>(env, "setThreads"));
}

}  // namespace bsx::napi
