#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/logging.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/parallel.h"
#include "engine/cpu/rope.h"
#include "engine/safetensors.h"

namespace rag {
namespace {

// out = x / sqrt(mean(x^2) + eps) * weight, as transformers' LlamaRMSNorm in fp32.
void RmsNorm(const float* x, const float* weight, int64_t dim, double eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * r);
}

class CpuBackend : public Backend {
 public:
  CpuBackend(ModelConfig config, CpuWeights weights, const CpuBackendOptions& options)
      : config_(std::move(config)), w_(std::move(weights)) {
    int threads = options.num_threads > 0
                      ? options.num_threads
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (threads > 1) pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(threads - 1));
    shape_ = {config_.num_attention_heads, config_.num_key_value_heads, config_.head_dim,
              options.block_size};
    num_blocks_ = options.num_blocks;
    if (num_blocks_ <= 0) {
      int64_t tokens = std::min<int64_t>(config_.max_position_embeddings, 8192);
      num_blocks_ = static_cast<int>((tokens + options.block_size - 1) / options.block_size);
    }
    layer_floats_ = static_cast<size_t>(num_blocks_) * shape_.n_kv_heads * shape_.block_size *
                    shape_.head_dim;
    k_cache_.assign(layer_floats_ * static_cast<size_t>(config_.num_hidden_layers), 0.0f);
    v_cache_.assign(layer_floats_ * static_cast<size_t>(config_.num_hidden_layers), 0.0f);
    inv_freq_ = ComputeRopeInvFreq(config_);
  }

  const ModelConfig& config() const override { return config_; }
  BackendInfo info() const override {
    return {"cpu", static_cast<int>(shape_.block_size), num_blocks_};
  }

  StatusOr<std::vector<float>> Forward(const ForwardBatch& batch) override;

 private:
  ModelConfig config_;
  CpuWeights w_;
  std::unique_ptr<ThreadPool> pool_;  // num_threads - 1 workers; the caller is the last one
  AttentionShape shape_;
  int num_blocks_ = 0;
  size_t layer_floats_ = 0;
  std::vector<float> k_cache_;  // (layers, num_blocks, n_kv_heads, block_size, head_dim)
  std::vector<float> v_cache_;  // (layers, num_blocks, n_kv_heads, block_size, head_dim)
  std::vector<float> inv_freq_;  // (head_dim / 2)
};

