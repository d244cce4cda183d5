// The GEMM driver: picks the kernel set of the SIMD path in use, then one of four
// algorithms by shape only (never by thread count, so results do not depend on threads):
//   * direct  (op(B) not transposed, M <= 64 or K <= 8): unpacked 8-row register tiles that
//     stream B once per 8 rows (the GEMV-like backward pass at small batch: no packing, B
//     is read in place) or C once (the rank-K weight gradient at small batch); threads
//     split the columns (M <= 32) or the rows;
//   * dot     (op(B) transposed, M <= 8 or N <= 16): dot products of rows of op(A) with rows
//     of B, each row of B streamed once (the forward pass at small batch; the 10-class
//     output layer); threads split the rows of B (resp. of A);
//   * packed  (everything else): Goto/BLIS blocking. C is cut into one block per thread, by
//     columns when there are enough of them, and each thread runs the blocked algorithm on
//     its block alone (no barrier): nc columns of op(B) at a time, K in blocks of kc, the
//     kc x nc block packed into nr-wide micro-panels that stay in the core's L2; then for
//     each mr-row micro-panel of op(A) (read in place when A is not transposed, else packed
//     on the fly; either way it stays in L1) the micro-kernel sweeps the B micro-panels;
//   * scale   (K == 0): C = beta*C and the epilogue.
// Each C element is reduced over K in a fixed order (K blocks in sequence, beta applied on
// the first, the epilogue on the last), the same for any cut of C into blocks.
// Also here: the portable kernel set (plain C++, baseline ISA) and sgemm_batched, which
// threads over problems when there are enough of them.
// Reference: Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication",
// ACM TOMS 34(3), 2008; BLIS (Van Zee & van de Geijn, ACM TOMS 41(3), 2015).
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/gemm_kernels.h"
#include "cpu/thread_pool.h"

