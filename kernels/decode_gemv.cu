// The batch-1 decode projections, with the layer's RMSNorms and SwiGLU folded in.
//
// Unlike gemv.cu (which stages x in shared memory, once per block), these kernels read x
// straight from global memory through L1 (every warp of an SM reads the same few KB, so after
// the first warp they are L1 hits). With no staging prologue a block can issue its first batch
// of weight loads before griddepcontrol.wait: the weights never change during a step, so under
// programmatic dependent launch they stream in while the previous kernel (the attention, the
// previous projection) is still finishing. Three forms:
//  - DecodeGemvAccumulate: y += W x, x bf16 (the o and down projections adding into the fp32
//    residual stream); K is split over blocks (fp32 atomics) so the 4096-row projections fill
//    the GPU.
//  - RmsNormGemv: y = W (rmsnorm(x) * g) for the fp32 residual x (qkv). A warp walks the whole
//    of x for its rows anyway, so it sums x^2 on the way and scales its dot products by
//    rsqrt(mean(x^2) + eps) at the end: no normed copy of x is written, read or launched for.
//  - RmsNormGemvRopeKv: RmsNormGemv of the fused q|k|v weight with RopeKvAppend as its epilogue
//    (a warp takes two RoPE pairs of one head), so the rotated k and the v of the token go
//    straight into the paged cache.
//  - RmsNormGemvSwiGlu: act = silu(W_gate xn) * (W_up xn) over the fused gate|up weight (all gate
//    rows, then all up rows): a warp takes gate rows p, p + 1 and up rows p, p + 1, so the SwiGLU
//    is its epilogue and the gate|up activations never reach memory.
// Weights are bf16, or FP8 e4m3 with one fp32 scale per output row (w_row = scale_row * fp8 values,
// as `rag quantize` writes them): the same kernels, 16 instead of 8 weights a 16-byte load and
// the row's scale applied to its dot product at the end (the fp8 values convert exactly to fp16,
// then fp32; the arithmetic stays fp32).
// Layout of the work: blocks of kWarps warps, kRows weight rows a warp, each lane loading 16
// bytes (8 bf16 or 16 fp8) of every row per step; a batch is kUnroll steps (kRows * kUnroll independent
// 16-byte loads a lane) and two batches are in flight at any time. The arithmetic is fp32;
// the norm is applied as x * g inside the dot products and rsqrt(mean + eps) after them (no bf16 rounding of the
// normed x, unlike AddRmsNorm + Gemv: the results differ from those by bf16 rounding noise).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 4;  // rows a warp (SwiGLU form: 2 gate and the 2 matching up rows)
constexpr int kUnroll = 2;  // steps a batch of loads; two batches are in flight (see the loop)
using Fp8 = __nv_fp8_e4m3;
template <typename W>
constexpr bool kIsFp8 = std::is_same_v<W, Fp8>;
template <typename W>
constexpr int kVecOf = 16 / static_cast<int>(sizeof(W));  // weights of one 16-byte load
template <typename W>
constexpr int kStepOf = 32 * kVecOf<W>;  // columns one warp step covers
template <typename W>
constexpr int kBatchOf = kStepOf<W> * kUnroll;

// DecodeGemvAccumulate splits K until about this many blocks an SM are launched
// (SetDecodeGemvBlocksPerSm).
constexpr int kDefaultBlocksPerSm = 8;
std::atomic<int> g_blocks_per_sm{kDefaultBlocksPerSm};

enum class Form { kAccumulate, kNorm, kNormSwiGlu, kNormRopeKv };

struct DecodeGemvArgs {
  const __nv_bfloat16* xb;  // kAccumulate: x (k) bf16
  const float* xf;          // norm forms: the residual x (k) fp32
  const __nv_bfloat16* g;   // norm forms: the RMSNorm weight (k)
  float eps;
  const void* w;            // (rows, k) row-major, bf16 or fp8 (the kernel's W)
  const float* w_scale;     // fp8: (rows) the scale of each row
  int n;                    // output rows (kAccumulate, kNorm); inter (kNormSwiGlu)
  int k;                    // row length
  int k_step;               // columns per block along y (kAccumulate splits K); k otherwise
  float* y;                 // kAccumulate (added to), kNorm (stored)
  __nv_bfloat16* act;       // kNormSwiGlu (inter)
  // kNormRopeKv: the q|k|v projection of one token, rotated and appended (RopeKvAppend's
  // arithmetic); y is the fused row, n = (n_q + 2 n_kv) * head_dim.
  int n_q, n_kv, head_dim, block_size;
  const int32_t* position;
  const float* inv_freq;
  const int64_t* slot;
  __nv_bfloat16* k_cache;
  __nv_bfloat16* v_cache;
};

