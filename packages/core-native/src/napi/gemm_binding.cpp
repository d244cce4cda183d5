// exports.gemm: the CPU GEMM (cpu/gemm.h) for tests and benchmarks, plus the SIMD-path,
// thread-count and FMA-peak controls. Every argument is checked on the JS thread before
// native memory is touched: wrong types throw TypeError, bad values (dimensions, leading
// dimensions, strides, typed arrays too short for the shape) throw RangeError naming the
// argument with the required and actual sizes.
// Reference: node-addon-api (C++ exceptions enabled), NAPI_VERSION 8.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/peak.h"
#include "cpu/smallb.h"
#include "cpu/thread_pool.h"
#include "napi/check.h"
#include "napi/guard.h"
#include "napi/register.h"

namespace bsx::napi {
namespace {

constexpr double kMaxDim = 2147483647.0;         // int dimensions
constexpr double kMaxIndex = 9007199254740991.0;  // 2^53 - 1: leading dims, strides

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}


// The options object of one call, with the function name for messages. All the properties
// are read once, up front: property getters (JS code) run before any typed array's memory
// is looked at, so no getter can detach a buffer between the checks and the call.
class Opts {
 public:
  Opts(const Napi::CallbackInfo& info, const char* fn) : env_(info.Env()), fn_(fn) {
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsTypedArray() ||
        info[0].IsFunction()) {
      ThrowType(env_, fn_ + ": expected an options object, got " +
                     (info.Length() < 1 ? std::string("nothing") : Describe(info[0])));
    }
    Napi::Object o = info[0].As<Napi::Object>();
    for (const char* key : {"transA", "transB", "M", "N", "K", "alpha", "beta", "a", "lda", "b",
                            "ldb", "c", "ldc", "bias", "mask", "ldm", "relu", "batch", "strideA",
                            "strideB", "strideC", "strideBias", "strideMask"}) {
      values_[key] = o.Get(key);
    }
  }

  Napi::Env env() const { return env_; }
  const std::string& fn() const { return fn_; }

  bool Bool(const char* key, bool dflt) const {
    Napi::Value v = Get(key);
    if (v.IsUndefined()) return dflt;
    if (!v.IsBoolean()) ThrowType(env_, fn_ + ": " + key + " must be a boolean, got " + Describe(v));
    return v.As<Napi::Boolean>().Value();
  }

  double Number(const char* key, double dflt) const {
    Napi::Value v = Get(key);
    if (v.IsUndefined()) return dflt;
    if (!v.IsNumber()) ThrowType(env_, fn_ + ": " + key + " must be a number, got " + Describe(v));
    return v.As<Napi::Number>().DoubleValue();
  }