namespace bsx::cpu {
namespace gemm_detail {
namespace {

// ---------------------------------------------------------------------------------------
// Portable kernel set: plain loops (the compiler may vectorise them for the baseline ISA).
constexpr int kPortMR = 4;
constexpr int kPortNR = 8;

inline float epilogue_scalar(float acc, float alpha, float beta, const float* c,
                             const float* bias, const float* mask, bool relu) {
  float v = alpha * acc;
  if (beta != 0.0f) v += beta * *c;
  if (bias != nullptr) v += *bias;
  if (mask != nullptr && !(*mask > 0.0f)) v = 0.0f;
  if (relu && !(v > 0.0f)) v = 0.0f;
  return v;
}

void port_kernel(int kc, const float* A, std::int64_t rsa, std::int64_t csa, const float* Bp,
                 float* C, std::int64_t ldc, int mv, int nv, float alpha, float beta,
                 const TileEpilogue* ep) {
  float acc[kPortMR][kPortNR] = {};
  const float* row[kPortMR];
  for (int i = 0; i < kPortMR; ++i) row[i] = A + (rsa == 1 || i < mv ? i : 0) * rsa;
  for (int k = 0; k < kc; ++k) {
    for (int i = 0; i < kPortMR; ++i) {
      const float a = row[i][k * csa];
      for (int j = 0; j < kPortNR; ++j) acc[i][j] += a * Bp[j];
    }
    Bp += kPortNR;
  }
  for (int i = 0; i < mv; ++i) {
    float* c = C + i * ldc;
    for (int j = 0; j < nv; ++j) {
      const float* bias = (ep != nullptr && ep->bias != nullptr) ? ep->bias + j : nullptr;
      const float* mask = (ep != nullptr && ep->mask != nullptr) ? ep->mask + i * ep->ldm + j
                                                                 : nullptr;
      c[j] = epilogue_scalar(acc[i][j], alpha, beta, c + j, bias, mask,
                             ep != nullptr && ep->relu);
    }
  }
}

template <int P>
void port_pack(bool trans_src, const float* src, std::int64_t ld, int count, int kc, float* out) {
  // trans_src: element (i, k) at src[i*ld + k]; else at src[k*ld + i].
  for (int i0 = 0; i0 < count; i0 += P) {
    const int n = std::min(P, count - i0);
    for (int k = 0; k < kc; ++k) {
      for (int i = 0; i < P; ++i) {
        out[k * P + i] = i >= n ? 0.0f
                         : trans_src ? src[(i0 + i) * ld + k]
                                     : src[k * ld + i0 + i];
      }
    }
    out += static_cast<std::int64_t>(P) * kc;
  }
}

void port_pack_a(bool transA, const float* A, std::int64_t lda, int mc, int kc, float* Ap) {
  port_pack<kPortMR>(!transA, A, lda, mc, kc, Ap);
}

void port_pack_b(bool transB, const float* B, std::int64_t ldb, int kc, int nc, float* Bp) {
  port_pack<kPortNR>(transB, B, ldb, nc, kc, Bp);
}

void port_direct(int m0, int m1, int n0, int n1, int K, float alpha, const float* A,
                 std::int64_t rsa, std::int64_t csa, const float* B, std::int64_t ldb,
                 float beta, float* C, std::int64_t ldc, const Epilogue& ep) {
  constexpr int W = 64;
  float acc[W];
  for (int m = m0; m < m1; ++m) {
    for (int n = n0; n < n1; n += W) {
      const int w = std::min(W, n1 - n);
      for (int j = 0; j < W; ++j) acc[j] = 0.0f;
      for (int k = 0; k < K; ++k) {
        const float a = A[m * rsa + k * csa];
        const float* b = B + k * ldb + n;
        for (int j = 0; j < w; ++j) acc[j] += a * b[j];
      }
      float* c = C + m * ldc + n;
      for (int j = 0; j < w; ++j) {
        c[j] = epilogue_scalar(acc[j], alpha, beta, c + j,
                               ep.bias != nullptr ? ep.bias + n + j : nullptr,
                               ep.mask != nullptr ? ep.mask + m * ep.ldm + n + j : nullptr,
                               ep.relu);
      }
    }
  }
}

void port_dot(int M, int n0, int n1, int K, float alpha, const float* A, std::int64_t lda,
              const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
              const Epilogue& ep) {
  constexpr int L = 8;  // fixed lanes, fixed final tree: deterministic
  for (int m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    for (int n = n0; n < n1; ++n) {
      const float* b = B + n * ldb;
      float s[L] = {};
      int k = 0;
      for (; k + L <= K; k += L)
        for (int l = 0; l < L; ++l) s[l] += a[k + l] * b[k + l];
      for (int l = 0; k + l < K; ++l) s[l] += a[k + l] * b[k + l];
      const float d = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
      float* c = C + m * ldc + n;
      *c = epilogue_scalar(d, alpha, beta, c, ep.bias != nullptr ? ep.bias + n : nullptr,
                           ep.mask != nullptr ? ep.mask + m * ep.ldm + n : nullptr, ep.relu);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Kernel set of the active path.

const KernelSet& set_for(SimdPath p) {
  static const KernelSet sets[3] = {kernels_portable(), kernels_avx2(), kernels_avx512()};
  int i = static_cast<int>(p);
  while (i > 0 && sets[i].kernel == nullptr) --i;  // a file built without its ISA
  return sets[i];
}

const KernelSet& active_set() { return set_for(simd_path()); }

// ---------------------------------------------------------------------------------------
// Blocking and workspace.

Blocking g_blocking;  // zero: defaults

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
inline int round_up(int a, int b) { return ceil_div(a, b) * b; }

struct Plan {
  int kc;  // K block (balanced: a function of K only, so results never depend on threads)
  int nc;  // columns of packed B per block (multiple of nr)
};

Plan plan_for(const KernelSet& ks, int K) {
  const Blocking& b = g_blocking;
  const int kc_max = b.kc > 0 ? b.kc : 256;
  Plan p;
  p.kc = ceil_div(K, ceil_div(K, kc_max));
  const int l2 = b.l2 > 0 ? b.l2 : 512 * 1024;  // half of a 1 MiB L2 for packed B
  const int nc = b.nc > 0 ? b.nc : l2 / (4 * p.kc);
  p.nc = std::max(ks.nr, nc / ks.nr * ks.nr);
  return p;
}

// 64-byte aligned scratch owned by one thread (the thread that runs a problem's driver).
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(p_); }
  float* get(std::size_t n) {
    if (n > cap_) {
      std::free(p_);
      p_ = nullptr;
      cap_ = 0;
      const std::size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
      p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (p_ == nullptr) throw std::bad_alloc();
      cap_ = bytes / sizeof(float);
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  std::size_t cap_ = 0;
};

thread_local Workspace t_ws_a;
thread_local Workspace t_ws_b;
thread_local Workspace t_ws_band;  // a band of C handed to a hook instead of C

// ---------------------------------------------------------------------------------------
// One problem.

struct Problem {
  bool ta, tb;
  int M, N, K;
  float alpha;
  const float* A;
  std::int64_t lda;
  const float* B;
  std::int64_t ldb;
  float beta;
  float* C;
  std::int64_t ldc;
  Epilogue ep;
};

enum class Algo { Scale, Direct, Dot, Packed };

constexpr int kSmallM = 8;    // rows of a direct or dot register tile
constexpr int kDirectM = 64;  // direct kernel up to this M (B not transposed)
constexpr int kDotM = 8;      // dot kernel up to this M (B transposed)
constexpr int kSmallK = 8;    // rank-K update up to this K
constexpr int kSmallN = 16;   // dot products for transposed B with few columns

Algo choose(bool ta, bool tb, int M, int N, int K) {
  (void)ta;
  const int direct_m = g_blocking.direct_m > 0 ? g_blocking.direct_m : kDirectM;
  const int dot_m = g_blocking.dot_m > 0 ? g_blocking.dot_m : kDotM;
  if (K <= 0) return Algo::Scale;
  if (!tb && (M <= direct_m || K <= kSmallK)) return Algo::Direct;
  if (tb && (M <= dot_m || N <= kSmallN)) return Algo::Dot;
  return Algo::Packed;
}

// Runs body(i) for i in [0, n) on up to T threads, each claiming the next index from a
// shared counter: a thread slowed by other load on the machine simply takes fewer pieces.
// (Which thread computes a piece never changes its result.)
template <typename F>
void dynamic_for(int T, int n, F&& body) {
  if (T <= 1 || n <= 1) {
    for (int i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<int> next{0};
  parallel_for(std::min(T, n), [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t t = b; t < e; ++t)
      for (int i = next.fetch_add(1, std::memory_order_relaxed); i < n;
           i = next.fetch_add(1, std::memory_order_relaxed))
        body(i);
  });
}

// Runs body(begin, end) over [0, n) on up to T threads by guided self-scheduling: each
// claim takes 1/T of what is left (a multiple of `align`, at least `min_piece`), so with
// all cores free the first claims are large (good cache reuse) and a thread slowed by other
// load leaves the later, smaller pieces to the others. (Which thread computes a piece, and
// where the cuts fall, never changes a result.)
template <typename F>
void guided_for(int T, int n, int align, int min_piece, F&& body) {
  if (n <= 0) return;
  if (T <= 1) {
    body(0, n);
    return;
  }
  std::atomic<int> next{0};
  parallel_for(T, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t t = b; t < e; ++t) {
      int cur = next.load(std::memory_order_relaxed);
      while (cur < n) {
        const int w = std::max(min_piece, round_up(ceil_div(n - cur, T), align));
        const int end = std::min(n, cur + w);
        if (next.compare_exchange_weak(cur, end, std::memory_order_relaxed)) {
          body(cur, end);
          cur = next.load(std::memory_order_relaxed);
        }
      }
    }
  });
}

// Pieces per thread for dynamic_for: enough to even out a core shared with other work.
constexpr int kPiecesPerThread = 4;
inline int pieces_per_thread() {
  return g_blocking.pieces > 0 ? g_blocking.pieces : kPiecesPerThread;
}

// A problem is worth a fork (a few microseconds) from about a million multiply-adds, or
// when it streams a large operand (bandwidth-bound small-batch shapes: two cores draw more
// bandwidth than one).
constexpr double kMinParallelMacs = 1 << 20;
constexpr double kMinParallelStream = 1 << 16;  // elements of the largest operand

// The hook of a finished region (when there is one).
inline void tile_done(const Problem& p, int m, int n, int rows, int cols) {
  if (p.ep.hook != nullptr && rows > 0 && cols > 0)
    p.ep.hook->fn(p.ep.hook, m, n, rows, cols, p.C + static_cast<std::int64_t>(m) * p.ldc + n, p.ldc);
}

void run_scale(const Problem& p) {
  for (int m = 0; m < p.M; ++m) {
    float* c = p.C + m * p.ldc;
    for (int n = 0; n < p.N; ++n) {
      c[n] = epilogue_scalar(0.0f, 0.0f, p.beta, c + n,
                             p.ep.bias != nullptr ? p.ep.bias + n : nullptr,
                             p.ep.mask != nullptr ? p.ep.mask + m * p.ep.ldm + n : nullptr,
                             p.ep.relu);
    }
  }
  tile_done(p, 0, 0, p.M, p.N);
}

void run_direct(const KernelSet& ks, const Problem& p, int T) {
  const std::int64_t rsa = p.ta ? 1 : p.lda;
  const std::int64_t csa = p.ta ? p.lda : 1;
  if (p.M <= 4 * kSmallM) {
    // Pieces of columns (each streams its columns of B once per 8 rows).
    const int w = std::max(64, round_up(ceil_div(p.N, T * pieces_per_thread()), 16));
    dynamic_for(T, ceil_div(p.N, w), [&](int i) {
      const int n0 = i * w, n1 = std::min(p.N, (i + 1) * w);
      ks.direct(0, p.M, n0, n1, p.K, p.alpha, p.A, rsa, csa, p.B, p.ldb, p.beta, p.C, p.ldc, p.ep);
      tile_done(p, 0, n0, p.M, n1 - n0);
    });
  } else {
    // Pieces of rows: at small K each streams its rows of C once; at 33..64 rows each
    // streams B (from the shared cache) once per 8 of its rows.
    const int h = std::max(8, round_up(ceil_div(p.M, T * pieces_per_thread()), 8));
    dynamic_for(T, ceil_div(p.M, h), [&](int i) {
      const int m0 = i * h, m1 = std::min(p.M, (i + 1) * h);
      ks.direct(m0, m1, 0, p.N, p.K, p.alpha, p.A, rsa, csa, p.B, p.ldb, p.beta, p.C, p.ldc, p.ep);
      tile_done(p, m0, 0, m1 - m0, p.N);
    });
  }
}

void run_dot(const KernelSet& ks, const Problem& p, int T) {
  const float* A = p.A;
  std::int64_t lda = p.lda;
  if (p.ta) {
    // The dot kernel reads rows of op(A): copy op(A) out (M <= 8 or N <= 16 makes it cheap
    // next to the products, each element of A feeding N of them).
    float* a = t_ws_a.get(static_cast<std::size_t>(p.M) * p.K);
    for (int k = 0; k < p.K; ++k)
      for (int m = 0; m < p.M; ++m) a[static_cast<std::int64_t>(m) * p.K + k] = p.A[k * p.lda + m];
    A = a;
    lda = p.K;
  }
  auto rows = [&](int m0, int m1, int n0, int n1) {
    for (int m = m0; m < m1; m += kSmallM) {
      const int r = std::min(kSmallM, m1 - m);
      Epilogue e = p.ep;
      if (e.mask != nullptr) e.mask += m * e.ldm;
      ks.dot(r, n0, n1, p.K, p.alpha, A + m * lda, lda, p.B, p.ldb, p.beta, p.C + m * p.ldc,
             p.ldc, e);
    }
    tile_done(p, m0, n0, m1 - m0, n1 - n0);
  };
  if (p.M <= 4 * kSmallM) {
    // Pieces of rows of B (columns of C), each streamed once per 8 rows of A.
    const int w = std::max(32, round_up(ceil_div(p.N, T * pieces_per_thread()), 16));
    dynamic_for(T, ceil_div(p.N, w), [&](int i) {
      rows(0, p.M, i * w, std::min(p.N, (i + 1) * w));
    });
  } else {
    // Few columns: B stays in cache; pieces of rows of A.
    const int h = std::max(8, round_up(ceil_div(p.M, T * pieces_per_thread()), 8));
    dynamic_for(T, ceil_div(p.M, h), [&](int i) {
      rows(i * h, std::min(p.M, (i + 1) * h), 0, p.N);
    });
  }
}

// One K block [pc, pc + kc) of the C block rows [m0, m1) x columns [n0, n1): Bp holds those
// columns of op(B), packed. For each micro-panel of MR rows of op(A) (kept in L1) the
// micro-kernel sweeps the B micro-panels (from L2). op(A) is read in place when A is not
// transposed (its rows are contiguous in K); else its micro-panels come from Ashared (op(A)
// packed for this K block, rows from 0) or are packed here on the fly into Abuf.
void packed_kstep(const KernelSet& ks, const Problem& p, int pc, int kc, int m0, int m1,
                  int n0, int n1, const float* Bp, const float* Ashared, float* Abuf) {
  const int MR = ks.mr, NR = ks.nr;
  const bool has_ep = p.ep.bias != nullptr || p.ep.mask != nullptr || p.ep.relu;
  const bool last = pc + kc >= p.K;
  const float beta = pc == 0 ? p.beta : 1.0f;
  // With a hook and all of K in this block (C neither read nor kept: beta == 0), each band of
  // C goes to a scratch band that the hook reads while it is in L1/L2; C is never written.
  const bool scratch = p.ep.hook != nullptr && pc == 0 && last && p.beta == 0.0f;
  float* band = scratch ? t_ws_band.get(static_cast<std::size_t>(MR) * (n1 - n0)) : nullptr;
  for (int m = m0; m < m1; m += MR) {
    const int mv = std::min(MR, m1 - m);
    float* Cm = scratch ? band - n0 : p.C + m * p.ldc;  // row m of C (or of the band)
    const std::int64_t ldc = scratch ? n1 - n0 : p.ldc;
    const float* A;
    std::int64_t rsa, csa;
    if (!p.ta) {
      A = p.A + m * p.lda + pc;  // rows in place
      rsa = p.lda;
      csa = 1;
    } else if (Ashared != nullptr) {
      A = Ashared + static_cast<std::int64_t>(m) * kc;  // panel m / MR
      rsa = 1;
      csa = MR;
    } else {
      ks.pack_a(true, p.A + pc * p.lda + m, p.lda, mv, kc, Abuf);
      A = Abuf;
      rsa = 1;
      csa = MR;
    }
    for (int jr = 0; jr < n1 - n0; jr += NR) {
      const int n = n0 + jr;
      const int nv = std::min(NR, n1 - n);
      TileEpilogue tep;
      const TileEpilogue* epp = nullptr;
      if (last && has_ep) {
        tep.bias = p.ep.bias != nullptr ? p.ep.bias + n : nullptr;
        tep.mask = p.ep.mask != nullptr ? p.ep.mask + m * p.ep.ldm + n : nullptr;
        tep.ldm = p.ep.ldm;
        tep.relu = p.ep.relu;
        epp = &tep;
      }
      ks.kernel(kc, A, rsa, csa, Bp + static_cast<std::int64_t>(jr) * kc, Cm + n, ldc, mv, nv,
                p.alpha, beta, epp);
    }
    // the band of mr rows across the block's columns is done: one region per band (each of
    // its rows a contiguous run, which the hook streams through)
    if (scratch) {
      p.ep.hook->fn(p.ep.hook, m, n0, mv, n1 - n0, band, ldc);
    } else if (last) {
      tile_done(p, m, n0, mv, n1 - n0);
    }
  }
}

// The packed algorithm on the C block rows [m0, m1) x columns [n0, n1), on this thread
// alone: blocks of nc columns of op(B), packed per K block of kc into nr-wide micro-panels
// that stay in the core's L2, then packed_kstep (op(A) in place or packed on the fly).
void packed_block(const KernelSet& ks, const Problem& p, const Plan& pl, int m0, int m1, int n0,
                  int n1) {
  float* Bbuf = t_ws_b.get(static_cast<std::size_t>(pl.nc) * pl.kc);
  float* Abuf = t_ws_a.get(static_cast<std::size_t>(ks.mr) * pl.kc);
  for (int jc = n0; jc < n1; jc += pl.nc) {
    const int nc = std::min(pl.nc, n1 - jc);
    for (int pc = 0; pc < p.K; pc += pl.kc) {
      const int kc = std::min(pl.kc, p.K - pc);
      const float* Bblk = p.tb ? p.B + jc * p.ldb + pc : p.B + pc * p.ldb + jc;
      ks.pack_b(p.tb, Bblk, p.ldb, kc, nc, Bbuf);
      packed_kstep(ks, p, pc, kc, m0, m1, jc, jc + nc, Bbuf, nullptr, Abuf);
    }
  }
}

// Largest op(A) block (floats) packed once and shared by the threads (transA).
constexpr double kMaxSharedA = 8.0 * 1024 * 1024;

// Pieces of C cut between columns, claimed by guided self-scheduling; each piece packs its
// own columns of B, so nothing is packed twice and no thread waits for another. When A is
// not transposed op(A) is read in place. When it is, gathering its micro-panels (strided
// reads, one row of A per k step) per piece would be repeated by every piece, so each K
// block of op(A) is first packed once by all threads together (shared; one more fork per
// K block). With too few columns the cuts go between rows instead. The arithmetic of each
// element is the same wherever the cuts fall.
void run_packed(const KernelSet& ks, const Problem& p, int T) {
  const Plan pl = plan_for(ks, p.K);
  if (T <= 1) {
    packed_block(ks, p, pl, 0, p.M, 0, p.N);
    return;
  }
  const int NR = ks.nr, MR = ks.mr;
  const int pieces = T * pieces_per_thread();
  const bool by_cols = p.N >= pieces * NR || p.N >= p.M;
  if (!by_cols) {
    guided_for(T, p.M, MR, 2 * MR, [&](int m0, int m1) {
      packed_block(ks, p, pl, m0, m1, 0, p.N);
    });
    return;
  }
  const int min_w = std::min(p.N, std::max(2 * NR, round_up(ceil_div(p.N, pieces), NR)));
  const double a_block = static_cast<double>(round_up(p.M, MR)) * pl.kc;
  if (!p.ta || a_block > kMaxSharedA) {
    guided_for(T, p.N, NR, min_w, [&](int n0, int n1) {
      packed_block(ks, p, pl, 0, p.M, n0, n1);
    });
    return;
  }
  // transA: op(A) packed once per K block, shared.
  float* Ashared = t_ws_a.get(static_cast<std::size_t>(a_block));
  const int panels = ceil_div(p.M, MR);
  const int ph = ceil_div(panels, pieces);  // A micro-panels per packing piece
  for (int pc = 0; pc < p.K; pc += pl.kc) {
    const int kc = std::min(pl.kc, p.K - pc);
    dynamic_for(T, ceil_div(panels, ph), [&](int i) {
      const int r0 = i * ph * MR, r1 = std::min(p.M, (i + 1) * ph * MR);
      ks.pack_a(true, p.A + pc * p.lda + r0, p.lda, r1 - r0, kc,
                Ashared + static_cast<std::int64_t>(r0) * kc);
    });
    guided_for(T, p.N, NR, min_w, [&](int n0, int n1) {
      float* Bbuf = t_ws_b.get(static_cast<std::size_t>(pl.nc) * pl.kc);
      for (int jc = n0; jc < n1; jc += pl.nc) {
        const int nc = std::min(pl.nc, n1 - jc);
        const float* Bblk = p.tb ? p.B + jc * p.ldb + pc : p.B + pc * p.ldb + jc;
        ks.pack_b(p.tb, Bblk, p.ldb, kc, nc, Bbuf);
        packed_kstep(ks, p, pc, kc, 0, p.M, jc, jc + nc, Bbuf, Ashared, nullptr);
      }
    });
  }
}

void run_problem(const KernelSet& ks, const Problem& p, int T) {
  if (p.M <= 0 || p.N <= 0) return;
  const double M = p.M, N = p.N, K = std::max(p.K, 1);
  const double stream = std::max(std::max(M * K, K * N), M * N);
  if (M * N * K < kMinParallelMacs && stream < kMinParallelStream) T = 1;
  switch (choose(p.ta, p.tb, p.M, p.N, p.K)) {
    case Algo::Scale:
      run_scale(p);
      break;
    case Algo::Direct:
      run_direct(ks, p, T);
      break;
    case Algo::Dot:
      run_dot(ks, p, T);
      break;
    case Algo::Packed:
      run_packed(ks, p, T);
      break;
  }
}

void check_args(const char* fn, bool ta, bool tb, int M, int N, int K, std::int64_t lda,
                std::int64_t ldb, std::int64_t ldc, const Epilogue& ep) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string(fn) + ": " + what);
  };
  if (M < 0 || N < 0 || K < 0) fail("negative dimension");
  if (M == 0 || N == 0) return;
  const std::int64_t need_a = ta ? M : K, need_b = tb ? K : N;
  if (K > 0 && lda < std::max<std::int64_t>(1, need_a)) fail("lda too small");
  if (K > 0 && ldb < std::max<std::int64_t>(1, need_b)) fail("ldb too small");
  if (ldc < N) fail("ldc too small");
  if (ep.mask != nullptr && ep.ldm < N) fail("ldm too small");
}

}  // namespace

KernelSet kernels_portable() {
  KernelSet s{};
  s.name = "portable";
  s.mr = kPortMR;
  s.nr = kPortNR;
  s.kernel = &port_kernel;
  s.pack_a = &port_pack_a;
  s.pack_b = &port_pack_b;
  s.direct = &port_direct;
  s.dot = &port_dot;
  return s;
}

void set_blocking(const Blocking& b) { g_blocking = b; }
Blocking blocking() { return g_blocking; }

const char* gemm_algorithm(bool transA, bool transB, int M, int N, int K) {
  switch (choose(transA, transB, M, N, K)) {
    case Algo::Scale:
      return "scale";
    case Algo::Direct:
      return "direct";
    case Algo::Dot:
      return "dot";
    case Algo::Packed:
      return "packed";
  }
  return "?";
}

}  // namespace gemm_detail

