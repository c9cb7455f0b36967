// The CUDA backend: the Llama forward pass on one GPU, bf16 weights and KV cache, fp32
// residual stream and accumulation. One CUDA stream; every step is enqueued without host
// synchronisation until its logits are read.
//
// Two paths per step (DESIGN.md section 5):
//  - decode (every sequence feeds one token): batch padded to a bucket (1, 2, 4, 8, 16, 24,
//    32, 48, 64), the whole step (embedding to logits and argmax) replayed from a CUDA graph
//    captured on the bucket's first use; GEMV projections up to gemv_max_rows rows, cuBLAS above; paged
//    decode attention with split-KV;
//  - prefill / mixed (chunked prompts, several sequences): cuBLAS GEMMs and the paged
//    flash-style prefill attention; the vocabulary projection runs only on the rows whose
//    logits are returned.
// Keys and values of every new token are appended to the paged cache of engine/backend.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_weights.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/fp8_matmul.h"
#include "engine/cuda/matmul.h"
#include "engine/cuda/tp_collectives.h"
#include "engine/kv_cache_type.h"
#include "kernels/kernels.h"

namespace rag {

struct CudaBackendOptions {
  int device = 0;
  int block_size = 16;          // token slots per KV block
  int max_seq_len = 0;          // tokens per sequence; 0: min(max_position_embeddings, 16384)
  int max_batch_tokens = 4096;  // tokens fed in one Forward, all sequences together
  int max_batch_seqs = 64;      // sequences in one Forward
  int max_logit_rows = 256;     // logit rows one Forward returns (all_logits counts every row)
  // The KV cache gets the memory left after weights and buffers, up to this fraction of the
  // device (as vLLM's gpu_memory_utilization), and at most what max_batch_seqs sequences of
  // max_seq_len tokens can use. num_blocks > 0 sets the block count instead.
  double memory_fraction = 0.9;
  int num_blocks = 0;
  bool cuda_graphs = true;  // replay decode steps from CUDA graphs (off: enqueue every kernel)
  // Steps of up to this many tokens take our GEMVs, larger ones cuBLAS (0..8). 1: on an H100
  // our GEMV loses to cuBLAS from 2 rows on (8B shape, batch 8: 33.4 ms a step against 8.3 ms;
  // x is staged in every block of the GEMV, 8 rows of it cost more than they save).
  int gemv_max_rows = 1;
  // One-token steps fold the RMSNorms and the SwiGLU into the GEMVs (kernels/decode_gemv.cu);
  // off: the separate kernels (benchmark comparisons).
  bool fused_gemv = true;
  // A rank of a tensor-parallel group (engine/dist/tp_backend.h; not owned): the config and
  // weights are then this rank's slices (engine/dist/tp_plan.h's RankConfig), the o and down
  // projections write partial sums that the collectives add into the residual stream, and the
  // rank's vocabulary slice of logits is gathered into the whole row. Null: one GPU.
  TpCollectives* collectives = nullptr;
  // Tensor parallel steps that run cuBLAS (prefill): the o and down GEMMs write bf16 partial
  // sums and the all-reduce moves bf16, added into the fp32 residual stream (half of NCCL's
  // 64 MB an all-reduce for 2048 tokens at the 70B shape, 160 a prefill); false: fp32 sums.
  bool tp_bf16_prefill_sums = true;
  // FP8 models: steps that take GEMMs (prefill, batched decode) quantize the activations per row
  // and run cuBLASLt FP8 GEMMs (engine/cuda/fp8_matmul.h); false: each projection is widened
  // to bf16 for a bf16 GEMM (the former path; `rag bench --no-fp8-gemm`).
  bool fp8_gemm = true;
  // FP8 GEMMs of at most this many rows run with unit scales and apply the row scales in a
  // kernel after (Fp8MatMul::SetUnitScaleMaxRows); -1: Fp8MatMul's default, 0: never
  // (`rag bench --fp8-unit-rows N`).
  int64_t fp8_unit_scale_max_rows = -1;
  KvCacheType kv_cache = KvCacheType::kAuto;  // engine/kv_cache_type.h
};

// What `rag bench`, the tests and the server need of a GPU backend, on one GPU or several.
class GpuBackend : public Backend {
 public:
  // Greedy decoding on the device (benchmarks, parity tests): every sequence of `batch` feeds
  // one token (its last prompt token or the token sampled from its prefill), then `steps`
  // decode steps run back to back, each step's argmax fed to the next without a host round
  // trip. Block tables must cover start_pos + steps positions. Returns, per sequence, the
  // argmax of each step (steps ids).
  virtual StatusOr<std::vector<std::vector<int32_t>>> GreedyDecode(const ForwardBatch& batch,
                                                                   int steps) = 0;
  // Device memory of one GPU (the first, on several) taken by weights and by the KV cache.
  virtual size_t weight_bytes() const = 0;
  virtual size_t kv_cache_bytes() const = 0;
  virtual bool fp8_weights() const = 0;
  virtual bool fp8_kv_cache() const = 0;
  virtual int gpus() const { return 1; }
};

class CudaBackend : public GpuBackend {
 public:
  ~CudaBackend() override;

