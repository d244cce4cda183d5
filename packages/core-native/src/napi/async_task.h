// Long engine calls off the JS thread, settling a Promise (baton style: the inputs are copied
// into the task on the JS thread; `exec` runs on a libuv worker thread and touches no N-API).
// Written on the raw Node-API so that completion never throws: when the environment is being
// torn down (a worker thread terminated or exiting mid-call), the task only releases what it
// holds and leaves the Promise unsettled, where node-addon-api's AsyncWorker would throw out of
// the completion callback and abort the process.
// Reference: Node-API napi_create_async_work, napi_create_promise.
#pragma once
#include <napi.h>

#include <functional>
#include <string>

namespace bsx::napi {

struct TaskSpec {
  std::function<void()> exec;                  // worker thread: the engine call
  std::function<Napi::Value(Napi::Env)> done;  // JS thread: the resolved value
  std::function<void()> release;               // once, after exec, on the JS thread (or at teardown)
};

// Queues the task and returns its Promise; `fn` names the call in error messages. If the
// task cannot be queued, `release` runs and a JS error is thrown.
Napi::Value StartTask(Napi::Env env, const std::string& fn, TaskSpec spec);

}  // namespace bsx::napi
