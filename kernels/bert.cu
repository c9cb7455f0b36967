// The BERT encoder's kernels, fp32 over packed batches (kernels.h, section bert.cu):
//  - BertEmbedLayerNorm, BiasResidualLayerNorm: one block of 256 threads per row. The pre-norm
//    row is written to the output row first, each thread then rereading only the elements it
//    wrote; mean and biased variance are two block reductions in fp32 (mean first, then the
//    squared deviations from it: no cancellation as in E[x^2] - mean^2).
//  - BiasGelu: one block per row, elementwise.
//  - BertAttention: one CTA of 4 warps per (sequence, query tile, head). The tile's q rows
//    (scaled by 1 / sqrt(d)) sit in shared memory for the whole kernel; K and V come through
//    shared memory in chunks of 32 keys, with an online softmax over the chunks (running max;
//    running sum kept per lane and reduced once at the end). Each warp owns kRows query rows of
//    the tile (rows warp, warp + 4, ...). Scores: lane l takes key l of the chunk for all of the
//    warp's rows at once (one K load serves kRows rows). Output: lane l owns dims l + 32 i
//    (d / 32 of them), the chunk's probabilities passing through a per-warp shared buffer.
//    No tensor cores: every product is fp32, checked against the CPU at fp32 tolerances.
// Precise math only (erff, expf, 1 / sqrtf), as the CPU model (engine/bert/bert_model.cc).
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag {
namespace {

// ---- row kernels ----------------------------------------------------------------------------

constexpr int kRowThreads = 256;

// LayerNorm of row xr (H floats) in place: xr[j] for j = threadIdx.x + k kRowThreads holds the
// pre-norm value this same thread wrote, `sum` the thread's sum of them. The final expression
// is the CPU model's: (v - mean) * inv * g + b.
__device__ __forceinline__ void LayerNormRow(float* xr, float sum, int64_t H,
                                             const float* __restrict__ g,
                                             const float* __restrict__ b, float eps) {
  const float mean = BlockSum<kRowThreads>(sum) / static_cast<float>(H);
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < H; j += kRowThreads) {
    const float c = xr[j] - mean;
    ss += c * c;
  }
  const float inv = 1.0f / sqrtf(BlockSum<kRowThreads>(ss) / static_cast<float>(H) + eps);
  for (int64_t j = threadIdx.x; j < H; j += kRowThreads) xr[j] = (xr[j] - mean) * inv * g[j] + b[j];
}

__global__ void __launch_bounds__(kRowThreads)
    EmbedLayerNormKernel(const int32_t* __restrict__ ids, const int32_t* __restrict__ positions,
                         int64_t H, const float* __restrict__ word, const float* __restrict__ pos,
                         const float* __restrict__ type, const float* __restrict__ g,
                         const float* __restrict__ b, float eps, float* x) {
  const int64_t t = blockIdx.x;
  const float* wr = word + static_cast<int64_t>(ids[t]) * H;
  const float* pr = pos + static_cast<int64_t>(positions[t]) * H;
  float* xr = x + t * H;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < H; j += kRowThreads) {
    const float v = wr[j] + pr[j] + type[j];  // the CPU model's order
    xr[j] = v;
    sum += v;
  }
  LayerNormRow(xr, sum, H, g, b, eps);
}

__global__ void __launch_bounds__(kRowThreads)
    BiasResidualLayerNormKernel(float* x, const float* __restrict__ y,
                                const float* __restrict__ bias, const float* __restrict__ g,
                                const float* __restrict__ b, int64_t H, float eps) {
  float* xr = x + blockIdx.x * H;
  const float* yr = y + blockIdx.x * H;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < H; j += kRowThreads) {
    const float v = xr[j] + (yr[j] + bias[j]);  // the CPU adds the biased sublayer output
    xr[j] = v;
    sum += v;
  }
  LayerNormRow(xr, sum, H, g, b, eps);
}

__global__ void __launch_bounds__(kRowThreads)
    BiasGeluKernel(float* __restrict__ y, const float* __restrict__ bias, int64_t N, bool gelu) {
  float* yr = y + blockIdx.x * N;
  for (int64_t j = threadIdx.x; j < N; j += kRowThreads) {
    float v = yr[j] + bias[j];
    if (gelu) v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));  // HF "gelu" (erf form)
    yr[j] = v;
  }
}

// T rows of H: the shape checks shared by the row launchers (T is gridDim.x).
Status CheckRows(const char* what, int64_t T, int64_t H) {
  if (T < 0 || T > INT32_MAX || H <= 0) {
    return InvalidArgument(std::string(what) + ": bad shape T=" + std::to_string(T) +
                           " H=" + std::to_string(H));
  }
  return Status::Ok();
}