StatusOr<std::vector<float>> CpuBackend::Forward(const ForwardBatch& batch) {
  RAG_RETURN_IF_ERROR(ValidateForwardBatch(batch, config_, shape_.block_size, num_blocks_));
  const ModelConfig& c = config_;
  const int64_t dim = c.hidden_size, hd = c.head_dim, half = hd / 2;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  const int64_t qkv_dim = q_dim + 2 * kv_dim, inter = c.intermediate_size;
  ThreadPool* pool = pool_.get();

  // Flatten the batch: row t of every activation is one new token.
  std::vector<AttentionQuery> queries;
  std::vector<int64_t> logit_rows;  // rows whose logits are returned, in output order
  for (const SequenceInput& seq : batch.sequences) {
    for (size_t i = 0; i < seq.tokens.size(); ++i) {
      if (seq.all_logits || i + 1 == seq.tokens.size()) {
        logit_rows.push_back(static_cast<int64_t>(queries.size()));
      }
      queries.push_back({seq.start_pos + static_cast<int64_t>(i), &seq.block_table});
    }
  }
  const int64_t n = static_cast<int64_t>(queries.size());

  std::vector<float> x(static_cast<size_t>(n * dim));         // (n, dim) residual stream
  std::vector<float> xn(static_cast<size_t>(n * dim));        // (n, dim) normed
  std::vector<float> qkv(static_cast<size_t>(n * qkv_dim));   // (n, q_dim + 2 * kv_dim)
  std::vector<float> q(static_cast<size_t>(n * q_dim));       // (n, q_dim)
  std::vector<float> attn(static_cast<size_t>(n * q_dim));    // (n, q_dim)
  std::vector<float> proj(static_cast<size_t>(n * dim));      // (n, dim)
  std::vector<float> gate_up(static_cast<size_t>(n * 2 * inter));  // (n, 2 * inter)
  std::vector<float> act(static_cast<size_t>(n * inter));     // (n, inter)
  std::vector<float> cos(static_cast<size_t>(n * half)), sin(static_cast<size_t>(n * half));

  {
    int64_t t = 0;
    for (const SequenceInput& seq : batch.sequences) {
      for (int32_t token : seq.tokens) {
        std::memcpy(&x[t * dim], &w_.embedding[static_cast<size_t>(token) * dim], sizeof(float) * dim);
        RopeCosSin(inv_freq_, queries[t].pos, &cos[t * half], &sin[t * half]);
        ++t;
      }
    }
  }

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const CpuLayerWeights& lw = w_.layers[static_cast<size_t>(l)];
    const KvCacheLayer cache{k_cache_.data() + l * layer_floats_, v_cache_.data() + l * layer_floats_};

    for (int64_t t = 0; t < n; ++t) RmsNorm(&x[t * dim], lw.attn_norm.data(), dim, c.rms_norm_eps, &xn[t * dim]);
    MatMul(xn.data(), n, dim, lw.wqkv.data(), qkv_dim, qkv.data(), pool);
    for (int64_t t = 0; t < n; ++t) {
      float* row = &qkv[t * qkv_dim];
      ApplyRope(row, c.num_attention_heads, hd, &cos[t * half], &sin[t * half]);          // q
      ApplyRope(row + q_dim, c.num_key_value_heads, hd, &cos[t * half], &sin[t * half]);  // k
      std::memcpy(&q[t * q_dim], row, sizeof(float) * q_dim);
      WriteKv(cache, shape_, *queries[t].block_table, queries[t].pos, row + q_dim, row + q_dim + kv_dim);
    }
    PagedAttention(cache, shape_, queries, q.data(), attn.data(), pool);
    MatMul(attn.data(), n, q_dim, lw.wo.data(), dim, proj.data(), pool);
    for (int64_t i = 0; i < n * dim; ++i) x[i] += proj[i];

    for (int64_t t = 0; t < n; ++t) RmsNorm(&x[t * dim], lw.mlp_norm.data(), dim, c.rms_norm_eps, &xn[t * dim]);
    MatMul(xn.data(), n, dim, lw.w_gate_up.data(), 2 * inter, gate_up.data(), pool);
    for (int64_t t = 0; t < n; ++t) {
      const float* g = &gate_up[t * 2 * inter];
      const float* u = g + inter;
      float* a = &act[t * inter];
      for (int64_t i = 0; i < inter; ++i) a[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];  // SiLU(g) * u
    }
    MatMul(act.data(), n, inter, lw.w_down.data(), dim, proj.data(), pool);
    for (int64_t i = 0; i < n * dim; ++i) x[i] += proj[i];
  }

  const int64_t rows = static_cast<int64_t>(logit_rows.size());
  std::vector<float> final_x(static_cast<size_t>(rows * dim));  // (rows, dim)
  for (int64_t r = 0; r < rows; ++r) {
    RmsNorm(&x[logit_rows[r] * dim], w_.final_norm.data(), dim, c.rms_norm_eps, &final_x[r * dim]);
  }
  std::vector<float> logits(static_cast<size_t>(rows * c.vocab_size));  // (rows, vocab)
  MatMul(final_x.data(), rows, dim, w_.lm_head_data(), c.vocab_size, logits.data(), pool);
  return logits;
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const std::string& model_dir,
                                                    const CpuBackendOptions& options) {
  if (options.block_size <= 0) return InvalidArgument("cpu backend: block_size must be positive");
  RAG_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::OpenDir(model_dir));
  RAG_ASSIGN_OR_RETURN(CpuWeights weights, LoadCpuWeights(config, *reader));
  RAG_LOG(DEBUG) << "cpu backend: loaded " << model_dir << " (" << config.num_hidden_layers
                 << " layers, weights converted to fp32)";
  return std::unique_ptr<Backend>(new CpuBackend(std::move(config), std::move(weights), options));
}

StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(ModelConfig config, CpuWeights weights,
                                                    const CpuBackendOptions& options) {
  if (options.block_size <= 0) return InvalidArgument("cpu backend: block_size must be positive");
  return std::unique_ptr<Backend>(new CpuBackend(std::move(config), std::move(weights), options));
}

}  // namespace rag
