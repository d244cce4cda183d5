// StartTask (napi/async_task.h).
#include "napi/async_task.h"

#include <memory>
#include <utility>

#include "napi/guard.h"

namespace bsx::napi {

namespace {

struct Task {
  std::string fn;
  TaskSpec spec;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  bool failed = false;
  Failure failure;
};

void Execute(napi_env, void* data) {
  Task* t = static_cast<Task*>(data);
  try {
    t->spec.exec();
  } catch (...) {
    t->failed = true;
    t->failure = CurrentFailure(t->fn);
  }
}

// Whether JS can still run in env: the calls below fail (without throwing) while the
// environment is being torn down. A zero-length ArrayBuffer is the cheapest call that checks.
bool CanRunJs(napi_env env) {
  napi_value probe;
  return napi_create_arraybuffer(env, 0, nullptr, &probe) == napi_ok;
}

// Settles the promise; every failure is swallowed (nothing may throw out of a completion).
void Settle(napi_env env, Task* t) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  try {
    Napi::Env e(env);
    if (t->failed) {
      Napi::Error err = ToJs(e, t->failure);
      napi_reject_deferred(env, t->deferred, err.Value());
    } else {
      Napi::Value v = t->spec.done(e);
      napi_resolve_deferred(env, t->deferred, v);
    }
  } catch (const Napi::Error& err) {
    // building the result failed (e.g. out of memory for the typed arrays): reject with it
    napi_value ex = err.Value();
    if (ex != nullptr) napi_reject_deferred(env, t->deferred, ex);
  } catch (...) {
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  napi_close_handle_scope(env, scope);
}

void Complete(napi_env env, napi_status status, void* data) {
  std::unique_ptr<Task> t(static_cast<Task*>(data));
  napi_delete_async_work(env, t->work);
  try {
    t->spec.release();
  } catch (...) {
  }
  if (status == napi_cancelled || !CanRunJs(env)) return;  // teardown: nothing to settle
  Settle(env, t.get());
}

}  // namespace

Napi::Value StartTask(Napi::Env env, const std::string& fn, TaskSpec spec) {
  auto t = std::make_unique<Task>();
  t->fn = fn;
  t->spec = std::move(spec);
  napi_value promise, name;
  napi_status st = napi_create_promise(env, &t->deferred, &promise);
  if (st == napi_ok) st = napi_create_string_utf8(env, "bsx:task", NAPI_AUTO_LENGTH, &name);
  if (st == napi_ok) st = napi_create_async_work(env, nullptr, name, Execute, Complete, t.get(), &t->work);
  if (st == napi_ok) {
    st = napi_queue_async_work(env, t->work);
    if (st != napi_ok) napi_delete_async_work(env, t->work);
  }
  if (st != napi_ok) {
    t->spec.release();
    ThrowError(env, code::kNative, fn + ": could not start the call (Node-API status " + std::to_string(st) + ")");
  }
  t.release();  // owned by the work until Complete
  return Napi::Value(env, promise);
}

}  // namespace bsx::napi
