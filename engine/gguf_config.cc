#include "engine/gguf_config.h"

namespace rag {

StatusOr<ModelConfig> GgufModelConfig(const GgufFile& f) {
  RAG_ASSIGN_OR_RETURN(const std::string arch, f.GetString("general.architecture"));
  if (arch != "llama") {
    return Unsupported(f.path() + ": general.architecture \"" + arch + "\" is not supported (only llama)");
  }
  ModelConfig c;
  RAG_ASSIGN_OR_RETURN(c.max_position_embeddings, f.GetInt("llama.context_length"));
  RAG_ASSIGN_OR_RETURN(c.hidden_size, f.GetInt("llama.embedding_length"));
  RAG_ASSIGN_OR_RETURN(c.num_hidden_layers, f.GetInt("llama.block_count"));
  RAG_ASSIGN_OR_RETURN(c.intermediate_size, f.GetInt("llama.feed_forward_length"));
  RAG_ASSIGN_OR_RETURN(c.num_attention_heads, f.GetInt("llama.attention.head_count"));
  c.num_key_value_heads = c.num_attention_heads;
  if (f.Find("llama.attention.head_count_kv")) {
    RAG_ASSIGN_OR_RETURN(c.num_key_value_heads, f.GetInt("llama.attention.head_count_kv"));
  }
  RAG_ASSIGN_OR_RETURN(c.rms_norm_eps, f.GetFloat("llama.attention.layer_norm_rms_epsilon"));
  if (f.Find("llama.rope.freq_base")) {
    RAG_ASSIGN_OR_RETURN(c.rope_theta, f.GetFloat("llama.rope.freq_base"));
  }
  for (int64_t v : {c.max_position_embeddings, c.hidden_size, c.num_hidden_layers, c.intermediate_size,
                    c.num_attention_heads, c.num_key_value_heads}) {
    if (v <= 0) return InvalidArgument(f.path() + ": llama.* sizes must be positive");
  }
  if (c.hidden_size % c.num_attention_heads != 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
    return InvalidArgument(f.path() + ": llama.attention.head_count(_kv) do not divide the dimensions");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  if (f.Find("llama.attention.key_length")) {
    RAG_ASSIGN_OR_RETURN(c.head_dim, f.GetInt("llama.attention.key_length"));
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return InvalidArgument(f.path() + ": head dimension " + std::to_string(c.head_dim) + " must be even");
  }
  if (f.Find("llama.rope.dimension_count")) {
    RAG_ASSIGN_OR_RETURN(int64_t rope_dims, f.GetInt("llama.rope.dimension_count"));
    if (rope_dims != c.head_dim) {
      return Unsupported(f.path() + ": llama.rope.dimension_count " + std::to_string(rope_dims) +
                         " differs from the head dimension (partial rotary is not supported)");
    }
  }
  if (f.Find("llama.rope.scaling.type")) {
    RAG_ASSIGN_OR_RETURN(const std::string type, f.GetString("llama.rope.scaling.type"));
    if (type != "none") {
      return Unsupported(f.path() + ": llama.rope.scaling.type \"" + type + "\" is not supported");
    }
  }
  if (f.FindTensor("rope_freqs.weight")) {
    return Unsupported(f.path() + ": tensor rope_freqs.weight (Llama 3.1 rope scaling factors) is not supported yet");
  }
  RAG_ASSIGN_OR_RETURN(const std::vector<GgufValue>* tokens,
                       f.GetArray("tokenizer.ggml.tokens", GgufValueType::kString));
  c.vocab_size = static_cast<int64_t>(tokens->size());
  if (c.vocab_size == 0) return InvalidArgument(f.path() + ": tokenizer.ggml.tokens is empty");
  c.tie_word_embeddings = f.FindTensor("output.weight") == nullptr;
  if (f.Find("tokenizer.ggml.bos_token_id")) {
    RAG_ASSIGN_OR_RETURN(int64_t bos, f.GetInt("tokenizer.ggml.bos_token_id"));
    c.bos_token_id = static_cast<int32_t>(bos);
  }
  if (f.Find("tokenizer.ggml.eos_token_id")) {
    RAG_ASSIGN_OR_RETURN(int64_t eos, f.GetInt("tokenizer.ggml.eos_token_id"));
    if (eos < 0 || eos >= c.vocab_size) {
      return InvalidArgument(f.path() + ": tokenizer.ggml.eos_token_id " + std::to_string(eos) +
                             " is outside the vocabulary");
    }
    c.eos_token_ids.push_back(static_cast<int32_t>(eos));
  }
  c.torch_dtype = "float32";  // weights are dequantised to fp32 when loaded
  return c;
}

}  // namespace rag
