// Host launchers of the CUDA kernels (one family per .cu beside this file). Every pointer is
// device memory, row-major and contiguous unless a stride is given; bf16 is __nv_bfloat16
// (bit-compatible with the uint16_t bf16 of safetensors). Launchers check their arguments,
// enqueue on `stream` and return at once; a non-ok Status means nothing (or nothing valid) was
// enqueued. Asynchronous faults surface at the caller's next synchronising CUDA call.
// Arithmetic is fp32 throughout; each kernel matches its CPU reference in engine/cpu/ within
// the tolerances stated in tests/gpu/.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
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

// table (n_tokens, half) = (cos, sin) of inv_freq[i] * float(positions[t]), computed exactly as
// RopeInplace computes them: the angles of one step, made once and read by every layer's
// RopeKvAppend and PagedPrefillAttention (precise sinf/cosf cost more than the rotation).
Status RopeCosSinTable(const int32_t* positions, int64_t n_tokens, const float* inv_freq,
                       int64_t half, float2* table, cudaStream_t stream);

// --- rope_kv_append.cu ----------------------------------------------------------------------
// RopeInplace on the q and k heads of fused q|k|v rows (row t: n_q_heads, then n_kv_heads heads
// of k, then n_kv_heads of v, head_dim each, in row_stride floats), then KvAppend of the rotated
// k and of v (slot_mapping as KvAppend's; negative: rotated, not stored), in one pass with the
// same arithmetic as the two. rotate_q false leaves the q heads as they are (prefill: the
// attention kernel rotates q as it loads it, which saves a read and a write of every q row).
// cos_sin non-null: RopeCosSinTable's rows for these tokens, read instead of computing the
// angles (same values, so the same results bit for bit). k_cache and v_cache both null: rotated
// only, nothing stored (the FP8 cache: KvAppend's FP8 form stores the rotated rows after it).
Status RopeKvAppend(float* qkv, int64_t n_tokens, int64_t row_stride, int64_t n_q_heads,
                    int64_t n_kv_heads, int64_t head_dim, const int32_t* positions,
                    const float* inv_freq, const int64_t* slot_mapping, int64_t block_size,
                    __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, cudaStream_t stream,
                    bool rotate_q = true, const float2* cos_sin = nullptr);

// --- swiglu.cu -------------------------------------------------------------------------------
// out (n, inter) = silu(gate) * up, silu(g) = g / (1 + exp(-g)), where gate_up (n, 2 * inter)
// holds each row's gate in columns [0, inter) and its up in [inter, 2 * inter) (the output of
// the fused gate|up projection).
Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, float* out, cudaStream_t stream);
Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, __nv_bfloat16* out,
              cudaStream_t stream);