  // An integer in [lo, hi]; absent -> dflt (dflt < 0: required).
  double Int(const char* key, double lo, double hi, double dflt = -1) const {
    Napi::Value v = Get(key);
    if (v.IsUndefined() && dflt >= 0) return dflt;
    if (!v.IsNumber()) ThrowType(env_, fn_ + ": " + key + " must be an integer, got " + Describe(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d)
      ThrowRange(env_, fn_ + ": " + key + " must be an integer, got " + v.ToString().Utf8Value());
    if (d < lo || d > hi)
      ThrowRange(env_, fn_ + ": " + key + " must be in [" + Num(lo) + ", " + Num(hi) + "], got " +
                      Num(d));
    return d;
  }

  // A Float32Array (required unless optional).
  Napi::Float32Array Array(const char* key, bool optional) const {
    Napi::Value v = Get(key);
    if (optional && (v.IsUndefined() || v.IsNull())) return Napi::Float32Array();
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      ThrowType(env_, fn_ + ": " + key + " must be a Float32Array, got " + Describe(v));
    return v.As<Napi::Float32Array>();
  }

  // Throws unless `arr` holds at least `need` elements; `why` explains the requirement.
  void NeedLength(const char* key, const Napi::Float32Array& arr, double need,
                  const std::string& why) const {
    const double have = static_cast<double>(arr.ElementLength());
    if (have < need) {
      ThrowRange(env_, fn_ + ": " + key + " has " + Num(have) + " elements, needs at least " +
                      Num(need) + " (" + why + ")");
    }
  }

 private:
  Napi::Value Get(const char* key) const { return values_.at(key); }

  Napi::Env env_;
  std::string fn_;
  std::map<std::string, Napi::Value> values_;
};

Napi::Value RunGemm(const Napi::CallbackInfo& info, bool reference) {
  const Opts o(info, reference ? "sgemmReference" : "sgemm");
  Napi::Env env = o.env();
  const bool ta = o.Bool("transA", false);
  const bool tb = o.Bool("transB", false);
  const double M = o.Int("M", 1, kMaxDim);
  const double N = o.Int("N", 1, kMaxDim);
  const double K = o.Int("K", 1, kMaxDim);
  const double alpha = o.Number("alpha", 1.0);
  const double beta = o.Number("beta", 0.0);
  const double batch = o.Int("batch", 1, kMaxDim, 1);

  // Storage shapes: A is [M,K] (or [K,M] with transA), B is [K,N] (or [N,K] with transB).
  const double a_rows = ta ? K : M, a_cols = ta ? M : K;
  const double b_rows = tb ? N : K, b_cols = tb ? K : N;
  const double lda = o.Int("lda", a_cols, kMaxIndex, a_cols);
  const double ldb = o.Int("ldb", b_cols, kMaxIndex, b_cols);
  const double ldc = o.Int("ldc", N, kMaxIndex, N);
  const double one_a = (a_rows - 1) * lda + a_cols;
  const double one_b = (b_rows - 1) * ldb + b_cols;
  const double one_c = (M - 1) * ldc + N;
  const double sa = o.Int("strideA", 0, kMaxIndex, a_rows * lda);
  const double sb = o.Int("strideB", 0, kMaxIndex, b_rows * ldb);
  const double sc = o.Int("strideC", 0, kMaxIndex, M * ldc);
  if (batch > 1 && sc < one_c) {
    ThrowRange(env, o.fn() + ": strideC must be at least " + Num(one_c) +
                   " so that the batch's outputs do not overlap (M=" + Num(M) + ", N=" + Num(N) +
                   ", ldc=" + Num(ldc) + "), got " + Num(sc));
  }

  Napi::Float32Array a = o.Array("a", false);
  Napi::Float32Array b = o.Array("b", false);
  Napi::Float32Array c = o.Array("c", false);
  auto batch_note = [&](double stride, const char* name) {
    return batch > 1 ? ", batch=" + Num(batch) + ", " + name + "=" + Num(stride) : std::string();
  };
  o.NeedLength("a", a, (batch - 1) * sa + one_a,
               std::string("M=") + Num(M) + ", K=" + Num(K) + ", lda=" + Num(lda) +
                   (ta ? ", transA" : "") + batch_note(sa, "strideA"));
  o.NeedLength("b", b, (batch - 1) * sb + one_b,
               std::string("K=") + Num(K) + ", N=" + Num(N) + ", ldb=" + Num(ldb) +
                   (tb ? ", transB" : "") + batch_note(sb, "strideB"));
  o.NeedLength("c", c, (batch - 1) * sc + one_c,
               std::string("M=") + Num(M) + ", N=" + Num(N) + ", ldc=" + Num(ldc) +
                   batch_note(sc, "strideC"));

  cpu::Epilogue ep;
  Napi::Float32Array bias = o.Array("bias", true);
  double sbias = 0, smask = 0, ldm = 0;
  if (!bias.IsEmpty()) {
    sbias = o.Int("strideBias", 0, kMaxIndex, N);
    o.NeedLength("bias", bias, (batch - 1) * sbias + N,
                 std::string("N=") + Num(N) + batch_note(sbias, "strideBias"));
    ep.bias = bias.Data();
  }
  Napi::Float32Array mask = o.Array("mask", true);
  if (!mask.IsEmpty()) {
    ldm = o.Int("ldm", N, kMaxIndex, N);
    smask = o.Int("strideMask", 0, kMaxIndex, M * ldm);
    o.NeedLength("mask", mask, (batch - 1) * smask + (M - 1) * ldm + N,
                 std::string("M=") + Num(M) + ", N=" + Num(N) + ", ldm=" + Num(ldm) +
                     batch_note(smask, "strideMask"));
    ep.mask = mask.Data();
    ep.ldm = static_cast<std::int64_t>(ldm);
  }
  ep.relu = o.Bool("relu", false);

  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const auto ilda = static_cast<std::int64_t>(lda), ildb = static_cast<std::int64_t>(ldb),
             ildc = static_cast<std::int64_t>(ldc);
  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  try {
    if (reference) {
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(batch); ++i) {
        cpu::Epilogue e = ep;
        if (e.bias != nullptr) e.bias += i * static_cast<std::int64_t>(sbias);
        if (e.mask != nullptr) e.mask += i * static_cast<std::int64_t>(smask);
        cpu::sgemm_reference(ta, tb, m, n, k, fa, a.Data() + i * static_cast<std::int64_t>(sa),
                             ilda, b.Data() + i * static_cast<std::int64_t>(sb), ildb, fb,
                             c.Data() + i * static_cast<std::int64_t>(sc), ildc, e);
      }
    } else if (batch == 1) {
      cpu::sgemm(ta, tb, m, n, k, fa, a.Data(), ilda, b.Data(), ildb, fb, c.Data(), ildc, ep);
    } else {
      cpu::BatchStrides st;
      st.a = static_cast<std::int64_t>(sa);
      st.b = static_cast<std::int64_t>(sb);
      st.c = static_cast<std::int64_t>(sc);
      st.bias = static_cast<std::int64_t>(sbias);
      st.mask = static_cast<std::int64_t>(smask);
      cpu::sgemm_batched(static_cast<int>(batch), st, ta, tb, m, n, k, fa, a.Data(), ilda,
                         b.Data(), ildb, fb, c.Data(), ildc, ep);
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJs(env, CurrentFailure(o.fn()));  // e.g. a bad BSX_THREADS: BSX_INVALID_ENV
  }
  return env.Undefined();
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) { return RunGemm(info, false); }
Napi::Value SgemmReference(const Napi::CallbackInfo& info) { return RunGemm(info, true); }


Napi::Value SimdPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::String::New(
      env, Guard(env, "simdPath", [] { return cpu::simd_path_name(cpu::simd_path()); }));
}

