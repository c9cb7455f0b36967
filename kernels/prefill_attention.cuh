// What the two tensor-core prefill attention kernels share (included by prefill_attention.cu
// and prefill_attention_wgmma.cu only): the q scale, the shared-memory opt-in, the launch
// arguments, the bf16 cache view, the FP8 widening, the CTA's place, the Q loader, and the entry
// points of the warpgroup kernel (sm_90a: wgmma), which prefill_attention.cu picks when this
// build and the device have it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

#include "common/status.h"
#include "kernels/attention_util.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag::prefill {

// The fast kernels scale q by log2(e) / sqrt(head_dim) and take their softmax in exp2.
constexpr float kLog2e = 1.4426950408889634f;

// Lets `kernel` use `bytes` of dynamic shared memory on the current device, once per (kernel,
// device): cudaFuncSetAttribute is a host call that waits for pending copies, so it is not
// repeated per launch (nor should it run inside a stream capture: capture after one eager call).
template <typename Kernel>
Status AllowDynamicSmem(Kernel kernel, int bytes, std::atomic<uint64_t>* done_devices) {
  int device = 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;  // devices past 64: every call
  if (bit != 0 && (done_devices->load(std::memory_order_acquire) & bit) != 0) return Status::Ok();
  RAG_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done_devices->fetch_or(bit, std::memory_order_release);
  return Status::Ok();
}

// What the kernels share whatever the cache kind; the cache itself is the kernels' second
// parameter.
struct PrefillArgs {
  const float* q;  // row i at q + i * q_stride
  int64_t q_stride;
  const int32_t* block_tables;  // (n_seqs, max_blocks)
  int64_t max_blocks;
  const int32_t* q_offsets;  // (n_seqs)
  const int32_t* q_lens;
  const int32_t* start_pos;
  int n_heads, n_kv_heads, block_size;
  int n_q_tiles;  // fast paths: gridDim.y
  float q_scale;  // fast paths: log2(e) / sqrt(head_dim); simple path: 1 / sqrt(head_dim)
  const float2* rope_cos_sin;  // non-null: q rows are unrotated; row i's angles at row i
  __nv_bfloat16* out;          // (rows, n_heads * head_dim)
};

// The bf16 cache: element `off` of K and V at k + off and v + off. The FP8 cache is kernels.h's
// Fp8KvCache: the code at k + off, times the scale of its row, k_scale[off / head_dim].
struct Bf16Kv {
  const __nv_bfloat16* k;
  const __nv_bfloat16* v;
};

// One 16-byte shared-memory store, as one instruction: left to the compiler, some uint4 stores of
// the FP8 tile loader became four 4-byte stores (alignment not proven).
__device__ __forceinline__ void StoreShared16(void* smem, const uint4 v) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "r"(v.x), "r"(v.y), "r"(v.z),
               "r"(v.w)
               : "memory");
}

// 16 e4m3 codes (16 bytes, lowest address first) times `scale`, rounded to bf16: codes 0-7 in
// `lo`, 8-15 in `hi` (lowest element in the low half of each word).
__device__ __forceinline__ void WidenFp8x16(const uint4 codes, float scale, uint4& lo, uint4& hi) {
  const uint32_t w[4] = {codes.x, codes.y, codes.z, codes.w};
  uint32_t b[8];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x01 = Fp8x2ToFloat2(w[i]), x23 = Fp8x2ToFloat2(w[i] >> 16);
    b[2 * i] = PackBf16(x01.x * scale, x01.y * scale);
    b[2 * i + 1] = PackBf16(x23.x * scale, x23.y * scale);
  }
  lo = make_uint4(b[0], b[1], b[2], b[3]);
  hi = make_uint4(b[4], b[5], b[6], b[7]);
}

// The same into dst[0..15] (16-byte aligned shared memory).
__device__ __forceinline__ void StoreFp8x16AsBf16(uint16_t* dst, const uint4 codes, float scale) {
  uint4 lo, hi;
  WidenFp8x16(codes, scale, lo, hi);
  StoreShared16(dst, lo);
  StoreShared16(dst + 8, hi);
}

// A fast kernel's CTA: its tile of kBq query rows (blockIdx.y counts from the last tile, so that
// the longest rows start first), its query head (blockIdx.x) and sequence (blockIdx.z), and where
// its keys lie in the cache; the same in every thread. A tile past the sequence's rows
// (q0 >= q_len) has nothing to do.
template <int kHeadDim, int kBq>
struct PrefillCta {
  int head, seq, q0, q_len, start;
  int64_t row0;  // the q/out row of tile row 0
  int rows;      // the tile's rows in the chunk
  int kv_end;    // the tile's rows attend to positions [0, kv_end)
  int kv_head;
  const int32_t* table;  // the sequence's block table

