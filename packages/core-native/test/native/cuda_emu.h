// A CPU emulation of the part of the CUDA runtime and device language the engine's CUDA code
// uses, so that the kernels and CudaEnsemble run on machines without a GPU (the build
// machines): every CUDA thread is a fiber (ucontext) of one OS thread, blocks run one after
// another, __syncthreads and warp shuffles are barriers among the fibers. It checks what it can:
// device allocations end at a guard page (reads or writes past the end fault) and start filled
// with NaN bytes; 16-byte accesses must be 16-byte aligned; a barrier that some threads skip
// (divergent __syncthreads, a shuffle with missing lanes) aborts; fibers run in forward,
// reverse or shuffled order between barriers (BSX_EMU_ORDER=forward|reverse|shuffle), so a
// missing barrier shows up as a result that depends on the order.
// It does not model timing or memory ordering between blocks; of the atomics it has the
// integer atomicAdd (atomic here because a fiber is never interrupted between barriers).
// Used by test/native/cuda_emu_check.cpp; include it through test/native/emu_include/
// (its cuda_runtime.h). Not part of the addon.
#pragma once
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define BSX_CUDA_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define CUDART_INF_F __builtin_inff()
#define CUDART_INF __builtin_inf()

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorStreamCaptureInvalidated = 901,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDefault = 0;

