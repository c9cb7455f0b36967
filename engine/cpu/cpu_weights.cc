#include "engine/cpu/cpu_weights.h"

#include <string>

#include "common/load_progress.h"

namespace rag {
namespace {

// Appends the tensor `name` (shape `shape`) converted to fp32 to *out. An F8_E4M3 matrix (`rag
// quantize`) is dequantised with its "<name>_scale" tensor: row r times scale[r].
Status Append(const SafetensorsReader& reader, const std::string& name,
              const std::vector<int64_t>& shape, std::vector<float>* out) {
  RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
  size_t offset = out->size();
  out->resize(offset + static_cast<size_t>(t->numel()));
  float* dst = out->data() + offset;
  SafetensorsReader::ToFloat(*t, dst);
  if (t->dtype == TensorDType::kF8E4M3) {
    if (shape.size() != 2) return InvalidArgument(t->file + ": F8_E4M3 tensor \"" + name + "\" is not a matrix");
    RAG_ASSIGN_OR_RETURN(const TensorView* s, reader.Get(name + "_scale", {shape[0]}));
    if (s->dtype != TensorDType::kF32) {
      return InvalidArgument(s->file + ": \"" + s->name + "\" must be F32 (one scale a row)");
    }
    std::vector<float> scale(static_cast<size_t>(shape[0]));
    SafetensorsReader::ToFloat(*s, scale.data());
    for (int64_t r = 0; r < shape[0]; ++r) {
      for (int64_t c = 0; c < shape[1]; ++c) dst[r * shape[1] + c] *= scale[static_cast<size_t>(r)];
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& c, const SafetensorsReader& reader) {
  const int64_t dim = c.hidden_size;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  CpuWeights w;
  RAG_RETURN_IF_ERROR(Append(reader, "model.embed_tokens.weight", {c.vocab_size, dim}, &w.embedding));
  RAG_RETURN_IF_ERROR(Append(reader, "model.norm.weight", {dim}, &w.final_norm));
  if (!c.tie_word_embeddings) {
    RAG_RETURN_IF_ERROR(Append(reader, "lm_head.weight", {c.vocab_size, dim}, &w.lm_head));
  }
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  LoadProgress progress("model weights", c.num_hidden_layers, "layers");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    CpuLayerWeights& l = w.layers[static_cast<size_t>(i)];
    RAG_RETURN_IF_ERROR(Append(reader, p + "input_layernorm.weight", {dim}, &l.attn_norm));
    RAG_RETURN_IF_ERROR(Append(reader, p + "self_attn.q_proj.weight", {q_dim, dim}, &l.wqkv));
    RAG_RETURN_IF_ERROR(Append(reader, p + "self_attn.k_proj.weight", {kv_dim, dim}, &l.wqkv));
    RAG_RETURN_IF_ERROR(Append(reader, p + "self_attn.v_proj.weight", {kv_dim, dim}, &l.wqkv));
    RAG_RETURN_IF_ERROR(Append(reader, p + "self_attn.o_proj.weight", {dim, q_dim}, &l.wo));
    RAG_RETURN_IF_ERROR(Append(reader, p + "post_attention_layernorm.weight", {dim}, &l.mlp_norm));
    RAG_RETURN_IF_ERROR(Append(reader, p + "mlp.gate_proj.weight", {inter, dim}, &l.w_gate_up));
    RAG_RETURN_IF_ERROR(Append(reader, p + "mlp.up_proj.weight", {inter, dim}, &l.w_gate_up));
    RAG_RETURN_IF_ERROR(Append(reader, p + "mlp.down_proj.weight", {dim, inter}, &l.w_down));
    progress.Add();
  }
  progress.Finish();
  return w;
}

}  // namespace rag
