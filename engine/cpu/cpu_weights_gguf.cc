// CpuWeights from a GGUF file: llama.cpp's tensor names, every type dequantised to fp32.
#include <string>

#include "engine/cpu/cpu_weights.h"

namespace rag {
namespace {

// llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of each
// head of attn_q and attn_k from Hugging Face's rotate-half layout (the first half of the head
// pairs with the second half) to ggml's interleaved RoPE layout (row 2i pairs with 2i+1):
// GGUF row h*hd + 2i + s holds HF row h*hd + s*hd/2 + i. Our RoPE is HF's rotate-half, so the
// permutation is undone here, as transformers does when it loads a GGUF file. `w` is
// (n_heads * head_dim, cols), permuted in place.
void UnpermuteRopeRows(std::vector<float>* w, int64_t n_heads, int64_t head_dim, int64_t cols) {
  const int64_t half = head_dim / 2;
  std::vector<float> head(static_cast<size_t>(head_dim * cols));
  for (int64_t h = 0; h < n_heads; ++h) {
    float* base = w->data() + h * head_dim * cols;
    std::copy(base, base + head_dim * cols, head.begin());
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t s = 0; s < 2; ++s) {
        const float* src = head.data() + (2 * i + s) * cols;
        std::copy(src, src + cols, base + (s * half + i) * cols);
      }
    }
  }
}

// Appends tensor `name` (GGUF dims, innermost first) converted to fp32 to *out.
Status Append(const GgufFile& f, const std::string& name, std::vector<int64_t> dims,
              std::vector<float>* out, std::vector<float>* scratch) {
  RAG_RETURN_IF_ERROR(f.ReadFloat(name, dims, scratch));
  out->insert(out->end(), scratch->begin(), scratch->end());
  return Status::Ok();
}

}  // namespace

StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& c, const GgufFile& f) {
  const int64_t dim = c.hidden_size;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  CpuWeights w;
  std::vector<float> t;
  RAG_RETURN_IF_ERROR(Append(f, "token_embd.weight", {dim, c.vocab_size}, &w.embedding, &t));
  RAG_RETURN_IF_ERROR(Append(f, "output_norm.weight", {dim}, &w.final_norm, &t));
  if (!c.tie_word_embeddings) {
    RAG_RETURN_IF_ERROR(Append(f, "output.weight", {dim, c.vocab_size}, &w.lm_head, &t));
  }
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    CpuLayerWeights& l = w.layers[static_cast<size_t>(i)];
    RAG_RETURN_IF_ERROR(Append(f, p + "attn_norm.weight", {dim}, &l.attn_norm, &t));
    RAG_RETURN_IF_ERROR(f.ReadFloat(p + "attn_q.weight", {dim, q_dim}, &t));
    UnpermuteRopeRows(&t, c.num_attention_heads, c.head_dim, dim);
    l.wqkv.insert(l.wqkv.end(), t.begin(), t.end());
    RAG_RETURN_IF_ERROR(f.ReadFloat(p + "attn_k.weight", {dim, kv_dim}, &t));
    UnpermuteRopeRows(&t, c.num_key_value_heads, c.head_dim, dim);
    l.wqkv.insert(l.wqkv.end(), t.begin(), t.end());
    RAG_RETURN_IF_ERROR(Append(f, p + "attn_v.weight", {dim, kv_dim}, &l.wqkv, &t));
    RAG_RETURN_IF_ERROR(Append(f, p + "attn_output.weight", {q_dim, dim}, &l.wo, &t));
    RAG_RETURN_IF_ERROR(Append(f, p + "ffn_norm.weight", {dim}, &l.mlp_norm, &t));
    RAG_RETURN_IF_ERROR(Append(f, p + "ffn_gate.weight", {dim, inter}, &l.w_gate_up, &t));
    RAG_RETURN_IF_ERROR(Append(f, p + "ffn_up.weight", {dim, inter}, &l.w_gate_up, &t));
    RAG_RETURN_IF_ERROR(Append(f, p + "ffn_down.weight", {inter, dim}, &l.w_down, &t));
  }
  return w;
}

}  // namespace rag