// The same over a bf16 gate|up (the prefill GEMM's output: half the bytes of fp32).
Status SwiGlu(const __nv_bfloat16* gate_up, int64_t n, int64_t inter, __nv_bfloat16* out,
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
// y += x w^T: the o and down projections adding into the residual stream.
Status GemvAccumulate(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t m, int64_t n,
                      int64_t k, float* y, cudaStream_t stream);

// --- decode_gemv.cu --------------------------------------------------------------------------
// The batch-1 (one token) decode projections, x read without staging, weights streamed from
// before the previous kernel ends (programmatic launch), the RMSNorm and SwiGLU folded in.
// k % 8 == 0 and 16-byte-aligned x, weights and norm weights; fp32 accumulation.
// y (n) += w (n, k) x, x (k) bf16 (the o and down projections into the residual stream).
Status DecodeGemvAccumulate(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t n, int64_t k,
                            float* y, cudaStream_t stream);
// FP8 weights (every form below has this overload too): w (n, k) e4m3 with w_scale (n) fp32, row
// r standing for w_scale[r] * w[r] (`rag quantize`'s per-output-channel scales); k % 16 == 0.
Status DecodeGemvAccumulate(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale,
                            int64_t n, int64_t k, float* y, cudaStream_t stream);
// Benchmarks: how many blocks an SM DecodeGemvAccumulate aims at when it splits K (default 8,
// <= 0 restores it); process-wide.
void SetDecodeGemvBlocksPerSm(int blocks);
// y (n) = w (n, k) xn, xn = x / sqrt(mean(x^2) + eps) * norm_w (AddRmsNorm's norm, not rounded
// to bf16), x (k) the fp32 residual stream.
Status RmsNormGemv(const float* x, const __nv_bfloat16* norm_w, float eps, const __nv_bfloat16* w,
                   int64_t n, int64_t k, float* y, cudaStream_t stream);
Status RmsNormGemv(const float* x, const __nv_bfloat16* norm_w, float eps, const __nv_fp8_e4m3* w,
                   const float* w_scale, int64_t n, int64_t k, float* y, cudaStream_t stream);
// RmsNormGemv of the fused q|k|v weight (n = (n_q_heads + 2 n_kv_heads) * head_dim rows) for
// one token, then RopeKvAppend's rotation and append of it (position, slot: one int32 and one
// int64 on the device, as RopeKvAppend's for n_tokens = 1): qkv (n) fp32 gets the rotated row,
// the caches the rotated k and the v (both caches null: nothing stored, as RopeKvAppend's).
// head_dim % 4 == 0.
Status RmsNormGemvRopeKv(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_bfloat16* w_qkv, int64_t k, int64_t n_q_heads,
                         int64_t n_kv_heads, int64_t head_dim, const int32_t* position,
                         const float* inv_freq, const int64_t* slot, int64_t block_size,
                         __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, float* qkv,
                         cudaStream_t stream);
Status RmsNormGemvRopeKv(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_fp8_e4m3* w_qkv, const float* w_scale, int64_t k,
                         int64_t n_q_heads, int64_t n_kv_heads, int64_t head_dim,
                         const int32_t* position, const float* inv_freq, const int64_t* slot,
                         int64_t block_size, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache,
                         float* qkv, cudaStream_t stream);
// act (inter) bf16 = silu(gate) * up with gate = w_gate_up[0, inter) xn and up = w_gate_up[inter,
// 2 inter) xn (xn as RmsNormGemv's): the fused gate|up projection, its norm and its SwiGLU.
Status RmsNormGemvSwiGlu(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_bfloat16* w_gate_up, int64_t inter, int64_t k,
                         __nv_bfloat16* act, cudaStream_t stream);
Status RmsNormGemvSwiGlu(const float* x, const __nv_bfloat16* norm_w, float eps,
                         const __nv_fp8_e4m3* w_gate_up, const float* w_scale, int64_t inter,
                         int64_t k, __nv_bfloat16* act, cudaStream_t stream);

// --- launch.cu -------------------------------------------------------------------------------
// Programmatic dependent launch of the decode-path kernels (kernels/launch.cuh): on by default
// where the GPU has it (Hopper and later); off gives plain launches (benchmarks compare both).
void SetProgrammaticLaunch(bool enabled);

// --- fill_random.cu --------------------------------------------------------------------------
// out[i] = bf16(mean + stddev * z_i), z_i standard normal from a hash of (seed, i): dummy
// weights drawn on the device (reproducible for a seed, whatever the launch geometry).
Status FillNormalBf16(__nv_bfloat16* out, int64_t n, uint64_t seed, float mean, float stddev,
                      cudaStream_t stream);
// FP8 dummy weights of (rows, cols): codes e4m3(z * 112) with z standard normal, every row's scale
// stddev / 112, so scale * code ~ normal(0, stddev) (saturating past 4 sigma).
Status FillNormalFp8(__nv_fp8_e4m3* codes, float* scales, int64_t rows, int64_t cols, uint64_t seed,
                     float stddev, cudaStream_t stream);

// --- dequantize.cu ---------------------------------------------------------------------------
// out (rows, cols) bf16 = scales[r] * codes[r][c]: an FP8 projection widened for a cuBLAS GEMM
// (prefill and batched decode steps of an FP8 model; one-token steps read the codes directly).
Status DequantizeFp8Rows(const __nv_fp8_e4m3* codes, const float* scales, int64_t rows,
                         int64_t cols, __nv_bfloat16* out, cudaStream_t stream);
// q (rows, cols) e4m3 and scale (rows): each row of x scaled by scale[r] = max|x[r]| / 448 and
// rounded to e4m3 (x[r][c] ~= scale[r] * q[r][c]): the activations of an FP8 GEMM
// (CudaMatMul::RunFp8). cols % 8 == 0.
Status QuantizeRowsFp8(const __nv_bfloat16* x, int64_t rows, int64_t cols, __nv_fp8_e4m3* q,
                       float* scale, cudaStream_t stream);
// y (m, n) = sx[i] * sw[j] * raw[i][j] (accumulate: y +=), the scales of an FP8 GEMM that ran
// with unit scales (Fp8MatMul with few rows). raw may be y itself, except when accumulating.
// n % 8 == 0; raw, y and sw 16-byte aligned.
Status ScaleFp8Product(const float* raw, int64_t m, int64_t n, const float* sx, const float* sw,
                       float* y, bool accumulate, cudaStream_t stream);
Status ScaleFp8Product(const __nv_bfloat16* raw, int64_t m, int64_t n, const float* sx,
                       const float* sw, __nv_bfloat16* y, cudaStream_t stream);

// --- gather_rows.cu --------------------------------------------------------------------------
// out (n_rows, dim) = in[rows[i]] for each i; rows (n_rows) int32 on the device, each a valid
// row of `in` (not checked: device memory).
Status GatherRows(const __nv_bfloat16* in, int64_t dim, const int32_t* rows, int64_t n_rows,
                  __nv_bfloat16* out, cudaStream_t stream);
Status GatherRows(const float* in, int64_t dim, const int32_t* rows, int64_t n_rows, float* out,
                  cudaStream_t stream);

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

// FP8 paged KV cache (`--kv-cache fp8`: half the bytes of bf16, so twice the tokens in the same
// memory and half the bytes each attention step reads). k and v hold e4m3 codes in the bf16
// cache's layout, and every row of head_dim codes (one token of one KV head) has one fp32 scale:
// element = code * scale. k_scale and v_scale are (num_blocks, n_kv_heads, block_size), so the
// scale of the row at cache offset `off` (in elements) is at off / head_dim. A scale per row,
// not one per tensor: nothing needs calibrating, and a row of small values keeps e4m3's relative
// precision (a fixed scale of 1 would send values under 2^-6 into the subnormals).
struct Fp8KvCache {
  __nv_fp8_e4m3* k;
  __nv_fp8_e4m3* v;
  float* k_scale;
  float* v_scale;
};
// KvAppend into the FP8 cache: each (token, KV head) row of k (and of v) gets the scale
// max |x| / 448 (0 for a row of zeros) and the codes of x * (448 / max |x|) in fp32, rounded to
// nearest even, saturating (tests/gpu/attention_test_util.h, QuantizeFp8Row, repeats this
// arithmetic bit for bit). Same arguments and checks as the bf16 form otherwise.
Status KvAppend(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int64_t* slot_mapping, int64_t n_tokens, int64_t n_kv_heads,
                int64_t head_dim, int64_t block_size, const Fp8KvCache& cache,
                cudaStream_t stream);

// --- decode_attention.cu ---------------------------------------------------------------------
// Decode attention, one query token per sequence, over the bf16 paged cache above:
// out[b] = softmax(q[b] k^T / sqrt(head_dim)) v over positions [0, context_lens[b]) of sequence
// b (the query's own k/v must already be appended); query head h reads KV head
// h / (n_heads / n_kv_heads). q: row b starts at q + b * q_stride, q_stride >= n_heads * head_dim
// (the q columns of a fused qkv row: q_stride = (n_heads + 2 * n_kv_heads) * head_dim);
// out (batch, n_heads * head_dim) bf16, contiguous. block_tables (batch, max_blocks_per_seq)
// int32 on the device, row-padded: row b's first ceil(context_lens[b] / block_size) entries are
// read. context_lens (batch) int32 on the device, clamped to [0, max_blocks_per_seq *
// block_size]; a length of 0 gives a row of zeros. head_dim % 32 == 0, head_dim <= 256;
// batch, n_heads <= 65535. fp32 arithmetic, online softmax.
// head_dim 64 and 128 split each context over several CTAs (split-KV) and merge the partial
// softmax states through `workspace`: PagedDecodeAttentionWorkspace(...) floats on the device
// (may be null when that is 0). The number of splits depends only on batch, n_heads, n_kv_heads,
// max_blocks_per_seq and block_size, never on context_lens, and nothing synchronises with the
// host or allocates: a captured call stays valid when the lengths in device memory change.
// Other head dims take one CTA per (head, sequence) and no workspace.
// Under programmatic dependent launch the kernel reads the cached K/V of positions before
// context_lens[b] - 1 before the previous kernel on the stream has finished: only the newest
// position of each sequence may be written by that kernel (as the decode step's RoPE + append).
// split_counters (batch * n_heads int32 on the device, all zero before the first call; every
// call leaves them zero) lets the last split of each head group merge the splits itself instead
// of a second kernel doing it; null: the second kernel.

// Workspace (floats) PagedDecodeAttention needs for these sizes (0 when it needs none). It also
// covers every smaller batch with the same other sizes (size it for the largest batch bucket).
int64_t PagedDecodeAttentionWorkspace(int64_t batch, int64_t n_heads, int64_t n_kv_heads,
                                      int64_t head_dim, int64_t max_blocks_per_seq,
                                      int64_t block_size);
// Benchmarks: about how many (split, head) pairs a call aims for (default 2048, <= 0 restores
// it); process-wide, set before sizing workspaces.
void SetDecodeAttentionSplitTarget(int64_t head_splits);
// Benchmarks: where few CTAs would each walk a long run of the context, the most 32-position
// tiles a split walks (by default 16 for the SIMT kernel, 64 for the tensor-core one; 0: never
// cut, the pair target alone; < 0 restores the defaults). Process-wide, likewise.
void SetDecodeAttentionMaxTilesPerSplit(int64_t tiles);
// Benchmarks and tests: whether the cache (FP8 or bf16) at head_dim 128 takes the tensor-core
// kernels (default) or the fp32 SIMT one. Process-wide.
void SetDecodeAttentionTensorCores(bool enabled);
Status PagedDecodeAttention(const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens,
                            int64_t batch, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                            int64_t block_size, float* workspace, __nv_bfloat16* out,
                            cudaStream_t stream, int32_t* split_counters = nullptr);
// The same over the FP8 cache (Fp8KvCache above): each score q . k is taken over the codes and
// multiplied by the key row's scale, each probability by the value row's scale before it weighs
// the codes of v (the softmax sum uses the probabilities themselves). head_dim 128 (with q
// 16-byte aligned, q_stride % 4 == 0) runs on tensor cores: q and the weighted probabilities
// rounded to f16, fp32 sums (decode_attention_mma.cu); other shapes fp32 throughout.
Status PagedDecodeAttention(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                            const int32_t* block_tables, int64_t max_blocks_per_seq,
                            const int32_t* context_lens, int64_t batch, int64_t n_heads,
                            int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                            float* workspace, __nv_bfloat16* out, cudaStream_t stream,
                            int32_t* split_counters = nullptr);

// --- prefill_attention.cu --------------------------------------------------------------------
// Prefill attention over the paged cache: sequence s contributes q_lens[s] query rows
// (consecutive rows of q, starting at row q_offsets[s]) at positions start_pos[s],
// start_pos[s]+1, ...; each query attends causally to positions [0, its position] of its
// sequence, whose K/V (its own chunk included) are already appended to the cache.
// q: row i starts at q + i * q_stride, q_stride >= n_heads * head_dim; out (total rows,
// n_heads * head_dim) bf16, contiguous, row i answering q row i (rows of no sequence are not
// written). q_offsets, q_lens, start_pos (n_seqs) and block_tables (n_seqs, max_blocks_per_seq)
// are int32 on the device and not checked: q_lens[s] <= max_q_len, and the table row of s covers
// position start_pos[s] + q_lens[s] - 1. max_q_len, the host-known maximum of q_lens, sets the
// grid. head_dim % 32 == 0, head_dim <= 256; n_seqs, n_heads <= 65535. Softmax in fp32.
// head_dim 64 and 128 run flash-attention 2 on tensor cores (q and the probabilities rounded to
// bf16 for the two products, fp32 accumulation and softmax: a few 1e-3 relative error); other
// head dims, unaligned pointers or a build without sm_80 code take the simple kernel below.
// No host synchronisation and no allocation, but the first call on each device raises the
// tensor-core kernel's shared-memory limit (cudaFuncSetAttribute, a host call that waits for
// pending copies): run one call eagerly on a device before capturing one in a CUDA graph.
// q_rope_cos_sin non-null: the q rows are not yet rotated, and q row i is rotated as it is loaded
// with the (cos, sin) of row i of this table (RopeCosSinTable's, (q rows, head_dim / 2), at the
// rows' positions): RopeInplace's arithmetic (RopeKvAppend with rotate_q false did k only).
Status PagedPrefillAttention(const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                             const __nv_bfloat16* v_cache, const int32_t* block_tables,
                             int64_t max_blocks_per_seq, const int32_t* q_offsets,
                             const int32_t* q_lens, const int32_t* start_pos, int64_t n_seqs,
                             int64_t max_q_len, int64_t n_heads, int64_t n_kv_heads,
                             int64_t head_dim, int64_t block_size, __nv_bfloat16* out,
                             cudaStream_t stream, const float2* q_rope_cos_sin = nullptr);
// Benchmarks and tests: which tensor-core kernel runs head_dim 64 and 128. 16 or 32 query rows a
// warp of the mma.sync kernel (16: Q in registers, 64 rows a CTA; 32: Q in shared memory, 128
// rows a CTA, each K/V fragment read from shared memory feeds twice the tensor-core work); 64:
// the warpgroup kernel (wgmma, 64 rows a warpgroup, head_dim 128 on a compute capability 9.0
// GPU with this build's sm_90a code; 32 where it is not usable); anything else restores the
// default, 64 where usable, else 32. Process-wide.
void SetPrefillAttentionRowsPerWarp(int rows);
// Whether the warpgroup kernel runs on the current device (sm_90a code in this build, a compute
// capability 9.0 GPU).
bool PrefillAttentionWarpgroupKernelUsable();
// The simple kernel alone, same contract: one warp per (query row, head), fp32 throughout, slow.
// PagedPrefillAttention's fallback, declared so that tests can hold the fast path against it.
Status PagedPrefillAttentionSimple(const float* q, int64_t q_stride,
                                   const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                                   const int32_t* block_tables, int64_t max_blocks_per_seq,
                                   const int32_t* q_offsets, const int32_t* q_lens,
                                   const int32_t* start_pos, int64_t n_seqs, int64_t max_q_len,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                                   const float2* q_rope_cos_sin = nullptr);
// Both over the FP8 cache (Fp8KvCache above): K/V elements are code * row scale. The tensor-core
// path widens each K/V tile to bf16 (code * scale, rounded) as it copies it into shared memory,
// where the bf16 path copies with cp.async; the rest is unchanged. The simple path computes in
// fp32 from code * scale.
Status PagedPrefillAttention(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                             const int32_t* block_tables, int64_t max_blocks_per_seq,
                             const int32_t* q_offsets, const int32_t* q_lens,
                             const int32_t* start_pos, int64_t n_seqs, int64_t max_q_len,
                             int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                             int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                             const float2* q_rope_cos_sin = nullptr);
Status PagedPrefillAttentionSimple(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                                   const int32_t* block_tables, int64_t max_blocks_per_seq,
                                   const int32_t* q_offsets, const int32_t* q_lens,
                                   const int32_t* start_pos, int64_t n_seqs, int64_t max_q_len,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                                   const float2* q_rope_cos_sin = nullptr);

// --- bert.cu ---------------------------------------------------------------------------------
// The BERT encoder's kernels (engine/cuda/cuda_bert.cc), fp32 throughout, over packed batches:
// the T token rows of all sequences back to back, sequence s owning rows [starts[s],
// starts[s + 1]). All pointers are device memory; hidden size H, intermediate size I.
//
// x (T, H) = LayerNorm(word[ids[t]] + pos[positions[t]] + type[0]) * g + b (transformers'
// BertEmbeddings with token type 0; LayerNorm over the row, biased variance, eps inside the
// sqrt). ids and positions (T) int32, assumed valid (checked on the host).
Status BertEmbedLayerNorm(const int32_t* ids, const int32_t* positions, int64_t T, int64_t H,
                          const float* word, const float* pos, const float* type,
                          const float* g, const float* b, float eps, float* x,
                          cudaStream_t stream);
// y (T, N) += bias (N) per row, then (gelu) y = 0.5 y (1 + erf(y / sqrt(2))), in place.
Status BiasGelu(float* y, const float* bias, int64_t T, int64_t N, bool gelu, cudaStream_t stream);
// x (T, H) = LayerNorm(x + y + bias) * g + b per row (the residual stream x updated in place; y
// the sublayer's output before its bias).
Status BiasResidualLayerNorm(float* x, const float* y, const float* bias, const float* g,
                             const float* b, int64_t T, int64_t H, float eps, cudaStream_t stream);
// Bidirectional multi-head attention within each sequence: qkv (T, 3H) holds each row's q, k, v
// (biases added), head h at columns [h d, h d + d) of each third, d = H / heads; ctx (T, H)
// gets softmax(q k^T / sqrt(d)) v per sequence and head. starts (n_seqs + 1) int32 on the device.
// d % 32 == 0 and d <= 128; sequences up to 65535 tokens.
Status BertAttention(const float* qkv, const int32_t* starts, int64_t n_seqs, int64_t max_len,
                     int64_t heads, int64_t H, float* ctx, cudaStream_t stream);

// --- sampling.cu -----------------------------------------------------------------------------
// The next token of each row of fp32 logits (rows, vocab), row-major: ids (rows) int32 on the
// device. 0 <= rows <= 65535, 1 <= vocab <= kSampleMaxVocab. Deterministic (the same inputs give
// the same ids on every run) and graph-capturable: no host synchronisation, no allocation (the
// first call on a device also raises a kernel's shared-memory limit, a host-side attribute:
// make it before capturing, as a warm-up step does). One cluster of up to 8 thread blocks per
// row. NaN logits have no defined place in the order; the id is then some id in [0, vocab).
inline constexpr int64_t kSampleMaxVocab = int64_t{1} << 23;

// Greedy: ids[r] = argmax of row r (the lowest index among equal maxima, as torch.argmax and the
// CPU sampler; -0 equals +0).
Status ArgmaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                  cudaStream_t stream);

