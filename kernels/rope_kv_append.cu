// RoPE and KV append in one pass over the fused q|k|v rows: q and k are rotated in place (the
// attention reads q from the row), and the rotated k and the v columns are rounded to bf16 into
// the paged cache. One kernel instead of RopeInplace + KvAppend: a launch less per layer in
// decode, and each element read once in prefill. Same arithmetic as the two (their tests hold
// it to them bit for bit).
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

struct RopeKvArgs {
  float* qkv;
  int64_t row_stride;
  int n_q, n_kv, half, head_dim, block_size;
  int first_head;  // 0, or n_q when q is left unrotated (the prefill attention rotates it)
  const int32_t* positions;
  const float* inv_freq;
  const float2* cos_sin;  // non-null: (n_tokens, half) angles, read instead of computed
  const int64_t* slots;
  __nv_bfloat16* k_cache;
  __nv_bfloat16* v_cache;
};

// Grid (token, group); work item i < (n_q + n_kv - first_head) * half rotates one pair of a q or
// k head (and stores a k pair in the cache); the next n_kv * half items copy two v values each.
__global__ void RopeKvAppendKernel(const RopeKvArgs a) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t t = blockIdx.x;
  float* row = a.qkv + t * a.row_stride;
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t s = a.slots[t];  // negative: a padding token, rotated but not stored
  const int64_t block = s >= 0 ? s / a.block_size : 0, slot = s - block * a.block_size;
  const int rope_items = (a.n_q + a.n_kv - a.first_head) * a.half;
  const int items = rope_items + a.n_kv * a.half;
  const int stride = blockDim.x * gridDim.y;
  for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < items; p += stride) {
    if (p < rope_items) {
      const int h = a.first_head + p / a.half, i = p % a.half;
      float* v = row + static_cast<int64_t>(h) * a.head_dim;
      float y1, y2;
      const float2 cs = a.cos_sin != nullptr ? a.cos_sin[t * a.half + i]
                                             : RopeCosSinAt(a.inv_freq[i], pos);
      RopeRotateCs(v[i], v[i + a.half], cs, y1, y2);
      v[i] = y1;
      v[i + a.half] = y2;
      if (h >= a.n_q && s >= 0 && a.k_cache != nullptr) {
        const int64_t off = ((block * a.n_kv + (h - a.n_q)) * a.block_size + slot) * a.head_dim;
        StoreAs(a.k_cache + off + i, y1);
        StoreAs(a.k_cache + off + i + a.half, y2);
      }
    } else if (s >= 0 && a.v_cache != nullptr) {
      const int e = 2 * (p - rope_items);  // two v values: e and e + 1 of the v columns
      const int h = e / a.head_dim, d = e - h * a.head_dim;
      const float* vr = row + static_cast<int64_t>(a.n_q + a.n_kv) * a.head_dim;
      const int64_t off = ((block * a.n_kv + h) * a.block_size + slot) * a.head_dim + d;
      StoreAs(a.v_cache + off, vr[e]);
      StoreAs(a.v_cache + off + 1, vr[e + 1]);
    }
  }
}

}  // namespace

Status RopeKvAppend(float* qkv, int64_t n_tokens, int64_t row_stride, int64_t n_q_heads,
                    int64_t n_kv_heads, int64_t head_dim, const int32_t* positions,
                    const float* inv_freq, const int64_t* slot_mapping, int64_t block_size,
                    __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, cudaStream_t stream,
                    bool rotate_q, const float2* cos_sin) {
  if (n_tokens < 0 || n_tokens > INT32_MAX || n_q_heads <= 0 || n_kv_heads <= 0 ||
      head_dim <= 0 || head_dim % 2 != 0 || block_size <= 0 || block_size > INT32_MAX ||
      (n_q_heads + 2 * n_kv_heads) * head_dim > row_stride ||
      (n_q_heads + 2 * n_kv_heads) * head_dim > INT32_MAX) {
    return InvalidArgument("RopeKvAppend: bad shape n_tokens=" + std::to_string(n_tokens) +
                           " row_stride=" + std::to_string(row_stride) + " heads=" +
                           std::to_string(n_q_heads) + "+" + std::to_string(n_kv_heads) +
                           " head_dim=" + std::to_string(head_dim));
  }
  if ((k_cache == nullptr) != (v_cache == nullptr)) {
    return InvalidArgument("RopeKvAppend: one cache pointer null, the other not");
  }
  if (n_tokens == 0) return Status::Ok();
  RopeKvArgs a{qkv,
               row_stride,
               static_cast<int>(n_q_heads),
               static_cast<int>(n_kv_heads),
               static_cast<int>(head_dim / 2),
               static_cast<int>(head_dim),
               static_cast<int>(block_size),
               rotate_q ? 0 : static_cast<int>(n_q_heads),
               positions,
               inv_freq,
               cos_sin,
               slot_mapping,
               k_cache,
               v_cache};
  const int64_t items = ((rotate_q ? n_q_heads : 0) + 2 * n_kv_heads) * head_dim / 2;
  const int threads = items >= 128 ? 128 : static_cast<int>((items + 31) / 32 * 32);
  // Enough blocks in all to fill the GPU, at most one item per thread.
  const int64_t groups = std::min<int64_t>((items + threads - 1) / threads,
                                           std::max<int64_t>(1, 1024 / n_tokens));
  const dim3 grid(static_cast<unsigned>(n_tokens), static_cast<unsigned>(groups));
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(RopeKvAppendKernel, grid, dim3(threads), 0, stream, a));
  return Status::Ok();
}

}  // namespace rag
