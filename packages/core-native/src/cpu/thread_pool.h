// A fixed pool of worker threads for the CPU engine, sized to the machine's cores
// (BSX_THREADS overrides). parallel_for splits [0, n) into contiguous chunks.
#pragma once
#include <cstdint>
#include <functional>

namespace bsx::cpu {

int num_threads();
// Resize the pool (tests and benchmarks); n >= 1.
void set_num_threads(int n);

// Calls fn(begin, end, thread_index) over disjoint chunks covering [0, n); returns when all
// are done. Runs inline when n is small or the pool has one thread. Not re-entrant: a call
// from inside a worker runs inline. Exceptions thrown by fn are rethrown to the caller.
void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t, int)>& fn,
                  std::int64_t min_chunk = 1);

}  // namespace bsx::cpu