Status NullPointer(const char* what) {
  return InvalidArgument(std::string(what) + ": null pointer");
}

// ---- attention ------------------------------------------------------------------------------

constexpr int kAttnWarps = 4;
constexpr int kAttnThreads = 32 * kAttnWarps;
constexpr int kKeys = 32;  // keys per K/V chunk: one per lane for the scores

// Query rows per warp for head dim 32 kDims: fewer at d = 128 to keep the static shared memory
// (q tile + K and V chunks + probabilities) under 48 KiB.
template <int kDims>
constexpr int kRowsPerWarp = kDims == 4 ? 4 : 8;
template <int kDims>
constexpr int kTileRows = kAttnWarps * kRowsPerWarp<kDims>;

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Grid (n_seqs, query tiles, heads); CTAs whose tile starts past their sequence's end return.
// Shared-memory layouts, chosen for conflict-free accesses:
//  - q (kTile, d): read as float4 broadcasts (every lane the same address).
//  - k (kKeys, d + 4): lane l reads float4 at row l; a 128-bit access is served 8 lanes at a
//    time, and with rows 4 banks apart (d % 32 == 0) those 8 lanes cover all 32 banks once.
//  - v (kKeys, d): lanes read consecutive dims of one row.
//  - p (warps, kRows, kKeys): lane l writes key l's probability, then float4 broadcasts.
// Keys and rows past the sequence are zero-filled (never read from global memory); masked keys
// get score -inf, hence probability 0.
template <int kDims>
__global__ void __launch_bounds__(kAttnThreads)
    BertAttentionKernel(const float* __restrict__ qkv, const int32_t* __restrict__ starts,
                        int64_t H, float scale, float* __restrict__ ctx) {
  constexpr int kD = 32 * kDims;
  constexpr int kRows = kRowsPerWarp<kDims>;
  constexpr int kTile = kTileRows<kDims>;
  __shared__ __align__(16) float qs[kTile][kD];
  __shared__ __align__(16) float ks[kKeys][kD + 4];
  __shared__ __align__(16) float vs[kKeys][kD];
  __shared__ __align__(16) float ps[kAttnWarps][kRows][kKeys];
  static_assert(sizeof(qs) + sizeof(ks) + sizeof(vs) + sizeof(ps) <= 48 * 1024,
                "static shared memory is limited to 48 KiB");

  const int32_t first = starts[blockIdx.x];
  const int n = starts[blockIdx.x + 1] - first;
  const int64_t base = first;
  const int q0 = static_cast<int>(blockIdx.y) * kTile;
  if (q0 >= n) return;
  const int64_t stride = 3 * H;
  const float* head = qkv + base * stride + static_cast<int64_t>(blockIdx.z) * kD;  // row 0's q
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  for (int idx = tid; idx < kTile * kD; idx += kAttnThreads) {
    const int r = idx / kD, e = idx % kD;
    qs[r][e] = q0 + r < n ? head[(q0 + r) * stride + e] * scale : 0.0f;
  }

  float m[kRows], l[kRows], acc[kRows][kDims];  // l: this lane's share of the row's sum
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDims; ++i) acc[r][i] = 0.0f;
  }

  for (int c0 = 0; c0 < n; c0 += kKeys) {
    __syncthreads();  // the previous chunk is no longer read (first chunk: q is written)
    for (int idx = tid; idx < kKeys * kD; idx += kAttnThreads) {
      const int j = idx / kD, e = idx % kD;
      float k = 0.0f, v = 0.0f;
      if (c0 + j < n) {
        const float* row = head + (c0 + j) * stride + e;
        k = row[H];
        v = row[2 * H];
      }
      ks[j][e] = k;
      vs[j][e] = v;
    }
    __syncthreads();

    float s[kRows] = {};
#pragma unroll 4
    for (int e = 0; e < kD; e += 4) {
      const float4 k4 = *reinterpret_cast<const float4*>(&ks[lane][e]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float4 q4 = *reinterpret_cast<const float4*>(&qs[r * kAttnWarps + warp][e]);
        s[r] += q4.x * k4.x + q4.y * k4.y + q4.z * k4.z + q4.w * k4.w;
      }
    }
    const bool key_valid = c0 + lane < n;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float sr = key_valid ? s[r] : -INFINITY;
      const float m_new = fmaxf(m[r], WarpMax(sr));  // finite: the chunk has a valid key
      const float corr = expf(m[r] - m_new);         // first chunk: exp(-inf) = 0
      const float p = expf(sr - m_new);
      l[r] = l[r] * corr + p;
#pragma unroll
      for (int i = 0; i < kDims; ++i) acc[r][i] *= corr;
      ps[warp][r][lane] = p;
      m[r] = m_new;
    }
    __syncwarp();