template <typename W>
__device__ __forceinline__ uint4 LoadWeights16(const W* p) {
  return __ldcs(reinterpret_cast<const uint4*>(p));  // read once a step: evict first
}

// x . w for the 16 bytes of weights w (8 bf16 or 16 fp8, lowest address first).
__device__ __forceinline__ float DotWeights(const float (&x)[8], const uint4 w) {
  float wf[8];
  UnpackBf16x8(w, wf);
  float s = x[0] * wf[0];
#pragma unroll
  for (int i = 1; i < 8; ++i) s = fmaf(x[i], wf[i], s);
  return s;
}
__device__ __forceinline__ float DotWeights(const float (&x)[16], const uint4 w) {
  const uint32_t v[4] = {w.x, w.y, w.z, w.w};
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // two fp8 at a time
      const float2 f = Fp8x2ToFloat2(v[i] >> (16 * h));
      s = fmaf(x[4 * i + 2 * h], f.x, s);
      s = fmaf(x[4 * i + 2 * h + 1], f.y, s);
    }
  }
  return s;
}

template <Form F, typename W>
__global__ void __launch_bounds__(kThreads) DecodeGemvKernel(const DecodeGemvArgs a) {
  constexpr int kVec = kVecOf<W>, kStepElems = kStepOf<W>, kBatchElems = kBatchOf<W>;
  AllowDependentLaunch();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int unit = blockIdx.x * kWarps + warp;
  // Rows past the end are clamped to the last one (harmless reloads, results not stored).
  int first_out;  // first output this warp writes
  int rows[kRows];
  int head = 0, pair = 0;  // kNormRopeKv: pairs (pair, pair + half), (pair + 1, pair + 1 + half)
  if constexpr (F == Form::kNormRopeKv) {
    const int half = a.head_dim / 2, warps_per_head = half / 2;
    head = unit / warps_per_head;
    pair = (unit - head * warps_per_head) * 2;
    first_out = head < a.n_q + 2 * a.n_kv ? head * a.head_dim : a.n;
    const int base = min(first_out, a.n - a.head_dim);
    rows[0] = base + pair;
    rows[1] = base + pair + 1;
    rows[2] = base + half + pair;
    rows[3] = base + half + pair + 1;
  } else if constexpr (F == Form::kNormSwiGlu) {
    first_out = unit * 2;
    const int p0 = min(first_out, a.n - 1), p1 = min(first_out + 1, a.n - 1);
    rows[0] = p0;
    rows[1] = p1;
    rows[2] = a.n + p0;
    rows[3] = a.n + p1;
  } else {
    first_out = unit * kRows;
#pragma unroll
    for (int r = 0; r < kRows; ++r) rows[r] = min(first_out + r, a.n - 1);
  }
  const bool live = first_out < a.n;
  const int k0 = static_cast<int>(blockIdx.y) * a.k_step;
  const int k = min(a.k_step, a.k - k0);
  const W* wr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wr[r] = static_cast<const W*>(a.w) + static_cast<int64_t>(rows[r]) * a.k + k0;

  // Two register buffers of weights, a and b: while one batch is consumed the next is in
  // flight, so the warp's stream of loads never stops (one buffer alone made every warp load,
  // wait, compute, load again, in step with the others: bursts on the memory system).
  using Batch = uint4[kUnroll][kRows];
  auto load_batch = [&](Batch& wv, int base) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = base + u * kStepElems;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        wv[u][r] = kk < k ? LoadWeights16(wr[r] + kk) : make_uint4(0, 0, 0, 0);
      }
    }
  };
  const int first = lane * kVec;
  Batch wa, wb;
  if (live) {  // weights are constant: no need to wait for the prior kernel
    load_batch(wa, first);
    load_batch(wb, first + kBatchElems);
  }
  AwaitPriorGrid();
  if (!live) return;

  float acc[kRows] = {};
  float sum_sq = 0.0f;
  auto consume = [&](const Batch& wv, int base) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = base + u * kStepElems;
      if (kk < k) {
        float xv[kVec];
#pragma unroll
        for (int c = 0; c < kVec / 8; ++c) {  // x in pieces of 8
          float piece[8];
          if constexpr (F == Form::kAccumulate) {
            UnpackBf16x8(__ldg(reinterpret_cast<const uint4*>(a.xb + k0 + kk + 8 * c)), piece);
          } else {
            const float4 x0 = __ldg(reinterpret_cast<const float4*>(a.xf + kk + 8 * c));
            const float4 x1 = __ldg(reinterpret_cast<const float4*>(a.xf + kk + 8 * c + 4));
            float gv[8];
            UnpackBf16x8(__ldg(reinterpret_cast<const uint4*>(a.g + kk + 8 * c)), gv);
            const float raw[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i) {
              sum_sq = fmaf(raw[i], raw[i], sum_sq);
              piece[i] = raw[i] * gv[i];
            }
          }
#pragma unroll
          for (int i = 0; i < 8; ++i) xv[8 * c + i] = piece[i];
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r] += DotWeights(xv, wv[u][r]);
      }
    }
  };
  for (int base = first; base < k; base += 2 * kBatchElems) {
    consume(wa, base);
    load_batch(wa, base + 2 * kBatchElems);
    consume(wb, base + kBatchElems);
    load_batch(wb, base + 3 * kBatchElems);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = WarpSum(acc[r]);
  if constexpr (F != Form::kAccumulate) sum_sq = WarpSum(sum_sq);
  if (lane != 0) return;
  if constexpr (kIsFp8<W>) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] *= __ldg(a.w_scale + rows[r]);
  }

  if constexpr (F == Form::kAccumulate) {
    const bool split = gridDim.y > 1;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (first_out + r < a.n) {
        float* out = a.y + first_out + r;
        if (split) {
          atomicAdd(out, acc[r]);
        } else {
          *out += acc[r];
        }
      }
    }
  } else {
    const float inv_rms = rsqrtf(sum_sq / static_cast<float>(a.k) + a.eps);
    if constexpr (F == Form::kNorm) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (first_out + r < a.n) a.y[first_out + r] = acc[r] * inv_rms;
      }
    } else if constexpr (F == Form::kNormRopeKv) {
      const int half = a.head_dim / 2;
      const int64_t s = *a.slot;  // negative: padding, rotated but not stored
      const int64_t block = s >= 0 ? s / a.block_size : 0, slot = s - block * a.block_size;
      const bool is_v = head >= a.n_q + a.n_kv;
      const int kv_head = head - (is_v ? a.n_q + a.n_kv : a.n_q);
      const int64_t cache_off = ((block * a.n_kv + kv_head) * a.block_size + slot) * a.head_dim;
      const float pos = static_cast<float>(*a.position);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int i = pair + j;
        float y1 = acc[j] * inv_rms, y2 = acc[2 + j] * inv_rms;
        if (!is_v) RopeRotate(y1, y2, a.inv_freq[i], pos, y1, y2);  // q and k: the pair (i, i + half)
        a.y[first_out + i] = y1;
        a.y[first_out + i + half] = y2;
        if (head >= a.n_q && s >= 0 && a.k_cache != nullptr) {
          __nv_bfloat16* cache = is_v ? a.v_cache : a.k_cache;
          cache[cache_off + i] = __float2bfloat16_rn(y1);
          cache[cache_off + i + half] = __float2bfloat16_rn(y2);
        }
      }
    } else {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (first_out + j < a.n) {
          const float gate = acc[j] * inv_rms, up = acc[2 + j] * inv_rms;
          a.act[first_out + j] = __float2bfloat16_rn(gate / (1.0f + expf(-gate)) * up);
        }
      }
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename W>
Status CheckArgs(const char* what, int64_t rows, int64_t k, std::initializer_list<const void*> ptrs) {
  if (rows <= 0 || k <= 0 || rows > INT32_MAX / 2 || k > INT32_MAX / 2 || k % kVecOf<W> != 0) {
    return InvalidArgument(std::string(what) + ": bad shape rows=" + std::to_string(rows) +
                           " k=" + std::to_string(k) + " (k must be a positive multiple of " +
                           std::to_string(kVecOf<W>) + ")");
  }
  for (const void* p : ptrs) {
    if (p == nullptr || !Aligned16(p)) {
      return InvalidArgument(std::string(what) + ": null or not 16-byte aligned pointer");
    }
  }
  return Status::Ok();
}

