// CUDA host-side helpers of the engine: BSX_CUDA_CHECK (throws std::runtime_error with
// file:line, the call and cudaGetErrorString; never exits) and RAII owners of device memory,
// pinned host memory, streams, events and graphs, so that nothing leaks when a call throws.
// Pattern after tiny-cuda-nn include/tiny-cuda-nn/common_host.h (CUDA_CHECK_THROW, GPUMemory).
// Kernels are launched through BSX_LAUNCH so that a CPU emulation of the runtime
// (test/native/cuda_emu.h) can run the same code on machines without a GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#define BSX_CUDA_STR2(x) #x
#define BSX_CUDA_STR(x) BSX_CUDA_STR2(x)

// Throws std::runtime_error("cuda: <file>:<line>: <call> failed: <name>: <description>").
#define BSX_CUDA_CHECK(expr)                                                                  \
  do {                                                                                        \
    const cudaError_t bsx_cuda_err_ = (expr);                                                 \
    if (bsx_cuda_err_ != cudaSuccess)                                                         \
      ::bsx::cuda::throw_cuda_error(bsx_cuda_err_, #expr, __FILE__ ":" BSX_CUDA_STR(__LINE__)); \
  } while (0)

// BSX_LAUNCH(grid, block, shared_bytes, stream, kernel<...>)(args...): a kernel launch.
#ifndef BSX_LAUNCH
#define BSX_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#endif

// Checks the launch just made (configuration errors; asynchronous faults surface at the next
// synchronising call, which is checked too).
#define BSX_CUDA_CHECK_LAUNCH() BSX_CUDA_CHECK(cudaGetLastError())

namespace bsx::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* where) {
  std::string msg = std::string("cuda: ") + where + ": " + call + " failed: " +
                    cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  throw std::runtime_error(msg);
}

// Device memory for n elements of T (uninitialised). Movable, not copyable.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) { resize(n); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  // Reallocates to exactly n elements (contents are not kept).
  void resize(std::size_t n) {
    if (n == n_) return;
    release();
    if (n == 0) return;
    void* p = nullptr;
    BSX_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    ptr_ = static_cast<T*>(p);
    n_ = n;
  }
  // Grows to at least n elements (contents are not kept when it grows).
  void reserve(std::size_t n) {
    if (n > n_) resize(n);
  }
  void release() noexcept {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(T); }
  bool empty() const { return n_ == 0; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

// Page-locked host memory (fast, truly asynchronous copies).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void reserve(std::size_t n) {
    if (n <= n_) return;
    release();
    void* p = nullptr;
    BSX_CUDA_CHECK(cudaMallocHost(&p, n * sizeof(T)));
    ptr_ = static_cast<T*>(p);
    n_ = n;
  }
  void release() noexcept {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

class Stream {
 public:
  Stream() { BSX_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { BSX_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  explicit Event(unsigned flags = cudaEventDefault) { BSX_CUDA_CHECK(cudaEventCreateWithFlags(&e_, flags)); }
  ~Event() {
    if (e_) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s) { BSX_CUDA_CHECK(cudaEventRecord(e_, s)); }
  void sync() const { BSX_CUDA_CHECK(cudaEventSynchronize(e_)); }
  // Milliseconds from `start` to this event (both recorded and complete).
  float since(const Event& start) const {
    float ms = 0;
    BSX_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
    return ms;
  }

 private:
  cudaEvent_t e_ = nullptr;
};

// A captured graph and its executable instance.
class Graph {
 public:
  Graph() = default;
  ~Graph() { reset(); }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&& o) noexcept : graph_(std::exchange(o.graph_, nullptr)), exec_(std::exchange(o.exec_, nullptr)) {}
  Graph& operator=(Graph&& o) noexcept {
    if (this != &o) {
      reset();
      graph_ = std::exchange(o.graph_, nullptr);
      exec_ = std::exchange(o.exec_, nullptr);
    }
    return *this;
  }
  // Captures everything `enqueue` puts on stream s into this graph and instantiates it.
  // On an exception the capture is ended and discarded.
  template <typename F>
  void capture(cudaStream_t s, F&& enqueue) {
    reset();
    BSX_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue();
    } catch (...) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw;
    }
    BSX_CUDA_CHECK(cudaStreamEndCapture(s, &graph_));
    BSX_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  void launch(cudaStream_t s) const { BSX_CUDA_CHECK(cudaGraphLaunch(exec_, s)); }
  bool ready() const { return exec_ != nullptr; }
  void reset() noexcept {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
  }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace bsx::cuda
