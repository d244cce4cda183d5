// The engine's fork-join thread pool: persistent workers that spin briefly after each job
// (back-to-back GEMMs pay no wake-up) and then sleep on a condition variable. The calling
// thread runs chunks too. The pool is created on first use and intentionally never
// destroyed, so process exit (Node's included) never waits on a join.
// Reference: the fork-join/spin-then-block scheme of OpenMP runtimes (libgomp's GOMP_SPINCOUNT).
#include "cpu/thread_pool.h"
#include "engine/errors.h"
#include "cpu/fpenv.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define BSX_PAUSE() _mm_pause()
#else
#define BSX_PAUSE() std::this_thread::yield()
#endif

namespace bsx::cpu {
namespace {

constexpr int kMaxThreads = 256;
// How long an idle worker keeps polling for the next job before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

// Index of the current thread in the pool: 0 for any thread that is not a worker.
thread_local int t_worker_index = 0;
// Set while this thread runs a chunk of a parallel_for, so nested calls run inline.
thread_local bool t_in_parallel = false;

int default_threads() {
  if (const char* env = std::getenv("BSX_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || v < 1 || v > kMaxThreads) {
      throw EnvError("BSX_THREADS=" + std::string(env) +
                               ": expected an integer from 1 to " + std::to_string(kMaxThreads));
    }
    return static_cast<int>(v);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min<unsigned>(hc, kMaxThreads));
}

class Pool {
 public:
  explicit Pool(int n) { start(n); }

  int size() const { return size_; }

  void resize(int n) {
    std::lock_guard<std::mutex> call(call_mu_);  // waits for a job in flight
    stop();
    start(n);
  }

  void run(std::int64_t n, const std::function<void(std::int64_t, std::int64_t, int)>& fn,
           std::int64_t min_chunk) {
    if (n <= 0) return;
    if (min_chunk < 1) min_chunk = 1;
    const std::int64_t want = (n + min_chunk - 1) / min_chunk;
    int chunks = static_cast<int>(std::min<std::int64_t>(size_, want));
    std::unique_lock<std::mutex> call(call_mu_, std::try_to_lock);
    // Inline: one chunk, one thread, a nested call, or another thread owns the pool.
    if (chunks <= 1 || t_in_parallel || !call.owns_lock()) {
      run_inline(n, fn);
      return;
    }
    fn_ = &fn;
    n_ = n;
    error_ = nullptr;
    remaining_.store(chunks, std::memory_order_relaxed);
    ++seq_;
    // Publishing the claim word opens the job; chunks are only claimed through it.
    claim_.store(pack(seq_, chunks, 0), std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_parallel = true;
    work();
    t_in_parallel = false;
    // Wait for the chunks other threads took.
    for (unsigned spins = 0; remaining_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 4096) {
        BSX_PAUSE();
      } else {
        std::this_thread::yield();
      }
    }
    fn_ = nullptr;
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  static void run_inline(std::int64_t n,
                         const std::function<void(std::int64_t, std::int64_t, int)>& fn) {
    const bool was = t_in_parallel;
    t_in_parallel = true;
    try {
      fn(0, n, t_worker_index);
    } catch (...) {
      t_in_parallel = was;
      throw;
    }
    t_in_parallel = was;
  }

  // The claim word: job sequence number (32 bits), chunk count (16), next chunk (16).
  static std::uint64_t pack(std::uint32_t seq, int chunks, int next) {
    return (static_cast<std::uint64_t>(seq) << 32) | (static_cast<std::uint64_t>(chunks) << 16) |
           static_cast<std::uint64_t>(next);
  }

  // Claims chunks of the open job until none are left. The job's fields are read only after
  // a successful claim: the caller cannot retire the job before that chunk is counted done.
  void work() {
    std::uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      const int chunks = static_cast<int>((v >> 16) & 0xFFFF);
      const int c = static_cast<int>(v & 0xFFFF);
      if (c >= chunks) return;
      if (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        continue;  // v was reloaded
      }
      const std::int64_t b = n_ * c / chunks;
      const std::int64_t e = n_ * (c + 1) / chunks;
      try {
        (*fn_)(b, e, t_worker_index);
      } catch (...) {
        std::lock_guard<std::mutex> lk(err_mu_);
        if (!error_) error_ = std::current_exception();
      }
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
      v = claim_.load(std::memory_order_acquire);
    }
  }

  void worker_main(int index) {
    t_worker_index = index;
    flush_denormals_on_this_thread();  // workers only ever run the engine's arithmetic
    std::uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // Spin for a while, then block.
      auto t0 = std::chrono::steady_clock::now();
      std::uint64_t g;
      for (unsigned i = 0;; ++i) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen || quit_.load(std::memory_order_acquire)) break;
        BSX_PAUSE();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > kSpin) {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] {
            return generation_.load(std::memory_order_acquire) != seen ||
                   quit_.load(std::memory_order_acquire);
          });
          g = generation_.load(std::memory_order_acquire);
          break;
        }
      }
      if (quit_.load(std::memory_order_acquire)) return;
      seen = g;
      t_in_parallel = true;
      work();
      t_in_parallel = false;
    }
  }

  void start(int n) {
    size_ = std::max(1, std::min(n, kMaxThreads));
    quit_.store(false);
    workers_.reserve(static_cast<std::size_t>(size_ - 1));
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one job at a time
  std::mutex mu_;       // guards sleeping on cv_
  std::condition_variable cv_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> quit_{false};

  // The current job.
  const std::function<void(std::int64_t, std::int64_t, int)>* fn_ = nullptr;
  std::int64_t n_ = 0;
  std::uint32_t seq_ = 0;
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<int> remaining_{0};
  std::mutex err_mu_;
  std::exception_ptr error_;
};

Pool& pool() {
  // Leaked on purpose: no destructor runs at exit, so exit never joins a worker.
  static Pool* p = new Pool(default_threads());
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1");
  if (n > kMaxThreads) n = kMaxThreads;
  if (t_in_parallel) throw std::logic_error("set_num_threads: called from inside parallel_for");
  pool().resize(n);
}

void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t, int)>& fn,
                  std::int64_t min_chunk) {
  pool().run(n, fn, min_chunk);
}

}  // namespace bsx::cpu
