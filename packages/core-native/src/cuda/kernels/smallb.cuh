// Small-batch kernels (b = 1..8 rows per replica): bandwidth-bound, so each weight element is
// read once per pass for all of its replica's rows, and many replicas go in one launch.
//   smallb_forward:  Y[r] (b,out) = X[r] (b,in) W[r]^T + bias[r], optional ReLU
//     one warp per output row o: float4 reads of W[r,o,:] along k, the b input rows from
//     L1/L2 (they are tiny and shared by the block's 8 warps), b dot products reduced by
//     xor shuffles in a fixed order. grid (ceil(out/8), replicas), block 256.
//   smallb_backward: for one layer, from dY = delta[l+1] (b,out) and X = act[l] (b,in):
//     dX[r] (b,in) = (dY W[r]) masked by X > 0      (when dX != nullptr, i.e. l > 0)
//     gW = dY^T X (rank b), gb = column sums of dY, then per MODE
//       kGrad: gW, gb written out;  kSgd: W -= lr g;  kRule: the optimiser's rule on W and
//       its state (update.cuh)
//     so W (and the optimiser's state) are read and written exactly once and the gradient
//     never touches memory. Block (32, 8): lane x owns 4 consecutive columns k (1 without float4),
//     y = 0..7 splits the output rows o = y, y+8, ...; 2 or 4 of its rows are loaded before
//     any is stored (several 16-byte loads in flight per thread); the 8 partial dX are
//     summed in shared memory in y order. grid (ceil(in / (32*4)), replicas).
// With VEC, in % 4 == 0 and every base is 16-byte aligned (host checks).
// Reference: CpuEnsemble::forward_layers / backward / apply_update (cpu/cpu_ensemble.cpp);
// the element updates are update.cuh's, shared with the flat update kernels.
#pragma once
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/update.cuh"