// Per-row sampling parameters (device arrays of `rows` entries each): temperature (<= 0 means
// greedy for that row), top_k (<= 0: off), top_p (>= 1: off), and uniforms: one uniform random
// number in [0, 1) per row drawn by the caller (so results are reproducible and testable).
// NaN temperature is greedy, NaN top_p is off, top_p <= 0 keeps the top token alone.
// engine/sampler.cc's semantics (transformers' order), exactly in what is kept:
//   s = logits / temperature in fp32; tokens ranked by s descending, equal s by ascending index
//     (the CPU sampler's sort leaves equal values in an unspecified order; this is the stable
//     one, and the one ArgmaxRows uses);
//   top-k keeps exactly the first min(top_k, vocab) of that order, as the CPU sampler
//     (transformers' TopKLogitsWarper would also keep every token tied with the k-th);
//   top-p keeps the shortest prefix of those whose probability, renormalised over them, reaches
//     top_p (the token that crosses top_p is kept, at least one token is), as both;
//   the draw: the kept tokens in ascending index order (not the CPU sampler's rank order: the
//     distribution is the same, the uniform-to-token map is not), the first whose cumulative
//     probability exceeds uniform * (their total).
// top_k == 1 gives the argmax of s. Probabilities are exp(s - max s) in fp32, summed exactly in
// fixed point (units of 2^-40 of the top token's weight; a token below half a unit is never
// drawn). Rows whose largest s is not finite (overflow, NaN, all -inf) take the argmax of s. A
// uniform outside [0, 1) is clamped into it.
// Workspace floats needed (0 if none): the kernels need none today; pass null or any buffer.
int64_t SampleRowsWorkspace(int64_t rows, int64_t vocab);
Status SampleRows(const float* logits, int64_t rows, int64_t vocab, const float* temperature,
                  const int32_t* top_k, const float* top_p, const float* uniforms,
                  float* workspace, int32_t* ids, cudaStream_t stream);