Napi::Value SetSimdPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    ThrowType(env, "setSimdPath: name must be a string, got " +
                  (info.Length() < 1 ? std::string("nothing") : Describe(info[0])));
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::SimdPath p;
  if (name == "portable") {
    p = cpu::SimdPath::Portable;
  } else if (name == "avx2") {
    p = cpu::SimdPath::Avx2;
  } else if (name == "avx512") {
    p = cpu::SimdPath::Avx512;
  } else {
    ThrowRange(env, "setSimdPath: unknown SIMD path '" + name + "' (expected portable, avx2 or avx512)");
  }
  if (!cpu::simd_path_supported(p))
    ThrowRange(env, "setSimdPath: this CPU cannot run the " + name + " path");
  Guard(env, "setSimdPath", [&] {
    cpu::set_simd_path(p);
    return 0;
  });
  return env.Undefined();
}

Napi::Value AvailableSimdPaths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  std::uint32_t i = 0;
  for (cpu::SimdPath p : {cpu::SimdPath::Portable, cpu::SimdPath::Avx2, cpu::SimdPath::Avx512})
    if (cpu::simd_path_supported(p)) out.Set(i++, cpu::simd_path_name(p));
  return out;
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, Guard(env, "threads", [] { return cpu::num_threads(); }));
}

// The first argument as an integer in [lo, hi]: a TypeError for a non-number, a RangeError
// naming the range otherwise.
int IntArg(const Napi::CallbackInfo& info, const char* fn, int lo, int hi) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    ThrowType(env, std::string(fn) + ": n must be an integer, got " +
                  (info.Length() < 1 ? std::string("nothing") : Describe(info[0])));
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(n) || std::floor(n) != n || n < lo || n > hi)
    ThrowRange(env, std::string(fn) + ": n must be an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "], got " + info[0].ToString().Utf8Value());
  return static_cast<int>(n);
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = IntArg(info, "setThreads", 1, 256);
  Guard(env, "setThreads", [&] {
    cpu::set_num_threads(n);
    return 0;
  });
  return env.Undefined();
}

Napi::Value SmallBatchMax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, Guard(env, "smallBatchMax", [] { return cpu::small_batch_max(); }));
}

// Largest batch of the fused small-batch path (up to kSmallBatchKernelMax); 0 sends every
// batch through the GEMMs, -1 restores the default (tests cover both paths with it).
Napi::Value SetSmallBatchMax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = IntArg(info, "setSmallBatchMax", -1, cpu::kSmallBatchKernelMax);
  Guard(env, "setSmallBatchMax", [&] {
    cpu::set_small_batch_max(n);
    return 0;
  });
  return env.Undefined();
}

Napi::Value PeakGflops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double seconds = 0.5;
  if (info.Length() >= 1 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber())
      ThrowType(env, "peakGflops: seconds must be a number, got " + Describe(info[0]));
    seconds = info[0].As<Napi::Number>().DoubleValue();
    if (!(seconds > 0 && seconds <= 10))
      ThrowRange(env, "peakGflops: seconds must be in (0, 10], got " + info[0].ToString().Utf8Value());
  }
  return Napi::Number::New(
      env, Guard(env, "peakGflops", [&] { return cpu::measure_peak_gflops(seconds); }));
}

Napi::Value KernelName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::String::New(env, Guard(env, "kernelName", [] { return cpu::gemm_kernel_name(); }));
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  Napi::Object g = Napi::Object::New(env);
  g.Set("sgemm", PlainFunction<Sgemm>(env, "gemm.sgemm"));
  g.Set("sgemmReference", PlainFunction<SgemmReference>(env, "gemm.sgemmReference"));
  g.Set("simdPath", PlainFunction<SimdPath>(env, "gemm.simdPath"));
  g.Set("setSimdPath", PlainFunction<SetSimdPath>(env, "gemm.setSimdPath"));
  g.Set("availableSimdPaths", PlainFunction<AvailableSimdPaths>(env, "gemm.availableSimdPaths"));
  g.Set("threads", PlainFunction<Threads>(env, "gemm.threads"));
  g.Set("setThreads", PlainFunction<SetThreads>(env, "gemm.setThreads"));
  g.Set("smallBatchMax", PlainFunction<SmallBatchMax>(env, "gemm.smallBatchMax"));
  g.Set("setSmallBatchMax", PlainFunction<SetSmallBatchMax>(env, "gemm.setSmallBatchMax"));
  g.Set("peakGflops", PlainFunction<PeakGflops>(env, "gemm.peakGflops"));
  g.Set("kernelName", PlainFunction<KernelName>(env, "gemm.kernelName"));
  exports.Set("gemm", g);
}

}  // namespace bsx::napi