// The fields the norm forms share: x, its RMSNorm, the weight and its shape (no split).
DecodeGemvArgs NormArgs(const float* x, const __nv_bfloat16* norm_w, float eps, const void* w,
                        const float* w_scale, int64_t n, int64_t k) {
  DecodeGemvArgs a{};
  a.xf = x;
  a.g = norm_w;
  a.eps = eps;
  a.w = w;
  a.w_scale = w_scale;
  a.n = static_cast<int>(n);
  a.k = a.k_step = static_cast<int>(k);
  return a;
}

template <Form F, typename W>
Status Launch(const DecodeGemvArgs& a, unsigned blocks, unsigned splits, cudaStream_t stream) {
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(DecodeGemvKernel<F, W>, dim3(blocks, splits),
                                           dim3(kThreads), 0, stream, a));
  return Status::Ok();
}

}  // namespace

void SetDecodeGemvBlocksPerSm(int blocks) {
  g_blocks_per_sm.store(blocks > 0 ? blocks : kDefaultBlocksPerSm);
}

namespace {

template <typename W>
Status AccumulateImpl(const __nv_bfloat16* x, const W* w, const float* w_scale, int64_t n, int64_t k,
                      float* y, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckArgs<W>("DecodeGemvAccumulate", n, k, {x, w, y}));
  if (kIsFp8<W> && w_scale == nullptr) return InvalidArgument("DecodeGemvAccumulate: null scales");
  DecodeGemvArgs a{};
  a.xb = x;
  a.w = w;
  a.w_scale = w_scale;
  a.n = static_cast<int>(n);
  a.k = static_cast<int>(k);
  a.y = y;
  const int64_t blocks = (n + kWarps * kRows - 1) / (kWarps * kRows);
  // About g_blocks_per_sm blocks an SM, each split at least one batch of loads long.
  const int64_t want = (g_blocks_per_sm.load(std::memory_order_relaxed) * DeviceSmCount() + blocks - 1) / blocks;
  const int64_t by_k = std::max<int64_t>(1, k / kBatchOf<W>);
  const int64_t splits0 = std::max<int64_t>(1, std::min(want, by_k));
  const int64_t per = (k + splits0 - 1) / splits0;
  const int64_t k_step = (per + kStepOf<W> - 1) / kStepOf<W> * kStepOf<W>;
  a.k_step = static_cast<int>(std::min(k_step, k));
  const int64_t splits = (k + a.k_step - 1) / a.k_step;
  return Launch<Form::kAccumulate, W>(a, static_cast<unsigned>(blocks), static_cast<unsigned>(splits),
                                      stream);
}

