#include "engine/model_shapes.h"

namespace rag {

StatusOr<ModelConfig> LlamaShapeConfig(const std::string& name) {
  ModelConfig c;
  c.vocab_size = 128256;
  c.head_dim = 128;
  c.num_key_value_heads = 8;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  c.tie_word_embeddings = false;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  c.torch_dtype = "bfloat16";
  if (name == "8b") {
    c.hidden_size = 4096;
    c.intermediate_size = 14336;
    c.num_hidden_layers = 32;
    c.num_attention_heads = 32;
  } else if (name == "70b") {
    c.hidden_size = 8192;
    c.intermediate_size = 28672;
    c.num_hidden_layers = 80;
    c.num_attention_heads = 64;
  } else if (name == "405b") {
    c.hidden_size = 16384;
    c.intermediate_size = 53248;
    c.num_hidden_layers = 126;
    c.num_attention_heads = 128;
  } else {
    return InvalidArgument("unknown model shape '" + name + "' (known: 8b, 70b, 405b)");
  }
  return c;
}

int64_t LlamaParameterCount(const ModelConfig& c) {
  const int64_t dim = c.hidden_size;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  const int64_t layer = 2 * dim + (q_dim + 2 * kv_dim) * dim + dim * q_dim +
                        3 * c.intermediate_size * dim;
  return c.vocab_size * dim * (c.tie_word_embeddings ? 1 : 2) + dim +
         c.num_hidden_layers * layer;
}

}  // namespace rag
