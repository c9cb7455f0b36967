// Paged decode attention, one query token per sequence. One thread block of kWarps warps per
// (query head, sequence). q (scaled by 1/sqrt(head_dim)) sits in registers: lane l owns the
// kDpl = head_dim / 32 consecutive dims [l * kDpl, (l + 1) * kDpl). Warp w walks the positions
// w, w + kWarps, ... of the context; for each, the warp reduces q.k with shuffles and updates its
// own online-softmax state (running max m, running sum l, acc = sum of exp(s - m) * v) in fp32.
// At the end the kWarps states are merged through shared memory and out = acc / l.
// Heads of one GQA group read the same K/V rows (separate blocks; the re-reads hit L2).
// No split over the context: one block per (head, sequence) walks its whole length.
#include <cmath>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <int kDpl>
__global__ void __launch_bounds__(kThreads)
    DecodeAttentionKernel(const float* __restrict__ q, const __nv_bfloat16* __restrict__ k_cache,
                          const __nv_bfloat16* __restrict__ v_cache,
                          const int32_t* __restrict__ block_tables, int64_t max_blocks,
                          const int32_t* __restrict__ context_lens, int n_heads, int n_kv_heads,
                          int block_size, float scale, float* __restrict__ out) {
  constexpr int kHeadDim = kDpl * 32;
  const int head = blockIdx.x, seq = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kv_head = head / (n_heads / n_kv_heads);
  const int len = context_lens[seq];
  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks;

  float qr[kDpl], acc[kDpl];
  const float* qh = q + (static_cast<int64_t>(seq) * n_heads + head) * kHeadDim + lane * kDpl;
#pragma unroll
  for (int i = 0; i < kDpl; ++i) {
    qr[i] = qh[i] * scale;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int p = warp; p < len; p += kWarps) {
    const int64_t block = table[p / block_size];
    const int slot = p % block_size;
    const int64_t off =
        ((block * n_kv_heads + kv_head) * block_size + slot) * kHeadDim + lane * kDpl;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kDpl; ++i) s = fmaf(qr[i], __bfloat162float(k_cache[off + i]), s);
    s = WarpSum(s);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // first position: exp(-inf) = 0
    const float w = expf(s - m_new);
    l = l * corr + w;
#pragma unroll
    for (int i = 0; i < kDpl; ++i)
      acc[i] = fmaf(w, __bfloat162float(v_cache[off + i]), acc[i] * corr);
    m = m_new;
  }

  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][kHeadDim];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDpl; ++i) s_acc[warp][lane * kDpl + i] = acc[i];
  __syncthreads();
  float gm = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) gm = fmaxf(gm, s_m[w]);
  float* o = out + (static_cast<int64_t>(seq) * n_heads + head) * kHeadDim;
  for (int d = threadIdx.x; d < kHeadDim; d += kThreads) {
    float num = 0.0f, den = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (s_m[w] == -INFINITY) continue;  // warp saw no position
      const float c = expf(s_m[w] - gm);
      num = fmaf(c, s_acc[w][d], num);
      den = fmaf(c, s_l[w], den);
    }
    o[d] = den > 0.0f ? num / den : 0.0f;  // empty context: zeros
  }
}

}  // namespace

Status PagedDecodeAttention(const float* q, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens,
                            int64_t batch, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                            int64_t block_size, float* out, cudaStream_t stream) {
  if (batch < 0 || batch > 65535 || n_heads <= 0 || n_heads > INT32_MAX || n_kv_heads <= 0 ||
      n_heads % n_kv_heads != 0 || block_size <= 0 || block_size > INT32_MAX ||
      max_blocks_per_seq <= 0 || head_dim <= 0 || head_dim % 32 != 0 || head_dim > 256) {
    return InvalidArgument("PagedDecodeAttention: bad shape batch=" + std::to_string(batch) +
                           " n_heads=" + std::to_string(n_heads) +
                           " n_kv_heads=" + std::to_string(n_kv_heads) +
                           " head_dim=" + std::to_string(head_dim) +
                           " block_size=" + std::to_string(block_size) +
                           " max_blocks_per_seq=" + std::to_string(max_blocks_per_seq));
  }
  if (batch == 0) return Status::Ok();
  const dim3 grid(static_cast<unsigned>(n_heads), static_cast<unsigned>(batch));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int nh = static_cast<int>(n_heads), nkv = static_cast<int>(n_kv_heads),
            bs = static_cast<int>(block_size);
#define RAG_DECODE_ATTN_CASE(DPL)                                                        \
  case DPL:                                                                              \
    DecodeAttentionKernel<DPL><<<grid, kThreads, 0, stream>>>(                           \
        q, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, nh, nkv, bs, \
        scale, out);                                                                     \
    break;
  switch (head_dim / 32) {
    RAG_DECODE_ATTN_CASE(1)
    RAG_DECODE_ATTN_CASE(2)
    RAG_DECODE_ATTN_CASE(3)
    RAG_DECODE_ATTN_CASE(4)
    RAG_DECODE_ATTN_CASE(5)
    RAG_DECODE_ATTN_CASE(6)
    RAG_DECODE_ATTN_CASE(7)
    RAG_DECODE_ATTN_CASE(8)
  }
#undef RAG_DECODE_ATTN_CASE
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace rag