#pragma unroll 2
    for (int j = 0; j < kKeys; j += 4) {
      float v[4][kDims];
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
#pragma unroll
        for (int i = 0; i < kDims; ++i) v[jj][i] = vs[j + jj][lane + 32 * i];
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float4 p4 = *reinterpret_cast<const float4*>(&ps[warp][r][j]);
#pragma unroll
        for (int i = 0; i < kDims; ++i) {
          acc[r][i] += p4.x * v[0][i] + p4.y * v[1][i] + p4.z * v[2][i] + p4.w * v[3][i];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float sum = WarpSum(l[r]);
    const int q = q0 + r * kAttnWarps + warp;
    if (q >= n) continue;
    float* out = ctx + (base + q) * H + static_cast<int64_t>(blockIdx.z) * kD + lane;
#pragma unroll
    for (int i = 0; i < kDims; ++i) out[32 * i] = acc[r][i] / sum;
  }
}

template <int kDims>
Status LaunchAttention(const float* qkv, const int32_t* starts, int64_t n_seqs, int64_t max_len,
                       int64_t heads, int64_t H, float* ctx, cudaStream_t stream) {
  const int64_t tiles = (max_len + kTileRows<kDims> - 1) / kTileRows<kDims>;
  const dim3 grid(static_cast<unsigned>(n_seqs), static_cast<unsigned>(tiles),
                  static_cast<unsigned>(heads));
  const float scale = 1.0f / std::sqrt(static_cast<float>(32 * kDims));  // the CPU model's
  BertAttentionKernel<kDims><<<grid, kAttnThreads, 0, stream>>>(qkv, starts, H, scale, ctx);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

Status BertEmbedLayerNorm(const int32_t* ids, const int32_t* positions, int64_t T, int64_t H,
                          const float* word, const float* pos, const float* type,
                          const float* g, const float* b, float eps, float* x,
                          cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckRows("BertEmbedLayerNorm", T, H));
  if (T == 0) return Status::Ok();
  if (!ids || !positions || !word || !pos || !type || !g || !b || !x) {
    return NullPointer("BertEmbedLayerNorm");
  }
  EmbedLayerNormKernel<<<static_cast<unsigned>(T), kRowThreads, 0, stream>>>(
      ids, positions, H, word, pos, type, g, b, eps, x);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

Status BiasGelu(float* y, const float* bias, int64_t T, int64_t N, bool gelu,
                cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckRows("BiasGelu", T, N));
  if (T == 0) return Status::Ok();
  if (!y || !bias) return NullPointer("BiasGelu");
  BiasGeluKernel<<<static_cast<unsigned>(T), kRowThreads, 0, stream>>>(y, bias, N, gelu);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

Status BiasResidualLayerNorm(float* x, const float* y, const float* bias, const float* g,
                             const float* b, int64_t T, int64_t H, float eps,
                             cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckRows("BiasResidualLayerNorm", T, H));
  if (T == 0) return Status::Ok();
  if (!x || !y || !bias || !g || !b) return NullPointer("BiasResidualLayerNorm");
  BiasResidualLayerNormKernel<<<static_cast<unsigned>(T), kRowThreads, 0, stream>>>(
      x, y, bias, g, b, H, eps);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

Status BertAttention(const float* qkv, const int32_t* starts, int64_t n_seqs, int64_t max_len,
                     int64_t heads, int64_t H, float* ctx, cudaStream_t stream) {
  // heads and query tiles are grid dimensions y and z (at most 65535 each).
  if (n_seqs < 0 || n_seqs > INT32_MAX || max_len < 0 || max_len > 65535 || heads <= 0 ||
      heads > 65535 || H <= 0 || H % heads != 0 || (H / heads) % 32 != 0 || H / heads > 128) {
    return InvalidArgument("BertAttention: bad shape n_seqs=" + std::to_string(n_seqs) +
                           " max_len=" + std::to_string(max_len) + " heads=" +
                           std::to_string(heads) + " H=" + std::to_string(H) +
                           " (head dim must be a multiple of 32, at most 128)");
  }
  if (n_seqs == 0 || max_len == 0) return Status::Ok();
  if (!qkv || !starts || !ctx) return NullPointer("BertAttention");
  switch (H / heads / 32) {
    case 1: return LaunchAttention<1>(qkv, starts, n_seqs, max_len, heads, H, ctx, stream);
    case 2: return LaunchAttention<2>(qkv, starts, n_seqs, max_len, heads, H, ctx, stream);
    case 3: return LaunchAttention<3>(qkv, starts, n_seqs, max_len, heads, H, ctx, stream);
    default: return LaunchAttention<4>(qkv, starts, n_seqs, max_len, heads, H, ctx, stream);
  }
}

}  // namespace rag