using namespace gemm_detail;

void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
           std::int64_t ldc, const Epilogue& ep) {
  check_args("sgemm", transA, transB, M, N, K, lda, ldb, ldc, ep);
  const Problem p{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep};
  run_problem(active_set(), p, num_threads());
}

void sgemm_batched(int batch, const BatchStrides& s, bool transA, bool transB, int M, int N,
                   int K, float alpha, const float* A, std::int64_t lda, const float* B,
                   std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                   const Epilogue& ep) {
  check_args("sgemm_batched", transA, transB, M, N, K, lda, ldb, ldc, ep);
  if (batch < 0) throw std::invalid_argument("sgemm_batched: negative batch");
  if (ep.hook != nullptr && batch > 1) throw std::invalid_argument("sgemm_batched: a tile hook needs batch <= 1");
  if (batch == 0 || M == 0 || N == 0) return;
  const KernelSet& ks = active_set();
  auto problem = [&](std::int64_t i) {
    Epilogue e = ep;
    if (e.bias != nullptr) e.bias += i * s.bias;
    if (e.mask != nullptr) e.mask += i * s.mask;
    return Problem{transA, transB, M, N, K, alpha, A + i * s.a, lda, B + i * s.b, ldb,
                   beta, C + i * s.c, ldc, e};
  };
  const int T = num_threads();
  // Whole rounds of T problems run one per thread (claimed dynamically); the rest thread
  // within the problem.
  const int across = T > 1 ? (batch / T) * T : 0;
  dynamic_for(T, across, [&](int i) { run_problem(ks, problem(i), 1); });
  for (int i = across; i < batch; ++i) run_problem(ks, problem(i), T);
}

const char* gemm_kernel_name() { return active_set().name; }

}  // namespace bsx::cpu
