// FP8 GEMMs of decode-sized steps (2-64 rows): y = diag(sx) (qx qw^T) diag(sw), the product of
// QuantizeRowsFp8's activation codes (m, k) and an FP8 projection (n, k), both with row scales.
// Why: at these sizes the product is cheap and the step reads the weights; cuBLASLt's one FP8
// candidate with per-row scales reached a third to two thirds of the copy bandwidth at 64 rows
// (bench/fp8_gemm_bench, BENCHMARKS "Decode attention on tensor cores").
//
// mma.sync m16n8k32 (e4m3 in, fp32 sums): A = 16 weight rows (output features), B = 8 activation
// rows. A CTA of 8 warps takes 128 features (16 a warp) and every activation row, over a share of
// k (split-K where n alone gives too few CTAs). k goes in chunks of 256: the activation chunk
// (m x 256 codes) is copied into shared memory (cp.async, double buffered), while each thread
// loads its share of the warp's weight rows straight into registers (the next chunk's in flight).
// k is visited in an order that gives each thread contiguous bytes: in 128-wide block b and
// k-step s, fragment columns 4t..4t+3 and 16+4t..16+4t+3 (g = lane / 4, t = lane % 4) are bytes
// 32t + 8s + 0..3 and 32t + 8s + 4..7 of the block, for weight rows and activation rows alike (a
// dot product ignores order): each thread reads 32 contiguous bytes of a row a block.
// Split-K partials go to a workspace; the last CTA of a column of splits (a counter, reset by that
// CTA) sums them in split order, so results do not depend on which CTA finishes last.
#include <cuda_fp8.h>

#include <algorithm>
#include <string>

#include "kernels/attention_util.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kFeatures = 16 * kWarps;  // output features a CTA
constexpr int kChunk = 256;             // k a pipeline stage
constexpr int kMaxRows = 64;
// Rows padded by 16 bytes: the 8 lanes of a quarter-warp (rows g, g + 1; bytes 32t + 16 piece)
// read 8 distinct 16-byte bank groups.
constexpr int kRowBytes = kChunk + 16;
constexpr int kMaxSplits = 16;

struct SmallGemmArgs {
  const uint8_t* xq;  // (m, k) e4m3 codes
  const float* xs;    // (m)
  const uint8_t* w;   // (n, k) e4m3 codes
  const float* ws;    // (n)
  int m, n, k, splits;
  float* y32;          // fp32 out, or null
  __nv_bfloat16* y16;  // bf16 out, or null
  bool accumulate;     // fp32: y += instead of y =
  float* partials;     // (splits, m, n) when splits > 1
  int32_t* counters;   // (n / kFeatures rounded up), zero between calls
};

// d += A B: a = A's rows g and g + 8 (a[0]: row g cols 4t.., a[1]: row g+8, a[2]: row g cols
// 16+4t.., a[3]: row g+8), b0 = B's col g rows 4t.., b1 = rows 16+4t..; d = D[g][2t..2t+1],
// D[g+8][2t..2t+1].
__device__ __forceinline__ void MmaE4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// A thread's weight bytes of one chunk: rows g and g + 8 of its warp, in each of the chunk's two
// 128-wide blocks bytes 32t..32t+31 (two 16-byte pieces each).
struct WeightChunk {
  uint4 r[2][2][2];  // [block][row g, row g + 8][piece]
};

__device__ __forceinline__ WeightChunk LoadWeights(const SmallGemmArgs& a, int row0, int chunk,
                                                   int t) {
  WeightChunk c;
#pragma unroll
  for (int b = 0; b < 2; ++b) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + 8 * h;
      const uint8_t* p = a.w + static_cast<int64_t>(row) * a.k + chunk * kChunk + 128 * b + 32 * t;
#pragma unroll
      for (int piece = 0; piece < 2; ++piece) {
        c.r[b][h][piece] = row < a.n ? __ldcs(reinterpret_cast<const uint4*>(p) + piece)
                                     : make_uint4(0u, 0u, 0u, 0u);
      }
    }
  }
  return c;
}

// Output (activation row i, feature f) from its sum of code products: both row scales applied,
// then bf16, or fp32 written or added.
__device__ __forceinline__ void StoreOutput(const SmallGemmArgs& a, int i, int f, float sum) {
  const float v = sum * a.xs[i] * a.ws[f];
  const int64_t at = static_cast<int64_t>(i) * a.n + f;
  if (a.y16 != nullptr) {
    StoreAs(a.y16 + at, v);
  } else {
    a.y32[at] = a.accumulate ? a.y32[at] + v : v;
  }
}

