// A LlamaForCausalLM configuration from a Hugging Face model directory: config.json (both the
// older `rope_theta` + `rope_scaling` form and the newer `rope_parameters` form) and
// generation_config.json (its eos ids are merged with config.json's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace rag {

struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // dim
  int64_t intermediate_size = 0;  // SwiGLU hidden size
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;           // hidden_size / num_attention_heads unless given
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;  // config.json and generation_config.json, deduplicated
  std::string torch_dtype;             // "bfloat16", "float16", "float32"
};

// Reads dir/config.json (required) and dir/generation_config.json (optional). Errors name the
// file and the field: missing, wrong type, inconsistent (heads not dividing the dimension),
// unsupported architecture or rope type.
StatusOr<ModelConfig> LoadModelConfig(const std::string& dir);

}  // namespace rag
