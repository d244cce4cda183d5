// Argument checks for the bindings: every value from JS is checked here, on the JS thread,
// before any native memory is touched. Type errors throw TypeError, values out of range
// throw RangeError; each message names the function and the argument, and each error has a
// stable `code`. None of these helpers runs JS code (no getters, no valueOf, no
// Symbol.hasInstance), so a check cannot start another call on the same object.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace bsx::napi {

// Error codes the bindings give their JS errors (`err.code`); @bsx/core lists the same.
namespace code {
constexpr const char* kInvalidArgument = "BSX_INVALID_ARGUMENT";  // TypeError / RangeError
constexpr const char* kOutOfMemory = "BSX_OUT_OF_MEMORY";
constexpr const char* kInvalidEnv = "BSX_INVALID_ENV";            // a bad BSX_* variable
constexpr const char* kInvalidState = "BSX_INVALID_STATE";        // e.g. no snapshot taken
constexpr const char* kBusy = "BSX_BUSY";                          // a call is running
constexpr const char* kDisposed = "BSX_DISPOSED";
constexpr const char* kTooLarge = "BSX_TOO_LARGE";                // more memory than the machine has
constexpr const char* kDeviceUnavailable = "BSX_DEVICE_UNAVAILABLE";
constexpr const char* kNative = "BSX_NATIVE";                     // any other engine failure
}  // namespace code

template <typename E>
E WithCode(E e, const char* c) {
  e.Set("code", Napi::String::New(e.Env(), c));
  return e;
}

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) {
  throw WithCode(Napi::TypeError::New(env, msg), code::kInvalidArgument);
}
[[noreturn]] inline void ThrowRange(Napi::Env env, const std::string& msg) {
  throw WithCode(Napi::RangeError::New(env, msg), code::kInvalidArgument);
}
[[noreturn]] inline void ThrowError(Napi::Env env, const char* c, const std::string& msg) {
  throw WithCode(Napi::Error::New(env, msg), c);
}

inline std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsNumber()) return "the number " + v.ToString().Utf8Value();
  if (v.IsString()) return "a string";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

// An integer-valued number in [lo, hi].
inline std::int64_t ArgInt(const Napi::Value& v, const std::string& where, std::int64_t lo,
                           std::int64_t hi) {
  Napi::Env env = v.Env();
  if (!v.IsNumber()) ThrowType(env, where + " must be an integer, got " + Describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d)
    ThrowType(env, where + " must be an integer, got " + Describe(v));
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    ThrowRange(env, where + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                        "], got " + v.ToString().Utf8Value());
  return static_cast<std::int64_t>(d);
}

inline double ArgNumber(const Napi::Value& v, const std::string& where) {
  if (!v.IsNumber()) ThrowType(v.Env(), where + " must be a number, got " + Describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

inline std::string ArgString(const Napi::Value& v, const std::string& where) {
  if (!v.IsString()) ThrowType(v.Env(), where + " must be a string, got " + Describe(v));
  return v.As<Napi::String>().Utf8Value();
}

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayTraits<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct TypedArrayTraits<std::int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedArrayTraits<std::uint32_t> {
  static constexpr napi_typedarray_type type = napi_uint32_array;
  static constexpr const char* name = "Uint32Array";
};
template <>
struct TypedArrayTraits<std::uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};

// A typed array of element type T with exactly `length` elements (length < 0: any length).
template <typename T>
Napi::TypedArrayOf<T> ArgArray(const Napi::Value& v, const std::string& where,
                               std::int64_t length = -1) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() ||
      v.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTraits<T>::type)
    ThrowType(env, where + " must be a " + std::string(TypedArrayTraits<T>::name) + ", got " +
                       Describe(v));
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (length >= 0 && static_cast<std::int64_t>(arr.ElementLength()) != length)
    ThrowRange(env, where + " must have " + std::to_string(length) + " elements, got " +
                        std::to_string(arr.ElementLength()));
  return arr;
}

inline Napi::Value Arg(const Napi::CallbackInfo& info, std::size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

}  // namespace bsx::napi