struct SmallGemmSmem {
  uint8_t x[2][kMaxRows][kRowBytes];
};

// Copies the activation chunk into stage st (rows < m).
__device__ __forceinline__ void IssueActivations(const SmallGemmArgs& a, SmallGemmSmem& sh, int st,
                                                 int chunk) {
  constexpr int kPieces = kChunk / 16;
  for (int i = threadIdx.x; i < a.m * kPieces; i += kThreads) {
    const int row = i / kPieces, piece = i % kPieces;
    CopyAsync16(&sh.x[st][row][piece * 16],
                a.xq + static_cast<int64_t>(row) * a.k + chunk * kChunk + piece * 16, true);
  }
}

__global__ void __launch_bounds__(kThreads, 2) Fp8SmallGemmKernel(const SmallGemmArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
  __trap();  // e4m3 mma needs sm_89: the launcher refuses older devices
#else
  AllowDependentLaunch();
  __shared__ __align__(16) SmallGemmSmem sh;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int row0 = blockIdx.x * kFeatures + 16 * warp + g;  // this thread's weight rows: +0, +8
  const int split = blockIdx.y;
  const int chunks = a.k / kChunk, per_split = (chunks + a.splits - 1) / a.splits;
  const int c0 = split * per_split, c1 = min(chunks, c0 + per_split);
  const int n_tiles = (a.m + 7) / 8;

  float acc[kMaxRows / 8][4] = {};
  // The weights are the previous kernels' neither: their loads may go out before the wait.
  WeightChunk cur{};
  if (c0 < c1) cur = LoadWeights(a, row0, c0, t);
  AwaitPriorGrid();
  if (c0 < c1) IssueActivations(a, sh, 0, c0);
  CopyAsyncCommit();
  for (int c = c0; c < c1; ++c) {
    const int st = (c - c0) % 2;
    WeightChunk next{};
    if (c + 1 < c1) {
      next = LoadWeights(a, row0, c + 1, t);
      IssueActivations(a, sh, st ^ 1, c + 1);
    }
    CopyAsyncCommit();
    CopyAsyncWait<1>();  // this chunk's activations (this thread's copies) have landed
    __syncthreads();     // ... and everyone's
#pragma unroll
    for (int b = 0; b < 2; ++b) {
#pragma unroll
      for (int piece = 0; piece < 2; ++piece) {
        // Bytes 32t + 16 piece .. + 15 of the block: k-steps s = 2 piece (words 0, 1) and
        // 2 piece + 1 (words 2, 3), for the weights and the activations alike.
        const uint4& wg = cur.r[b][0][piece];
        const uint4& wg8 = cur.r[b][1][piece];
        const uint32_t fa0[4] = {wg.x, wg8.x, wg.y, wg8.y};
        const uint32_t fa1[4] = {wg.z, wg8.z, wg.w, wg8.w};
#pragma unroll
        for (int j = 0; j < kMaxRows / 8; ++j) {
          if (j < n_tiles) {
            const uint4 bx = *reinterpret_cast<const uint4*>(
                &sh.x[st][8 * j + g][128 * b + 32 * t + 16 * piece]);
            MmaE4m3(acc[j], fa0, bx.x, bx.y);
            MmaE4m3(acc[j], fa1, bx.z, bx.w);
          }
        }
      }
    }
    __syncthreads();  // stage st is free for chunk c + 2
    cur = next;
  }
  CopyAsyncWait<0>();

  // acc[j]: features row0 (d[0..1]) and row0 + 8 (d[2..3]), activation rows 8j + 2t, 8j + 2t + 1.
  if (a.splits == 1) {
#pragma unroll
    for (int j = 0; j < kMaxRows / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = 8 * j + 2 * t + (e & 1), f = row0 + 8 * (e >> 1);
        if (j < n_tiles && i < a.m && f < a.n) {
          StoreOutput(a, i, f, acc[j][e]);
        }
      }
    }
    return;
  }
  // Split-K: this split's products to the workspace, then the last split of the column sums them.
  float* mine = a.partials + static_cast<int64_t>(split) * a.m * a.n;