template <typename W>
Status NormImpl(const float* x, const __nv_bfloat16* norm_w, float eps, const W* w,
                const float* w_scale, int64_t n, int64_t k, float* y, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckArgs<W>("RmsNormGemv", n, k, {x, norm_w, w, y}));
  if (kIsFp8<W> && w_scale == nullptr) return InvalidArgument("RmsNormGemv: null scales");
  DecodeGemvArgs a = NormArgs(x, norm_w, eps, w, w_scale, n, k);
  a.y = y;
  const int64_t blocks = (n + kWarps * kRows - 1) / (kWarps * kRows);
  return Launch<Form::kNorm, W>(a, static_cast<unsigned>(blocks), 1, stream);
}

template <typename W>
Status NormRopeKvImpl(const float* x, const __nv_bfloat16* norm_w, float eps, const W* w_qkv,
                      const float* w_scale, int64_t k, int64_t n_q_heads, int64_t n_kv_heads,
                      int64_t head_dim, const int32_t* position, const float* inv_freq,
                      const int64_t* slot, int64_t block_size, __nv_bfloat16* k_cache,
                      __nv_bfloat16* v_cache, float* qkv, cudaStream_t stream) {
  const int64_t n = (n_q_heads + 2 * n_kv_heads) * head_dim;
  RAG_RETURN_IF_ERROR(CheckArgs<W>("RmsNormGemvRopeKv", n, k, {x, norm_w, w_qkv, qkv}));
  if (n_q_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || head_dim % 4 != 0 ||
      block_size <= 0 || block_size > INT32_MAX || position == nullptr || inv_freq == nullptr ||
      slot == nullptr || (k_cache == nullptr) != (v_cache == nullptr) ||
      (kIsFp8<W> && w_scale == nullptr)) {
    return InvalidArgument("RmsNormGemvRopeKv: bad heads " + std::to_string(n_q_heads) + "+" +
                           std::to_string(n_kv_heads) + " x " + std::to_string(head_dim) +
                           " (head_dim % 4 == 0), block_size " + std::to_string(block_size) +
                           " or null pointer");
  }
  DecodeGemvArgs a = NormArgs(x, norm_w, eps, w_qkv, w_scale, n, k);
  a.y = qkv;
  a.n_q = static_cast<int>(n_q_heads);
  a.n_kv = static_cast<int>(n_kv_heads);
  a.head_dim = static_cast<int>(head_dim);
  a.block_size = static_cast<int>(block_size);
  a.position = position;
  a.inv_freq = inv_freq;
  a.slot = slot;
  a.k_cache = k_cache;
  a.v_cache = v_cache;
  const int64_t warps = n / kRows;  // head_dim / 4 warps a head
  const int64_t blocks = (warps + kWarps - 1) / kWarps;
  return Launch<Form::kNormRopeKv, W>(a, static_cast<unsigned>(blocks), 1, stream);
}

