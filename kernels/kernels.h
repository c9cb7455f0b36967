// Host launchers of the CUDA kernels (one family per .cu beside this file). Every pointer is
// device memory, row-major and contiguous unless a stride is given; bf16 is __nv_bfloat16
// (bit-compatible with the uint16_t bf16 of safetensors). Launchers check their arguments,
// enqueue on `stream` and return at once; a non-ok Status means nothing (or nothing valid) was
// enqueued. Asynchronous faults surface at the caller's next synchronising CUDA call.
// Arithmetic is fp32 throughout; each kernel matches its CPU reference in engine/cpu/ within
// the tolerances stated in tests/gpu/.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace rag {

// --- embedding.cu ----------------------------------------------------------------------------
// out (n, dim) = table[ids[i]] for each of the n token ids (ids: n int32 on the device);
// table (vocab, dim) bf16. An id outside [0, vocab) yields a row of zeros.
Status EmbeddingGather(const __nv_bfloat16* table, int64_t vocab, int64_t dim,
                       const int32_t* ids, int64_t n, float* out, cudaStream_t stream);
Status EmbeddingGather(const __nv_bfloat16* table, int64_t vocab, int64_t dim,
                       const int32_t* ids, int64_t n, __nv_bfloat16* out, cudaStream_t stream);

// --- rmsnorm.cu ------------------------------------------------------------------------------
// For each of the n rows: x += residual (skipped when residual is null), then
// y = x / sqrt(mean(x^2) + eps) * w, as transformers' LlamaRMSNorm in fp32.
// x (n, dim) fp32, updated in place (the residual stream); residual (n, dim) fp32 or null;
// w (dim) bf16; y (n, dim) fp32 or bf16 (y must not alias x).
Status AddRmsNorm(float* x, const float* residual, const __nv_bfloat16* w, int64_t n,
                  int64_t dim, float eps, float* y, cudaStream_t stream);
Status AddRmsNorm(float* x, const float* residual, const __nv_bfloat16* w, int64_t n,
                  int64_t dim, float eps, __nv_bfloat16* y, cudaStream_t stream);

// --- rope.cu ---------------------------------------------------------------------------------
// Rotary embeddings in the rotate-half layout (pairs i and i + head_dim / 2), in place.
// x: n_tokens rows of row_stride floats; the first n_heads * head_dim floats of each row are
// rotated (so one call can rotate q and k of a fused qkv row: n_heads = n_q + n_kv).
// positions (n_tokens) int32; inv_freq (head_dim / 2) fp32 from ComputeRopeInvFreq (the
// Llama 3.1 scaling is in it). Angle = inv_freq[i] * float(pos), one fp32 rounding, as the CPU.
Status RopeInplace(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads,
                   int64_t head_dim, const int32_t* positions, const float* inv_freq,
                   cudaStream_t stream);

// --- swiglu.cu -------------------------------------------------------------------------------
// out (n, inter) = silu(gate) * up, silu(g) = g / (1 + exp(-g)), where gate_up (n, 2 * inter)
// holds each row's gate in columns [0, inter) and its up in [inter, 2 * inter) (the output of
// the fused gate|up projection).
Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, float* out, cudaStream_t stream);
Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, __nv_bfloat16* out,
              cudaStream_t stream);

// --- gemv.cu ---------------------------------------------------------------------------------
// Decode GEMV: y (m, n) fp32 = x (m, k) * w^T, w (n, k) bf16 row-major (nn.Linear layout),
// 1 <= m <= kGemvMaxM, fp32 accumulation. Bandwidth-bound: w is read once per call whatever m
// is. Any k works; k % 8 == 0 with a 16-byte-aligned w takes the 16-byte-load path.
inline constexpr int kGemvMaxM = 8;
Status Gemv(const float* x, const __nv_bfloat16* w, int64_t m, int64_t n, int64_t k, float* y,
            cudaStream_t stream);
Status Gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t m, int64_t n, int64_t k,
            float* y, cudaStream_t stream);

// --- kv_cache.cu -----------------------------------------------------------------------------
// Paged KV cache of one layer, bf16: k_cache and v_cache are (num_blocks, n_kv_heads,
// block_size, head_dim), the layout of engine/cpu/attention.h. Position p of a sequence lives in
// slot p % block_size of block block_table[p / block_size] (engine/backend.h).
//
// KvAppend writes the k and v rows of n_tokens tokens: k and v are fp32, token t's row starts at
// k + t * k_stride (v + t * v_stride) and holds n_kv_heads * head_dim values (strides allow the
// k and v columns of a fused qkv row). slot_mapping (n_tokens) int64 on the device is computed
// by the caller on the host: slot_mapping[t] = block_table[pos / block_size] * block_size +
// pos % block_size for the token's sequence and position; a negative entry skips the token
// (padding). Values are rounded to bf16 (nearest even).
Status KvAppend(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int64_t* slot_mapping, int64_t n_tokens, int64_t n_kv_heads,
                int64_t head_dim, int64_t block_size, __nv_bfloat16* k_cache,
                __nv_bfloat16* v_cache, cudaStream_t stream);

// --- decode_attention.cu ---------------------------------------------------------------------
// Decode attention, one query token per sequence, over the bf16 paged cache above:
// out[b] = softmax(q[b] k^T / sqrt(head_dim)) v over positions [0, context_lens[b]) of sequence
// b (the query's own k/v must already be appended). q (batch, n_heads * head_dim) fp32;
// out (batch, n_heads * head_dim) fp32; query head h reads KV head h / (n_heads / n_kv_heads).
// block_tables (batch, max_blocks_per_seq) int32 on the device, row-padded: row b's first
// ceil(context_lens[b] / block_size) entries are read. context_lens (batch) int32 on the
// device, each in [0, max_blocks_per_seq * block_size] (not checked: device memory); a length
// of 0 gives a row of zeros. head_dim % 32 == 0, head_dim <= 256; batch <= 65535.
// Online softmax in fp32.
Status PagedDecodeAttention(const float* q, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens,
                            int64_t batch, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                            int64_t block_size, float* out, cudaStream_t stream);

}  // namespace rag
