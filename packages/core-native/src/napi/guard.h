// The one guard of every binding entry point: whatever the engine throws becomes a JS error
// with a stable `code` and the function's name (a TypeError or RangeError for an argument
// fault, an Error otherwise), and no C++ exception ever leaves the addon. Methods and
// accessors of the wrapped classes check their receiver by its Node-API type tag before they
// unwrap it, so a method called on the wrong object (another class, a plain object whose
// prototype was swapped, a disposed object) is a TypeError, never a crash.
// Reference: Node-API "Object lifetime management" and napi_type_tag_object;
// node-addon-api ObjectWrap.
#pragma once
#include <napi.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/errors.h"
#include "napi/check.h"

namespace bsx::napi {

// What a failed native call reports to JS.
struct Failure {
  enum Kind { Type, Range, Error } kind = Error;
  const char* code = code::kNative;
  std::string message;
};

// Classifies the exception in flight (call inside a catch block; not for Napi::Error).
inline Failure CurrentFailure(const std::string& fn) {
  Failure f;
  try {
    throw;
  } catch (const std::bad_alloc&) {
    f.code = code::kOutOfMemory;
    f.message = fn + ": out of memory";
  } catch (const EnvError& e) {
    f.code = code::kInvalidEnv;
    f.message = fn + ": " + e.what();
  } catch (const std::length_error& e) {
    f.code = code::kOutOfMemory;  // a size past what an allocation can hold
    f.message = fn + ": " + e.what();
  } catch (const std::out_of_range& e) {
    f.kind = Failure::Range;
    f.code = code::kInvalidArgument;
    f.message = fn + ": " + e.what();
  } catch (const std::invalid_argument& e) {
    f.kind = Failure::Range;
    f.code = code::kInvalidArgument;
    f.message = fn + ": " + e.what();
  } catch (const std::logic_error& e) {
    f.code = code::kInvalidState;
    f.message = fn + ": " + e.what();
  } catch (const std::exception& e) {
    f.message = fn + ": " + e.what();
  } catch (...) {
    f.message = fn + ": unknown native error";
  }
  return f;
}

inline Napi::Error ToJs(Napi::Env env, const Failure& f) {
  switch (f.kind) {
    case Failure::Type: return WithCode(Napi::TypeError::New(env, f.message), f.code);
    case Failure::Range: return WithCode(Napi::RangeError::New(env, f.message), f.code);
    case Failure::Error: break;
  }
  return WithCode(Napi::Error::New(env, f.message), f.code);
}

// Runs f(); any exception but a JS error already made becomes one (see CurrentFailure).
template <typename F>
auto Guard(Napi::Env env, const std::string& fn, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJs(env, CurrentFailure(fn));
  }
}

// The wrapped object behind a method's receiver, checked by the class's type tag.
// T provides: static const napi_type_tag kTag; static constexpr const char* kClass.
template <typename T>
T& Receiver(const Napi::CallbackInfo& info, const std::string& fn) {
  Napi::Value self = info.This();
  if (!self.IsObject() || !self.As<Napi::Object>().CheckTypeTag(&T::kTag))
    ThrowType(info.Env(), fn + ": called on " + Describe(self) + ", not on a native " + T::kClass);
  T* p = Napi::ObjectWrap<T>::Unwrap(self.As<Napi::Object>());
  if (p == nullptr) ThrowType(info.Env(), fn + ": the receiver holds no native " + T::kClass);
  return *p;
}

// A wrapped object passed as an argument, checked the same way.
template <typename T>
T& Argument(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&T::kTag))
    ThrowType(v.Env(), where + " must be a native " + T::kClass + ", got " + Describe(v));
  T* p = Napi::ObjectWrap<T>::Unwrap(v.As<Napi::Object>());
  if (p == nullptr) ThrowType(v.Env(), where + " holds no native " + T::kClass);
  return *p;
}

// A class constructor called as a plain function (`Ensemble(...)` without `new`): the
// TypeError node-addon-api throws there, with a code. T::OnCalledAsFunction calls it.
template <typename T>
Napi::Value CalledAsFunction(const Napi::CallbackInfo& info) {
  ThrowType(info.Env(), std::string(T::kClass) + ": a class constructor; call it with 'new'");
}

// Prototype methods and accessors of T: a static thunk per member, the qualified name
// ("Ensemble.train") passed as the function's data.
template <typename T>
using Member = Napi::Value (T::*)(const Napi::CallbackInfo&, const std::string& fn);

template <typename T, Member<T> M>
Napi::Value MethodThunk(const Napi::CallbackInfo& info) {
  const std::string fn = static_cast<const char*>(info.Data());
  return Guard(info.Env(), fn, [&] { return (Receiver<T>(info, fn).*M)(info, fn); });
}

template <typename T, Member<T> M>
Napi::PropertyDescriptor Method(Napi::Env env, const char* qualified_name, const char* name) {
  return Napi::PropertyDescriptor::Value(
      name, Napi::Function::New<MethodThunk<T, M>>(env, name, const_cast<char*>(qualified_name)),
      napi_default_method);
}

template <typename T, Member<T> M>
Napi::PropertyDescriptor Getter(const char* qualified_name, const char* name) {
  return Napi::PropertyDescriptor::Accessor<MethodThunk<T, M>>(
      name, napi_configurable, const_cast<char*>(qualified_name));
}

// A plain exported function under the guard: F(info, fn).
template <Napi::Value (*F)(const Napi::CallbackInfo&, const std::string& fn)>
Napi::Value FunctionThunk(const Napi::CallbackInfo& info) {
  const std::string fn = static_cast<const char*>(info.Data());
  return Guard(info.Env(), fn, [&] { return F(info, fn); });
}

template <Napi::Value (*F)(const Napi::CallbackInfo&, const std::string& fn)>
Napi::Function Function(Napi::Env env, const char* qualified_name) {
  return Napi::Function::New<FunctionThunk<F>>(env, qualified_name, const_cast<char*>(qualified_name));
}

// The same for a function that takes no name: F(info).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value PlainThunk(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), static_cast<const char*>(info.Data()), [&] { return F(info); });
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Function PlainFunction(Napi::Env env, const char* qualified_name) {
  return Napi::Function::New<PlainThunk<F>>(env, qualified_name, const_cast<char*>(qualified_name));
}

}  // namespace bsx::napi