template <typename W>
Status NormSwiGluImpl(const float* x, const __nv_bfloat16* norm_w, float eps, const W* w_gate_up,
                      const float* w_scale, int64_t inter, int64_t k, __nv_bfloat16* act,
                      cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckArgs<W>("RmsNormGemvSwiGlu", 2 * inter, k, {x, norm_w, w_gate_up}));
  if (act == nullptr || (kIsFp8<W> && w_scale == nullptr)) {
    return InvalidArgument("RmsNormGemvSwiGlu: null output or scales");
  }
  DecodeGemvArgs a = NormArgs(x, norm_w, eps, w_gate_up, w_scale, inter, k);
  a.act = act;
  const int64_t blocks = (inter + kWarps * 2 - 1) / (kWarps * 2);
  return Launch<Form::kNormSwiGlu, W>(a, static_cast<unsigned>(blocks), 1, stream);
}

}  // namespace

Status DecodeGemvAccumulate(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t n, int64_t k,
                            float* y, cudaStream_t stream) {
  return AccumulateImpl(x, w, nullptr, n, k, y, stream);
}
Status DecodeGemvAccumulate(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale,
                            int64_t n, int64_t k, float* y, cudaStream_t stream) {
  return AccumulateImpl(x, w, w_scale, n, k, y, stream);
}

Status RmsNormGemv(const float* x, const __nv_bfloat16* norm_w, float eps, const __nv_bfloat16* w,
                   int64_t n, int64_t k, float* y, cudaStream_t stream) {
  return NormImpl(x, norm_w, eps, w, nullptr, n, k, y, stream);
}
Status RmsNormGemv(const float* x, const __nv_bfloat16* norm_w, float eps, const __nv_fp8_e4m3* w,
                   const float* w_scale, int64_t n, int64_t k, float* y, cudaStream_t stream) {
  return NormImpl(x, norm_w, eps, w, w_scale, n, k, y, stream);
}

Status RmsNormGemvRopeKv(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_bfloat16* w_qkv, int64_t k, int64_t n_q_heads,
                         int64_t n_kv_heads, int64_t head_dim, const int32_t* position,
                         const float* inv_freq, const int64_t* slot, int64_t block_size,
                         __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, float* qkv,
                         cudaStream_t stream) {
  return NormRopeKvImpl(x, norm_w, eps, w_qkv, nullptr, k, n_q_heads, n_kv_heads, head_dim,
                        position, inv_freq, slot, block_size, k_cache, v_cache, qkv, stream);
}
Status RmsNormGemvRopeKv(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_fp8_e4m3* w_qkv, const float* w_scale, int64_t k,
                         int64_t n_q_heads, int64_t n_kv_heads, int64_t head_dim,
                         const int32_t* position, const float* inv_freq, const int64_t* slot,
                         int64_t block_size, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache,
                         float* qkv, cudaStream_t stream) {
  return NormRopeKvImpl(x, norm_w, eps, w_qkv, w_scale, k, n_q_heads, n_kv_heads, head_dim,
                        position, inv_freq, slot, block_size, k_cache, v_cache, qkv, stream);
}

Status RmsNormGemvSwiGlu(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_bfloat16* w_gate_up, int64_t inter, int64_t k,
                         __nv_bfloat16* act, cudaStream_t stream) {
  return NormSwiGluImpl(x, norm_w, eps, w_gate_up, nullptr, inter, k, act, stream);
}
Status RmsNormGemvSwiGlu(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_fp8_e4m3* w_gate_up, const float* w_scale, int64_t inter,
                         int64_t k, __nv_bfloat16* act, cudaStream_t stream) {
  return NormSwiGluImpl(x, norm_w, eps, w_gate_up, w_scale, inter, k, act, stream);
}

}  // namespace rag