  const ModelConfig& config() const override { return config_; }
  BackendInfo info() const override {
    return {"cuda", options_.block_size, num_blocks_, options_.max_batch_tokens,
            options_.max_batch_seqs};
  }
  StatusOr<std::vector<float>> Forward(const ForwardBatch& batch) override;

  StatusOr<std::vector<std::vector<int32_t>>> GreedyDecode(const ForwardBatch& batch,
                                                           int steps) override;

  // Enqueues a forward pass and the argmax of its logit rows and waits for it (prefill timing
  // in benchmarks): returns the argmax ids, one per logit row.
  bool HasForwardArgmax() const override { return true; }
  StatusOr<std::vector<int32_t>> ForwardArgmax(const ForwardBatch& batch) override;
  // The same with SampleRows (kernels/kernels.h) drawing each logit row's token on the device.
  bool HasForwardSample() const override { return true; }
  StatusOr<std::vector<int32_t>> ForwardSample(const ForwardBatch& batch,
                                               const std::vector<DeviceSampling>& rows) override;

  size_t weight_bytes() const override {
    return weights_.storage.bytes() + weights_.fp8_storage.bytes();
  }
  bool fp8_weights() const override { return weights_.fp8; }
  bool fp8_kv_cache() const override { return kv_fp8_; }
  size_t kv_cache_bytes() const override { return kv_cache_.bytes(); }
  int max_seq_len() const { return max_seq_len_; }

 private:
  friend StatusOr<std::unique_ptr<CudaBackend>> CreateCudaBackend(ModelConfig config,
                                                                  CudaWeights weights,
                                                                  const CudaBackendOptions& options);
  CudaBackend(ModelConfig config, CudaWeights weights, const CudaBackendOptions& options);
  Status Init();

  struct StepPlan;
  // Byte offsets of the step metadata sections, the same in the pinned host image and on the
  // device (the decode graphs bake the device addresses in); fixed at Init from the maxima.
  struct MetaLayout {
    size_t slots, tokens, positions, context_lens, q_offsets, q_lens, start_pos, logit_rows,
        tables, total;
  };
  // T tokens, S sequences, R logit rows, W blocks per sequence at most.
  static MetaLayout LayoutMeta(int64_t T, int64_t S, int64_t R, int64_t W);
  StatusOr<StepPlan> Plan(const ForwardBatch& batch, bool tokens_on_device) const;
  Status Upload(const StepPlan& plan);
  Status Enqueue(const StepPlan& plan);  // layers, logits and argmax
  Status EnqueueLayers(const StepPlan& plan);
  Status EnqueueMlp(const CudaLayerWeights& w, float* x, int64_t n, bool gemv);
  // Tensor parallel: where the o / down projection of n rows writes (its partial buffer; x
  // itself on one GPU, accumulated into), and the all-reduce that adds the partials into x
  // (nothing on one GPU).
  bool tensor_parallel() const { return options_.collectives != nullptr; }
  Status ReduceInto(float* partial, float* x, int64_t n, float* zero_next);
  // The vocabulary projection of R normed rows (or, fused, of the residual row x) into logits_,
  // gathered from the ranks under tensor parallelism, then their argmax.
  Status EnqueueLogits(const __nv_bfloat16* rows, const float* x_fused, int64_t R);
  // A projection as bf16 for a GEMM: `w` itself, or (FP8 model) m widened into fp8_scratch_,
  // which the next call overwrites (stream order keeps the GEMM in between safe).
  // y (m, rows) = x (m, cols) times a projection transposed: bf16 `w` through CudaMatMul, or an
  // FP8 model's w8 through Fp8MatMul (more than gemv_max_rows rows) or widened by Bf16Weight.
  Status Project(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, const CudaFp8Matrix& w8, int64_t rows,
                 int64_t cols, float* y, bool accumulate = false);
  Status Project(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, const CudaFp8Matrix& w8, int64_t rows,
                 int64_t cols, __nv_bfloat16* y);
  bool UseFp8Gemm(const __nv_bfloat16* w, int64_t m, int64_t rows, int64_t cols) const;
  // x (n, dim) += in (n, cols) times a (dim, cols) projection transposed (the o and down
  // projections): on one GPU straight into x; under tensor parallelism as this rank's partial
  // sum in `partial` (a registered buffer), all-reduced into x, as bf16 when bf16_sums.
  Status ProjectIntoResidual(const __nv_bfloat16* in, int64_t n, const __nv_bfloat16* w, const CudaFp8Matrix& w8,
                             int64_t cols, float* partial, float* x, bool bf16_sums);
  StatusOr<const __nv_bfloat16*> Bf16Weight(const __nv_bfloat16* w, const CudaFp8Matrix& m,
                                            int64_t rows, int64_t cols);
  Status RunStep(const StepPlan& plan);  // graph replay or Enqueue
  // The bf16 cache of a layer (null with the FP8 cache), and the FP8 cache's (kv_fp8_ only).
  __nv_bfloat16* KCache(int64_t layer) const;
  __nv_bfloat16* VCache(int64_t layer) const;
  Fp8KvCache Fp8Cache(int64_t layer) const;
  // Bytes of one layer's K and V for one block (codes and scales with the FP8 cache).
  size_t KvLayerBlockBytes() const;