// --- peer_collectives.cu -----------------------------------------------------------------------
// Tensor parallelism's collectives over peer memory (the GPUs of one process, peer access on):
// ranks 0..world-1, each with a signal area of TpSignalBytes() zeroed device bytes that every
// rank can write. Every rank calls the same collective with the same shapes in the same order.
constexpr int kMaxTpWorld = 8;
constexpr int kTpSignalBlocks = 64;  // blocks a collective uses at most
struct TpPeerSignals {
  int rank = 0, world = 1;
  uint32_t* signals[kMaxTpWorld] = {};  // every rank's signal area
};
struct TpPeerBuffers {
  float* p[kMaxTpWorld] = {};  // one buffer of each rank (the same role on every rank)
};
size_t TpSignalBytes();
// x (count) += partial_0 + ... + partial_{world-1} (summed in rank order: every rank gets the
// same bits); then zero (zero_count floats of this rank, or null) is zeroed, which is safe for a
// buffer the peers read in the previous collective.
Status PeerAllReduceAdd(const TpPeerSignals& signals, const TpPeerBuffers& partial, float* x,
                        int64_t count, float* zero, int64_t zero_count, cudaStream_t stream);
// out (rows, out_cols) = the ranks' local (rows, cols) side by side, cropped to out_cols
// (the vocabulary-split logits gathered; the last rank's slice may be padded).
Status PeerGatherColumns(const TpPeerSignals& signals, const TpPeerBuffers& local, float* out,
                         int64_t rows, int64_t cols, int64_t out_cols, cudaStream_t stream);
// x (count) += y (the residual add after NCCL's all-reduce).
Status AddInPlace(float* x, const float* y, int64_t count, cudaStream_t stream);
// x (count, fp32) += y (bf16): the residual add after a bf16 all-reduce of prefill partial sums.
Status AddInPlace(float* x, const __nv_bfloat16* y, int64_t count, cudaStream_t stream);

}  // namespace rag
