// What the split-KV decode attention kernels share (decode_attention.cu: the SIMT kernel for
// both cache kinds; decode_attention_mma.cu: the tensor-core kernel for the FP8 cache): the
// launch arguments, the split geometry and the end of a split (write the partial softmax state,
// or the output, and let the last split of a head group merge them). Included by those .cu
// files only.
//
// Grid: (n_splits, n_heads / heads_per_cta, batch). A split owns a contiguous run of the
// context's kTile-position tiles; how many tiles follows on the device from the sequence's
// length (TilesPerSplit), so one captured grid serves every length.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "kernels/device_util.cuh"
#include "kernels/launch.cuh"

namespace rag {
namespace decode_split {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;     // positions a split counts in (the SIMT kernel's tile)
constexpr int kMaxHeads = 8;  // query heads per CTA
constexpr int64_t kMaxSplits = 128;

struct DecodeArgs {
  const float* q;  // row b at q + b * q_stride
  int64_t q_stride;
  const void* k_cache;  // bf16, or e4m3 codes (the kernel's C)
  const void* v_cache;
  const float* k_scale;  // e4m3: the scale of each cached row (kernels.h, Fp8KvCache); else null
  const float* v_scale;
  const int32_t* block_tables;  // (batch, max_blocks)
  int64_t max_blocks;
  const int32_t* context_lens;  // (batch)
  int n_heads, n_kv_heads, block_size;
  int heads_per_cta;  // divides n_heads / n_kv_heads
  int n_splits;
  float q_scale;  // log2(e) / sqrt(head_dim)
  float* ws_acc;  // (batch, n_heads, n_splits, head_dim); null when n_splits == 1
  float* ws_ml;   // (batch, n_heads, n_splits, 2): running max and sum; null likewise
  // (batch, n_heads / heads_per_cta), zero between calls, or null: with counters the last split
  // of each (sequence, head group) to finish merges the splits itself (no combine kernel).
  int32_t* counters;
  __nv_bfloat16* out;  // (batch, n_heads * head_dim)
};

// Context length of sequence b, clamped to what its block table row can address (a bad length
// must not read past the row).
__device__ __forceinline__ int ContextLen(const int32_t* context_lens, int b, int64_t cap) {
  const int64_t len = context_lens[b];
  return static_cast<int>(len < 0 ? 0 : (len > cap ? cap : len));
}

// Tiles per split for a context of n_tiles tiles (the same on the split and combine kernels).
__device__ __forceinline__ int TilesPerSplit(int n_tiles, int n_splits) {
  return (n_tiles + n_splits - 1) / n_splits;
}

// This CTA's share of its sequence: tiles [tile0, tile0 + n) of n_tiles.
struct SplitRange {
  int len, n_tiles, per_split, tile0, n;
};
__device__ __forceinline__ SplitRange ThisSplit(const DecodeArgs& a) {
  SplitRange r;
  r.len = ContextLen(a.context_lens, static_cast<int>(blockIdx.z), a.max_blocks * a.block_size);
  r.n_tiles = (r.len + kTile - 1) / kTile;
  r.per_split = TilesPerSplit(r.n_tiles, a.n_splits);
  r.tile0 = static_cast<int>(blockIdx.x) * r.per_split;
  r.n = min(r.per_split, r.n_tiles - r.tile0);
  return r;
}

// The output rows of this CTA's heads.
template <int kHeadDim>
__device__ __forceinline__ __nv_bfloat16* HeadOutput(const DecodeArgs& a) {
  return a.out + (static_cast<int64_t>(blockIdx.z) * a.n_heads +
                  static_cast<int64_t>(blockIdx.y) * a.heads_per_cta) *
                     kHeadDim;
}

// A split past the end of its context (r.n <= 0) does nothing (the merge skips it), but an
// empty context with nothing to merge it (one split, or merging by the last split, which no
// split is) gets zeros from split 0.
template <int kHeadDim>
__device__ __forceinline__ void FinishEmptySplit(const DecodeArgs& a, const SplitRange& r) {
  if (a.n_splits == 1 || (a.counters != nullptr && r.n_tiles == 0 && blockIdx.x == 0)) {
    AwaitPriorGrid();
    __nv_bfloat16* out = HeadOutput<kHeadDim>(a);
    for (int e = threadIdx.x; e < a.heads_per_cta * kHeadDim; e += kThreads) {
      out[e] = __float2bfloat16_rn(0.0f);
    }
  }
}

// The end of a split whose unnormalised accumulator of head h, dim d is the sum over p <
// kParts of red[(p * kMaxHeads + h) * kRowStride + d], with softmax state (m[h], l[h]) (log2
// domain), all in shared memory and written before a barrier the caller has passed. One split:
// writes the normalised output. Several: writes the split's state to the workspace; with
// counters the last split of the head group to finish merges them all. `scratch` (shared, 2 *
// kMaxHeads * kMaxSplits floats) may alias red: it is written only after every thread has read
// red.
template <int kHeadDim, int kParts, int kRowStride>
__device__ __forceinline__ void FinishSplit(const DecodeArgs& a, const SplitRange& r,
                                            const float* red, const float* m, const float* l,
                                            float* scratch) {
  const int tid = threadIdx.x, split = blockIdx.x, seq = blockIdx.z;
  const int hp = a.heads_per_cta, head0 = blockIdx.y * hp;
  __nv_bfloat16* out = HeadOutput<kHeadDim>(a);
  const int64_t ws_row = (static_cast<int64_t>(seq) * a.n_heads + head0) * a.n_splits + split;
  for (int e = tid; e < hp * kHeadDim; e += kThreads) {
    const int h = e / kHeadDim, d = e % kHeadDim;
    float v = 0.0f;
#pragma unroll
    for (int p = 0; p < kParts; ++p) v += red[(p * kMaxHeads + h) * kRowStride + d];
    if (a.n_splits == 1) {
      out[e] = __float2bfloat16_rn(v / l[h]);  // l >= 1: the max position contributes 1
    } else {
      a.ws_acc[(ws_row + static_cast<int64_t>(h) * a.n_splits) * kHeadDim + d] = v;
    }
  }
  if (a.n_splits > 1 && tid < hp) {
    float* ml = a.ws_ml + (ws_row + static_cast<int64_t>(tid) * a.n_splits) * 2;
    ml[0] = m[tid];
    ml[1] = l[tid];
  }
  if (a.n_splits == 1 || a.counters == nullptr) return;

  // The last active split of this (sequence, head group) to get here merges them all.
  const int active = (r.n_tiles + r.per_split - 1) / r.per_split;
  if (!LastCtaToArrive(a.counters + static_cast<int64_t>(seq) * gridDim.y + blockIdx.y, active)) {
    return;
  }
  // The splits' (m, l) in shared memory first, read through L2 (__ldcg): other CTAs wrote them,
  // L1 may hold nothing valid.
  float* s_m = scratch;
  float* s_l = s_m + kMaxHeads * kMaxSplits;
  const int64_t row0 = (static_cast<int64_t>(seq) * a.n_heads + head0) * a.n_splits;
  for (int i = tid; i < hp * active; i += kThreads) {
    const int h = i / active, sp = i % active;
    const float* ml = a.ws_ml + (row0 + static_cast<int64_t>(h) * a.n_splits + sp) * 2;
    s_m[h * kMaxSplits + sp] = __ldcg(ml);
    s_l[h * kMaxSplits + sp] = __ldcg(ml + 1);
  }
  __syncthreads();
  // Thread t merges dims [4 c, 4 c + 4) of one head (c = t, t + kThreads, ...), the splits'
  // partial sums read as float4 kBatch at a time, all in flight together: this merge is on the
  // critical path of every layer (a loop of one float per split and thread took ~5 us at 64
  // splits).
  constexpr int kBatch = 16;
  for (int c = tid; c < hp * kHeadDim / 4; c += kThreads) {
    const int h = c * 4 / kHeadDim, d = c * 4 % kHeadDim;
    const float* hm = s_m + h * kMaxSplits;
    const float* hl = s_l + h * kMaxSplits;
    float gm = -INFINITY;
    for (int sp = 0; sp < active; ++sp) gm = fmaxf(gm, hm[sp]);
    const float* acc_h = a.ws_acc + (row0 + static_cast<int64_t>(h) * a.n_splits) * kHeadDim + d;
    float4 num = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float den = 0.0f;
    for (int s0 = 0; s0 < active; s0 += kBatch) {
      float4 v[kBatch];
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        v[i] = s0 + i < active ? __ldcg(reinterpret_cast<const float4*>(
                                     acc_h + static_cast<int64_t>(s0 + i) * kHeadDim))
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        if (s0 + i < active) {
          const float wgt = exp2f(hm[s0 + i] - gm);
          num.x = fmaf(wgt, v[i].x, num.x);
          num.y = fmaf(wgt, v[i].y, num.y);
          num.z = fmaf(wgt, v[i].z, num.z);
          num.w = fmaf(wgt, v[i].w, num.w);
          den = fmaf(wgt, hl[s0 + i], den);
        }
      }
    }
    const float inv = 1.0f / den;  // active >= 1 here: den >= 1
    __nv_bfloat16* o = out + h * kHeadDim + d;
    o[0] = __float2bfloat16_rn(num.x * inv);
    o[1] = __float2bfloat16_rn(num.y * inv);
    o[2] = __float2bfloat16_rn(num.z * inv);
    o[3] = __float2bfloat16_rn(num.w * inv);
  }
}

// The FP8 cache's tensor-core kernel (decode_attention_mma.cu; head_dim 128, q 16-byte aligned
// with q_stride % 4 == 0).
cudaError_t LaunchFp8MmaDecode(const DecodeArgs& a, dim3 grid, cudaStream_t stream);
// ... and for the bf16 cache (the same conditions).
cudaError_t LaunchBf16MmaDecode(const DecodeArgs& a, dim3 grid, cudaStream_t stream);

}  // namespace decode_split
}  // namespace rag