  ModelConfig config_;
  CudaWeights weights_;
  CudaBackendOptions options_;
  int max_seq_len_ = 0;
  int max_blocks_per_seq_ = 0;
  int num_blocks_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CudaMatMul> matmul_;
  std::unique_ptr<Fp8MatMul> fp8_matmul_;  // FP8 model with options_.fp8_gemm on a GPU that has it
  // bf16: (layers, 2, num_blocks, n_kv_heads, block_size, head_dim). FP8: per layer the K
  // codes, the V codes (that shape, one byte each), then the K and V row scales (num_blocks,
  // n_kv_heads, block_size) fp32.
  DeviceBuffer kv_cache_;
  bool kv_fp8_ = false;       // options_.kv_cache resolved at Init
  DeviceBuffer activations_;  // the per-token buffers below
  DeviceBuffer fp8_scratch_;  // FP8 model: the largest projection in bf16 (Bf16Weight)
  float* x_ = nullptr;             // (T, dim) residual stream
  __nv_bfloat16* xn_ = nullptr;    // (T, dim) normed, the projections' input
  float* qkv_ = nullptr;           // (T, q_dim + 2 kv_dim)
  __nv_bfloat16* attn_ = nullptr;  // (T, q_dim)
  float* gate_up_ = nullptr;       // (T, 2 inter) fp32 (GEMV path) or bf16 (cuBLAS path)
  __nv_bfloat16* gate_up_bf16() const { return reinterpret_cast<__nv_bfloat16*>(gate_up_); }
  // Whether a step's o and down projections hand bf16 partial sums to the all-reduce (tensor
  // parallel cuBLAS steps, options_.tp_bf16_prefill_sums).
  bool Bf16Sums(bool gemv) const { return tensor_parallel() && !gemv && options_.tp_bf16_prefill_sums; }
  __nv_bfloat16* act_ = nullptr;   // (T, inter)
  __nv_bfloat16* xl_ = nullptr;    // (R, dim) rows whose logits are returned
  float* x_rows_ = nullptr;        // (R, dim) their residual stream in the last layer (prefill)
  __nv_bfloat16* attn_rows_ = nullptr;  // (R, q_dim) their attention output there
  float* partial_o_ = nullptr;     // tensor parallel: (max(T, R), dim) the o projection's part
  float* partial_down_ = nullptr;  // and the down projection's (peers read them: two in turn)
  float* logits_local_ = nullptr;  // tensor parallel: (R, lm_rows_) this rank's vocabulary slice
  int64_t lm_rows_ = 0;            // rows of weights_.lm_head (the vocabulary on one GPU)
  float* logits_ = nullptr;        // (R, vocab)
  int32_t* argmax_ = nullptr;      // (R)
  float* attn_workspace_ = nullptr;
  int32_t* attn_split_counters_ = nullptr;  // PagedDecodeAttention's, zeroed at Init
  float* inv_freq_ = nullptr;      // (head_dim / 2)
  float2* rope_table_ = nullptr;   // (T, head_dim / 2) cos, sin of a prefill step's positions
  int64_t max_logit_rows_ = 0;     // logit rows one step can hold (R)
  MetaLayout meta_layout_{};
  DeviceBuffer meta_;              // step metadata (layout: meta_layout_), uploaded per step
  PinnedBuffer meta_host_;
  PinnedBuffer logits_host_;
  char* sampling_ = nullptr;       // ForwardSample's parameters on the device (4 R values)
  PinnedBuffer sampling_host_;
  std::map<int, cudaGraphExec_t> graphs_;  // decode bucket -> captured step
};

// Loads a Hugging Face model directory (config.json + safetensors) onto the GPU.
StatusOr<std::unique_ptr<CudaBackend>> CreateCudaBackend(const std::string& model_dir,
                                                         const CudaBackendOptions& options);
// A backend over weights already on the device (dummy weights, a GGUF file's weights).
StatusOr<std::unique_ptr<CudaBackend>> CreateCudaBackend(ModelConfig config, CudaWeights weights,
                                                         const CudaBackendOptions& options);

// True when a CUDA device is usable.
bool CudaDeviceAvailable();

}  // namespace rag