#pragma unroll
  for (int j = 0; j < kMaxRows / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = 8 * j + 2 * t + (e & 1), f = row0 + 8 * (e >> 1);
      if (j < n_tiles && i < a.m && f < a.n) mine[static_cast<int64_t>(i) * a.n + f] = acc[j][e];
    }
  }
  if (!LastCtaToArrive(a.counters + blockIdx.x, a.splits)) return;
  const int f0 = blockIdx.x * kFeatures;
  for (int e = threadIdx.x; e < a.m * kFeatures; e += kThreads) {
    const int i = e / kFeatures, f = f0 + e % kFeatures;
    if (f >= a.n) continue;
    const int64_t at = static_cast<int64_t>(i) * a.n + f;
    float sum = 0.0f;
    for (int s = 0; s < a.splits; ++s)
      sum += __ldcg(a.partials + static_cast<int64_t>(s) * a.m * a.n + at);
    StoreOutput(a, i, f, sum);
  }
#endif
}

Status Launch(const __nv_fp8_e4m3* xq, const float* xs, int64_t m, const __nv_fp8_e4m3* w,
              const float* ws, int64_t n, int64_t k, float* y32, __nv_bfloat16* y16,
              bool accumulate, float* workspace, int64_t workspace_floats, int32_t* counters,
              cudaStream_t stream) {
  if (m <= 0 || m > kMaxRows || n <= 0 || n > (int64_t{1} << 24) || k <= 0 || k % kChunk != 0 ||
      k > (int64_t{1} << 24)) {
    return InvalidArgument("Fp8SmallGemm: shape " + std::to_string(m) + "x" + std::to_string(k) +
                           " times " + std::to_string(n) + "x" + std::to_string(k) + " (rows 1.." +
                           std::to_string(kMaxRows) + ", k a multiple of " +
                           std::to_string(kChunk) + ")");
  }
  if (xq == nullptr || xs == nullptr || w == nullptr || ws == nullptr || counters == nullptr) {
    return InvalidArgument("Fp8SmallGemm: null pointer");
  }
  const int64_t columns = (n + kFeatures - 1) / kFeatures;
  // Split k until about two CTAs an SM, within the chunks and the workspace.
  const int64_t want = (2 * DeviceSmCount() + columns - 1) / columns;
  const int64_t fit = workspace != nullptr ? workspace_floats / (m * n) : 1;
  const int64_t splits =
      std::max<int64_t>(1, std::min({want, k / kChunk, fit, int64_t{kMaxSplits}}));
  SmallGemmArgs a{};
  a.xq = reinterpret_cast<const uint8_t*>(xq);
  a.xs = xs;
  a.w = reinterpret_cast<const uint8_t*>(w);
  a.ws = ws;
  a.m = static_cast<int>(m);
  a.n = static_cast<int>(n);
  a.k = static_cast<int>(k);
  a.splits = static_cast<int>(splits);
  a.y32 = y32;
  a.y16 = y16;
  a.accumulate = accumulate;
  a.partials = workspace;
  a.counters = counters;
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
      Fp8SmallGemmKernel, dim3(static_cast<unsigned>(columns), static_cast<unsigned>(splits)),
      dim3(kThreads), 0, stream, a));
  return Status::Ok();
}

}  // namespace

int64_t Fp8SmallGemmMaxRows() { return kMaxRows; }
int64_t Fp8SmallGemmCounters(int64_t n) { return (n + kFeatures - 1) / kFeatures; }

Status Fp8SmallGemm(const __nv_fp8_e4m3* xq, const float* xs, int64_t m, const __nv_fp8_e4m3* w,
                    const float* ws, int64_t n, int64_t k, float* y, bool accumulate,
                    float* workspace, int64_t workspace_floats, int32_t* counters,
                    cudaStream_t stream) {
  if (y == nullptr) return InvalidArgument("Fp8SmallGemm: null output");
  return Launch(xq, xs, m, w, ws, n, k, y, nullptr, accumulate, workspace, workspace_floats,
                counters, stream);
}

Status Fp8SmallGemm(const __nv_fp8_e4m3* xq, const float* xs, int64_t m, const __nv_fp8_e4m3* w,
                    const float* ws, int64_t n, int64_t k, __nv_bfloat16* y, float* workspace,
                    int64_t workspace_floats, int32_t* counters, cudaStream_t stream) {
  if (y == nullptr) return InvalidArgument("Fp8SmallGemm: null output");
  return Launch(xq, xs, m, w, ws, n, k, nullptr, y, false, workspace, workspace_floats, counters,
                stream);
}

}  // namespace rag