namespace bsx_emu {

[[noreturn]] inline void fail(const char* what) {
  std::fflush(stdout);
  std::fprintf(stderr, "cuda_emu: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

// --- device memory: each allocation ends at a PROT_NONE page

struct Allocation {
  char* base;
  std::size_t total;
};
inline std::map<const void*, Allocation>& allocations() {
  static std::map<const void*, Allocation> m;
  return m;
}
inline void* device_alloc(std::size_t n) {
  const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t body = (n + 15) / 16 * 16;
  const std::size_t total = (body + ps - 1) / ps * ps + ps;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* base = static_cast<char*>(m);
  if (mprotect(base + total - ps, ps, PROT_NONE) != 0) fail("mprotect failed");
  char* p = base + total - ps - body;
  std::memset(p, 0xff, body);  // NaN floats: reads of unwritten memory show up
  allocations()[p] = Allocation{base, total};
  return p;
}
inline void device_free(void* p) {
  auto it = allocations().find(p);
  if (it == allocations().end()) fail("cudaFree of a pointer cudaMalloc did not return");
  munmap(it->second.base, it->second.total);
  allocations().erase(it);
}

// --- streams and graphs: a capturing stream records operations instead of running them

struct Graph {
  std::vector<std::function<void()>> ops;
};
struct Stream {
  bool capturing = false;
  std::unique_ptr<Graph> graph;
};
inline void submit(Stream* s, std::function<void()> op) {
  if (s != nullptr && s->capturing) {
    s->graph->ops.push_back(std::move(op));
  } else {
    op();
  }
}

// --- the fiber scheduler

enum class FiberState { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  ucontext_t ctx;
  uint3 tid;
  int linear = 0, lane = 0, warp = 0;
  FiberState state = FiberState::Runnable;
};

struct Scheduler {
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  std::size_t stack_bytes = 256 * 1024;
  ucontext_t main_ctx;
  Fiber* cur = nullptr;
  uint3 block_idx;
  dim3 block_dim, grid_dim;
  const std::function<void()>* body = nullptr;
  std::vector<std::array<std::uint64_t, 32>> exchange;  // per warp, per lane: shuffle slots
  int order = 0;                                        // 0 forward, 1 reverse, 2 shuffle
  std::mt19937 rng{12345};
  bool in_kernel = false;

  Scheduler() {
    const char* o = std::getenv("BSX_EMU_ORDER");
    if (o != nullptr && std::strcmp(o, "reverse") == 0) order = 1;
    if (o != nullptr && std::strcmp(o, "shuffle") == 0) order = 2;
  }
};
inline Scheduler& sched() {
  static Scheduler s;
  return s;
}

inline void trampoline() {
  Scheduler& s = sched();
  (*s.body)();
  s.cur->state = FiberState::Done;
}

inline void wait_here(FiberState st) {
  Scheduler& s = sched();
  Fiber* f = s.cur;
  f->state = st;
  swapcontext(&f->ctx, &s.main_ctx);
}

inline void run_block(const dim3& b, const std::function<void()>& body) {
  Scheduler& s = sched();
  const int n = static_cast<int>(b.x * b.y * b.z);
  if (n <= 0 || n > 1024) fail("block size must be 1..1024 threads");
  s.fibers.assign(static_cast<std::size_t>(n), Fiber{});
  while (s.stacks.size() < static_cast<std::size_t>(n))
    s.stacks.emplace_back(new char[s.stack_bytes]);
  const int warps = (n + 31) / 32;
  s.exchange.assign(static_cast<std::size_t>(warps), {});
  s.body = &body;
  for (int i = 0; i < n; ++i) {
    Fiber& f = s.fibers[i];
    f.linear = i;
    f.tid.x = static_cast<unsigned>(i) % b.x;
    f.tid.y = (static_cast<unsigned>(i) / b.x) % b.y;
    f.tid.z = static_cast<unsigned>(i) / (b.x * b.y);
    f.lane = i % 32;
    f.warp = i / 32;
    f.state = FiberState::Runnable;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = s.stacks[i].get();
    f.ctx.uc_stack.ss_size = s.stack_bytes;
    f.ctx.uc_link = &s.main_ctx;
    makecontext(&f.ctx, trampoline, 0);
  }
  std::vector<int> perm(static_cast<std::size_t>(n));
  for (;;) {
    for (int i = 0; i < n; ++i) perm[i] = i;
    if (s.order == 1) std::reverse(perm.begin(), perm.end());
    if (s.order == 2) std::shuffle(perm.begin(), perm.end(), s.rng);
    bool progressed = false;
    for (int i : perm) {
      Fiber& f = s.fibers[i];
      if (f.state != FiberState::Runnable) continue;
      s.cur = &f;
      swapcontext(&s.main_ctx, &f.ctx);
      progressed = true;
    }
    int done = 0, at_block = 0;
    for (const Fiber& f : s.fibers) {
      done += f.state == FiberState::Done;
      at_block += f.state == FiberState::AtBlockBarrier;
    }
    if (done == n) break;
    bool released = false;
    for (int w = 0; w < warps; ++w) {
      const int lanes = std::min(32, n - 32 * w);
      int at_warp = 0, wdone = 0;
      for (int l = 0; l < lanes; ++l) {
        at_warp += s.fibers[w * 32 + l].state == FiberState::AtWarpBarrier;
        wdone += s.fibers[w * 32 + l].state == FiberState::Done;
      }
      if (at_warp == 32) {
        for (int l = 0; l < lanes; ++l) s.fibers[w * 32 + l].state = FiberState::Runnable;
        released = true;
      } else if (at_warp > 0 && at_warp + wdone == lanes) {
        fail("warp shuffle with exited or missing lanes (shuffles need all 32 lanes)");
      }
    }
    if (!released && at_block > 0) {
      int at_warp_total = 0;
      for (const Fiber& f : s.fibers) at_warp_total += f.state == FiberState::AtWarpBarrier;
      if (at_block + done == n) {
        if (done > 0) fail("__syncthreads reached by some threads while others have exited");
        for (Fiber& f : s.fibers) f.state = FiberState::Runnable;
        released = true;
      } else if (at_block + done + at_warp_total == n && !progressed) {
        fail("__syncthreads while other threads wait in a warp shuffle");
      }
    }
    if (!progressed && !released) fail("deadlock: no thread can proceed");
  }
  s.cur = nullptr;
}

inline void run_grid(const dim3& g, const dim3& b, const std::function<void()>& body) {
  Scheduler& s = sched();
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) fail("invalid grid");
  if (s.in_kernel) fail("nested kernel launch");
  s.in_kernel = true;
  s.grid_dim = g;
  s.block_dim = b;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        s.block_idx.x = x;
        s.block_idx.y = y;
        s.block_idx.z = z;
        run_block(b, body);
      }
  s.in_kernel = false;
}

template <typename... P>
struct Launcher {
  dim3 grid, block;
  Stream* stream;
  void (*fn)(P...);
  template <typename... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel argument count");
    std::tuple<std::decay_t<P>...> t(std::forward<A>(args)...);
    auto f = fn;
    const dim3 g = grid, b = block;
    submit(stream, [f, t, g, b] {
      const std::function<void()> body = [&] { std::apply(f, t); };
      run_grid(g, b, body);
    });
  }
};

