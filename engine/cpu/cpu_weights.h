// The Llama weights of the CPU backend, converted to fp32 and fused where one matmul can
// serve several projections (QKV; gate and up).
#pragma once

#include <vector>

#include "common/status.h"
#include "engine/gguf.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace rag {

struct CpuLayerWeights {
  std::vector<float> attn_norm;  // (dim)
  std::vector<float> wqkv;       // (q_dim + 2 * kv_dim, dim): q_proj, k_proj, v_proj rows
  std::vector<float> wo;         // (dim, q_dim)
  std::vector<float> mlp_norm;   // (dim)
  std::vector<float> w_gate_up;  // (2 * intermediate, dim): gate_proj rows, then up_proj rows
  std::vector<float> w_down;     // (dim, intermediate)
};

struct CpuWeights {
  std::vector<float> embedding;  // (vocab, dim)
  std::vector<CpuLayerWeights> layers;
  std::vector<float> final_norm;  // (dim)
  std::vector<float> lm_head;     // (vocab, dim); empty when tied to the embedding

  // (vocab, dim): lm_head, or the embedding when the model ties them.
  const float* lm_head_data() const { return lm_head.empty() ? embedding.data() : lm_head.data(); }
};

// Reads every tensor of a LlamaForCausalLM with the shapes the config implies. Errors name the
// tensor and file: missing, wrong shape, unsupported dtype. lm_head.weight is required unless
// tie_word_embeddings (then it is ignored when present).
StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& config, const SafetensorsReader& reader);

// The same from a GGUF file (llama.cpp's names: token_embd, blk.N.attn_q/k/v/output,
// ffn_gate/up/down, attn_norm, ffn_norm, output_norm, output), every type dequantised to fp32
// and attn_q/attn_k rows brought back to Hugging Face's rotate-half order (cpu_weights_gguf.cc).
// output.weight is required unless tie_word_embeddings.
StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& config, const GgufFile& file);

}  // namespace rag
