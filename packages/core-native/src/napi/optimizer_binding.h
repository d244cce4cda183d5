// Optimiser options from JS, read against the engine's optimiser table (engine/optimizers.h):
//   { name: 'sgd' | 'adam' | ..., <hyperparameter>: number | boolean |
//     number[] | boolean[] | Float64Array (one value per replica) }
// Hyperparameters left out take their defaults; unknown names, wrong types and values out
// of range throw TypeError / RangeError naming the hyperparameter (and the replica).
#pragma once
#include <napi.h>

#include <string>

#include "engine/ensemble.h"

namespace bsx::napi {

// Every property is read before anything is checked (getters may run JS); no engine object
// is touched.
OptimizerConfig ParseOptimizer(const Napi::Value& options, const std::string& fn, int replicas);

void RegisterOptimizer(Napi::Env env, Napi::Object exports);  // validateOptimizer()

}  // namespace bsx::napi