template <typename... P>
Launcher<P...> make_launcher(dim3 g, dim3 b, std::size_t, Stream* stream, void (*fn)(P...)) {
  return Launcher<P...>{g, b, stream, fn};
}

template <typename T>
T shfl_xor(T v, int mask) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  Scheduler& s = sched();
  Fiber* f = s.cur;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  s.exchange[f->warp][f->lane] = bits;
  wait_here(FiberState::AtWarpBarrier);
  f = s.cur;
  bits = s.exchange[f->warp][f->lane ^ (mask & 31)];
  wait_here(FiberState::AtWarpBarrier);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace bsx_emu

#define BSX_LAUNCH(grid, block, smem, stream, ...) \
  ::bsx_emu::make_launcher((grid), (block), (smem), (stream), __VA_ARGS__)
#define BSX_CHECK_ALIGN16(p)                                                   \
  do {                                                                         \
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0)                        \
      ::bsx_emu::fail("16-byte access at an address not aligned to 16 bytes"); \
  } while (0)

#define threadIdx (::bsx_emu::sched().cur->tid)
#define blockIdx (::bsx_emu::sched().block_idx)
#define blockDim (::bsx_emu::sched().block_dim)
#define gridDim (::bsx_emu::sched().grid_dim)

inline void __syncthreads() { ::bsx_emu::wait_here(::bsx_emu::FiberState::AtBlockBarrier); }
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
  return ::bsx_emu::shfl_xor(v, mask);
}
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
template <typename T>
inline T atomicAdd(T* p, T v) {
  static_assert(std::is_integral<T>::value, "integer atomics only");
  const T old = *p;
  *p = old + v;
  return old;
}

// --- runtime API

typedef bsx_emu::Stream* cudaStream_t;
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
};
typedef CUevent_st* cudaEvent_t;
typedef bsx_emu::Graph* cudaGraph_t;
typedef bsx_emu::Graph* cudaGraphExec_t;

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    default: return "cudaErrorInvalidValue";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "error";
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, std::size_t n) {
  *p = bsx_emu::device_alloc(n);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <typename T>
inline cudaError_t cudaMalloc(T** p, std::size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFree(void* p) {
  if (p) bsx_emu::device_free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, std::size_t n) {
  *p = std::malloc(n);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, std::size_t n, cudaMemcpyKind) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind,
                                   cudaStream_t st = nullptr) {
  bsx_emu::submit(st, [d, s, n] { std::memcpy(d, s, n); });
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, std::size_t n, cudaStream_t st = nullptr) {
  bsx_emu::submit(st, [d, v, n] { std::memset(d, v, n); });
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new bsx_emu::Stream();
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (s && s->capturing) return cudaErrorStreamCaptureInvalidated;
  return cudaSuccess;
}
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s || s->capturing) return cudaErrorInvalidValue;
  s->capturing = true;
  s->graph = std::make_unique<bsx_emu::Graph>();
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!s || !s->capturing) return cudaErrorInvalidValue;
  s->capturing = false;
  *g = s->graph.release();
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  *e = new bsx_emu::Graph(*g);
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  if (s && s->capturing) return cudaErrorInvalidValue;
  for (auto& op : e->ops) op();
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st();
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