namespace bsx::cuda::kernels {

constexpr int kSmallBatchMax = 8;
constexpr int kSmallFwdWarps = 8;

template <int MAXB, bool VEC>
__global__ void __launch_bounds__(kSmallFwdWarps * kWarp)
    smallb_forward(int b, int in, int out, const float* __restrict__ X, long long sx,
                   const float* __restrict__ W, const float* __restrict__ bias,
                   float* __restrict__ Y, int relu, int r0) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int o = blockIdx.x * kSmallFwdWarps + warp;
  if (o >= out) return;  // no barriers in this kernel: a whole warp may leave
  const long long r = static_cast<long long>(r0) + blockIdx.y;
  const float* w = W + (r * out + o) * in;
  const float* x = X + r * sx;
  float acc[MAXB];
#pragma unroll
  for (int i = 0; i < MAXB; ++i) acc[i] = 0.0f;
  if (VEC) {
    const int n4 = in / 4;
#pragma unroll 4
    for (int k4 = lane; k4 < n4; k4 += kWarp) {
      const float4 wv = ldg4(w + 4 * k4);
#pragma unroll
      for (int i = 0; i < MAXB; ++i) {
        if (i < b) {
          const float4 xv = ldg4(x + static_cast<long long>(i) * in + 4 * k4);
          acc[i] = fmaf(wv.x, xv.x, acc[i]);
          acc[i] = fmaf(wv.y, xv.y, acc[i]);
          acc[i] = fmaf(wv.z, xv.z, acc[i]);
          acc[i] = fmaf(wv.w, xv.w, acc[i]);
        }
      }
    }
  } else {
#pragma unroll 4
    for (int k = lane; k < in; k += kWarp) {
      const float wv = __ldg(w + k);
#pragma unroll
      for (int i = 0; i < MAXB; ++i)
        if (i < b) acc[i] = fmaf(wv, __ldg(x + static_cast<long long>(i) * in + k), acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < MAXB; ++i) acc[i] = warp_sum(acc[i]);
  if (lane == 0) {
    const float bo = bias[r * out + o];
#pragma unroll
    for (int i = 0; i < MAXB; ++i) {
      if (i < b) {
        float v = acc[i] + bo;
        if (relu && !(v > 0.0f)) v = 0.0f;
        Y[(r * b + i) * out + o] = v;
      }
    }
  }
}

struct SmallBackwardArgs {
  int b = 0, in = 0, out = 0;
  const float* dY = nullptr;  // [R, b, out]
  const float* X = nullptr;   // [R, b, in] (act[l]; the ReLU mask of dX too)
  float* W = nullptr;         // [R, out, in]
  float* bias = nullptr;      // [R, out]
  float* dX = nullptr;        // [R, b, in] or nullptr (first layer)
  float* gW = nullptr;        // kGrad: [R, out, in]
  float* gb = nullptr;        // kGrad: [R, out]
  float* sW[optim::kMaxState] = {};  // kRule: the optimiser's state of W and of the bias
  float* sb[optim::kMaxState] = {};  //   (none: nullptr)
  const float* lr = nullptr;       // kSgd: [R]
  const float* scalars = nullptr;  // kRule: [R, kMaxScalars]
  int r0 = 0;
};

constexpr int kSmallBwdRows = 8;  // blockDim.y

template <int MAXB, bool VEC, int MODE, typename Rule = optim::Sgd>
__global__ void __launch_bounds__(kWarp * kSmallBwdRows) smallb_backward(SmallBackwardArgs a) {
  constexpr int CW = VEC ? 4 : 1;           // columns per lane
  constexpr int CPB = kWarp * CW;           // columns per block
  __shared__ float red[kSmallBwdRows][MAXB][CPB];

  const int lane = threadIdx.x, ty = threadIdx.y;
  const long long r = static_cast<long long>(a.r0) + blockIdx.y;
  const int in = a.in, out = a.out, b = a.b;
  const int c0 = blockIdx.x * CPB + lane * CW;
  const bool valid = c0 < in;  // with VEC, in % 4 == 0: all 4 columns or none
  const float* X = a.X + r * b * in;
  const float* dY = a.dY + r * b * out;
  float* W = a.W + r * out * in;

  float x[MAXB][CW];
  float dx[MAXB][CW];
#pragma unroll
  for (int i = 0; i < MAXB; ++i) {
#pragma unroll
    for (int e = 0; e < CW; ++e) {
      x[i][e] = 0.0f;
      dx[i][e] = 0.0f;
    }
    if (i < b && valid) ldg_cols<CW>(X + static_cast<long long>(i) * in + c0, x[i]);
  }

  float lr = 0.0f;
  float sc[optim::kMaxScalars] = {};
  if (MODE == kSgd) lr = a.lr[r];
  if (MODE == kRule) load_scalars(a.scalars, r, sc);
  float* stW[optim::kMaxState];
  float* stb[optim::kMaxState];
#pragma unroll
  for (int k = 0; k < optim::kMaxState; ++k) {
    stW[k] = a.sW[k] != nullptr ? a.sW[k] + r * out * in : nullptr;
    stb[k] = a.sb[k] != nullptr ? a.sb[k] + r * out : nullptr;
  }
  const bool want_dx = a.dX != nullptr;

  // U output rows per iteration (o, o+8, ...): their loads are all issued before any store,
  // so that several 16-byte loads per thread are in flight (the kernel is bandwidth-bound).
  // Rows are still visited in the order ty, ty+8, ty+16, ... (the dX sums do not change).
  constexpr int U = MAXB <= 2 ? 4 : 2;
  for (int o0 = ty; o0 < out; o0 += kSmallBwdRows * U) {
    float dy[U][MAXB];
    float w[U][CW];
    bool row[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int o = o0 + u * kSmallBwdRows;
      row[u] = o < out;
#pragma unroll
      for (int i = 0; i < MAXB; ++i)
        dy[u][i] = (row[u] && i < b) ? __ldg(dY + static_cast<long long>(i) * out + o) : 0.0f;
      if (valid && row[u]) {
        const long long off = static_cast<long long>(o) * in + c0;
        ld_cols<CW>(W + off, w[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int o = o0 + u * kSmallBwdRows;
      if (valid && row[u]) {
        const long long off = static_cast<long long>(o) * in + c0;
        float g[CW];
#pragma unroll
        for (int e = 0; e < CW; ++e) {
          // the rank-b gradient, rows summed in order (like the K loop of the CPU's GEMM)
          float sum = 0.0f;
#pragma unroll
          for (int i = 0; i < MAXB; ++i)
            if (i < b) sum = fmaf(dy[u][i], x[i][e], sum);
          g[e] = sum;
          if (want_dx) {
#pragma unroll
            for (int i = 0; i < MAXB; ++i) dx[i][e] = fmaf(dy[u][i], w[u][e], dx[i][e]);
          }
        }
        if (MODE == kGrad) {
          st_cols<CW>(a.gW + r * out * in + off, g);
        } else if (MODE == kSgd) {
#pragma unroll
          for (int e = 0; e < CW; ++e) w[u][e] = sgd_elem(w[u][e], g[e], lr);
          st_cols<CW>(W + off, w[u]);
        } else {
#pragma unroll
          for (int e = 0; e < CW; ++e) rule_elem<Rule>(w[u][e], g[e], stW, off + e, sc);
          st_cols<CW>(W + off, w[u]);
        }
      }
      // The bias of row o: one thread in the grid (first column block, lane 0).
      if (row[u] && blockIdx.x == 0 && lane == 0) {
        float gbo = 0.0f;  // column sum of dY in row order (cpu column_sums)
#pragma unroll
        for (int i = 0; i < MAXB; ++i)
          if (i < b) gbo += dy[u][i];
        const long long bo = r * out + o;
        if (MODE == kGrad) {
          a.gb[bo] = gbo;
        } else if (MODE == kSgd) {
          a.bias[bo] = sgd_elem(a.bias[bo], gbo, lr);
        } else {
          float pb = a.bias[bo];
          rule_elem<Rule>(pb, gbo, stb, o, sc);
          a.bias[bo] = pb;
        }
      }
    }
  }

  if (!want_dx) return;  // uniform over the block: no barrier is skipped by some threads only
#pragma unroll
  for (int i = 0; i < MAXB; ++i)
#pragma unroll
    for (int e = 0; e < CW; ++e) red[ty][i][lane * CW + e] = dx[i][e];
  __syncthreads();
  const int tid = ty * kWarp + lane;
  float* dX = a.dX + r * b * in;
  for (int q = tid; q < b * CPB; q += kWarp * kSmallBwdRows) {
    const int i = q / CPB, cl = q % CPB;
    const int col = blockIdx.x * CPB + cl;
    if (col >= in) continue;
    float s = 0.0f;
#pragma unroll
    for (int t = 0; t < kSmallBwdRows; ++t) s += red[t][i][cl];
    const long long at = static_cast<long long>(i) * in + col;
    dX[at] = X[at] > 0.0f ? s : 0.0f;
  }
}

}  // namespace bsx::cuda::kernels