  __device__ __forceinline__ explicit PrefillCta(const PrefillArgs& a)
      : head(static_cast<int>(blockIdx.x)),
        seq(static_cast<int>(blockIdx.z)),
        q0((a.n_q_tiles - 1 - static_cast<int>(blockIdx.y)) * kBq),
        q_len(a.q_lens[seq]),
        start(a.start_pos[seq]),
        row0(static_cast<int64_t>(a.q_offsets[seq]) + q0),
        rows(min(kBq, q_len - q0)),
        kv_end(start + q0 + rows),
        kv_head(head / (a.n_heads / a.n_kv_heads)),
        table(a.block_tables + static_cast<int64_t>(seq) * a.max_blocks) {}

  // Cache offset (elements) of key position `pos` of the CTA's KV head; -1 at or past kv_end.
  __device__ __forceinline__ int64_t KeyOffset(const PrefillArgs& a, int pos) const {
    if (pos >= kv_end) return -1;
    const int64_t block = table[pos / a.block_size];
    return ((block * a.n_kv_heads + kv_head) * a.block_size + pos % a.block_size) * kHeadDim;
  }
};

// One thread's share of a Q tile: dims 4c..4c+3 (`lo`) and half + 4c..half + 4c + 3 (`hi`, the
// pairs of `lo` under RoPE) of row r of q (at qg + r * q_stride, q row row0 + r), rotated by row
// row0 + r of a.rope_cos_sin when set, scaled by a.q_scale, rounded to bf16 (two a word, lower
// dim in the low half); zeros for r >= rows (computed on, never stored).
template <int kHeadDim>
__device__ __forceinline__ void LoadQQuads(const PrefillArgs& a, const float* qg, int r, int c,
                                           int rows, int64_t row0, uint2& lo_bf16, uint2& hi_bf16) {
  constexpr int kHalf = kHeadDim / 2;
  float lo[4] = {0.0f, 0.0f, 0.0f, 0.0f}, hi[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (r < rows) {
    const float* src = qg + r * a.q_stride + c * 4;
    const float4 x1 = *reinterpret_cast<const float4*>(src);
    const float4 x2 = *reinterpret_cast<const float4*>(src + kHalf);
    lo[0] = x1.x, lo[1] = x1.y, lo[2] = x1.z, lo[3] = x1.w;
    hi[0] = x2.x, hi[1] = x2.y, hi[2] = x2.z, hi[3] = x2.w;
    if (a.rope_cos_sin != nullptr) {
      const float4* cs =
          reinterpret_cast<const float4*>(a.rope_cos_sin + (row0 + r) * kHalf + c * 4);
      const float4 cs01 = cs[0], cs23 = cs[1];  // (cos, sin) of pairs 4c .. 4c + 3
      RopeRotateCs(lo[0], hi[0], make_float2(cs01.x, cs01.y), lo[0], hi[0]);
      RopeRotateCs(lo[1], hi[1], make_float2(cs01.z, cs01.w), lo[1], hi[1]);
      RopeRotateCs(lo[2], hi[2], make_float2(cs23.x, cs23.y), lo[2], hi[2]);
      RopeRotateCs(lo[3], hi[3], make_float2(cs23.z, cs23.w), lo[3], hi[3]);
    }
  }
  const float sc = a.q_scale;
  lo_bf16 = make_uint2(PackBf16(lo[0] * sc, lo[1] * sc), PackBf16(lo[2] * sc, lo[3] * sc));
  hi_bf16 = make_uint2(PackBf16(hi[0] * sc, hi[1] * sc), PackBf16(hi[2] * sc, hi[3] * sc));
}

// ---- the warpgroup kernel (prefill_attention_wgmma.cu) ----------------------------------------
// True when this build holds the kernel's sm_90a code and the current device runs it (a
// compute capability 9.0 GPU); asked once per device.
bool WarpgroupKernelUsable();
// Launches it: head_dim 128, 16-byte aligned q, cache and angles (RunPrefill's fast-path
// conditions). q_scale and n_q_tiles are set here.
Status LaunchWarpgroupPrefill(const PrefillArgs& args, const Bf16Kv& kv, int64_t n_seqs,
                              int64_t max_q_len, cudaStream_t stream);
Status LaunchWarpgroupPrefill(const PrefillArgs& args, const Fp8KvCache& kv, int64_t n_seqs,
                              int64_t max_q_len, cudaStream_t stream);

}  // namespace rag::prefill
