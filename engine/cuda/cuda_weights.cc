#include "engine/cuda/cuda_weights.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "common/logging.h"
#include "engine/fp8.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

constexpr size_t kAlign = 256;  // bytes; keeps every matrix 16-byte aligned for wide loads

// Offsets (in bf16 elements) of every tensor in the single allocation.
struct Layout {
  struct Layer {
    size_t attn_norm, wqkv, wo, mlp_norm, w_gate_up, w_down;
  };
  size_t embedding = 0, final_norm = 0, lm_head = 0;  // lm_head == embedding when tied
  std::vector<Layer> layers;
  size_t total = 0;  // elements

  explicit Layout(const ModelConfig& c) {
    const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
    const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
    embedding = Take(c.vocab_size * dim);
    final_norm = Take(dim);
    lm_head = c.tie_word_embeddings ? embedding : Take(c.vocab_size * dim);
    layers.resize(static_cast<size_t>(c.num_hidden_layers));
    for (Layer& l : layers) {
      l.attn_norm = Take(dim);
      l.wqkv = Take((q_dim + 2 * kv_dim) * dim);
      l.wo = Take(dim * q_dim);
      l.mlp_norm = Take(dim);
      l.w_gate_up = Take(2 * inter * dim);
      l.w_down = Take(dim * inter);
    }
  }

 private:
  size_t Take(int64_t elements) {
    size_t at = total;
    total += (static_cast<size_t>(elements) * 2 + kAlign - 1) / kAlign * kAlign / 2;
    return at;
  }
};

StatusOr<CudaWeights> Allocate(const ModelConfig& c, const Layout& layout) {
  CudaWeights w;
  RAG_ASSIGN_OR_RETURN(w.storage, DeviceBuffer::Allocate(layout.total * 2, "the model weights"));
  const __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  w.embedding = base + layout.embedding;
  w.final_norm = base + layout.final_norm;
  w.lm_head = base + layout.lm_head;
  for (const Layout::Layer& l : layout.layers) {
    w.layers.push_back({base + l.attn_norm, base + l.wqkv, base + l.wo, base + l.mlp_norm,
                        base + l.w_gate_up, base + l.w_down});
  }
  return w;
}

uint16_t FloatToBf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Copies host data to the device through a pinned staging buffer, converting to bf16 on the
// way: `convert(first, count, out)` writes elements [first, first + count) as bf16 bits.
class Uploader {
 public:
  static StatusOr<Uploader> Create() {
    Uploader u;
    RAG_ASSIGN_OR_RETURN(u.staging_, PinnedBuffer::Allocate(kChunk * 2));
    return u;
  }
  Status Upload(int64_t count, void* device_dst,
                const std::function<void(int64_t, int64_t, uint16_t*)>& convert) {
    uint16_t* stage = staging_.as<uint16_t>();
    for (int64_t first = 0; first < count; first += kChunk) {
      const int64_t n = std::min<int64_t>(kChunk, count - first);
      convert(first, n, stage);
      RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(static_cast<uint16_t*>(device_dst) + first, stage,
                                          static_cast<size_t>(n) * 2, cudaMemcpyHostToDevice));
    }
    return Status::Ok();
  }

 private:
  static constexpr int64_t kChunk = 32 << 20;  // elements (64 MiB of bf16)
  PinnedBuffer staging_;
};

// row_scale: F8_E4M3 matrices only (`rag quantize`): element i of row r is code * row_scale[r].
// They are widened to bf16 here: the FP8 decode kernels (kernels/decode_gemv.cu) are not wired
// into the backend yet, so an FP8 model runs with bf16 weights in memory (correct, not smaller).
Status UploadTensor(Uploader& up, const TensorView& t, void* dst,
                    const std::vector<float>* row_scale = nullptr) {
  const int64_t row_len = t.shape.empty() ? 1 : t.shape.back();
  return up.Upload(t.numel(), dst, [&t, row_scale, row_len](int64_t first, int64_t n, uint16_t* out) {
    if (t.dtype == TensorDType::kF8E4M3) {
      for (int64_t i = 0; i < n; ++i) {
        const float s = (*row_scale)[static_cast<size_t>((first + i) / row_len)];
        out[i] = FloatToBf16(Fp8E4m3ToFloat(t.data[first + i]) * s);
      }
    } else if (t.dtype == TensorDType::kBF16) {
      std::memcpy(out, t.data + first * 2, static_cast<size_t>(n) * 2);
    } else if (t.dtype == TensorDType::kF16) {
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + (first + i) * 2, 2);
        out[i] = FloatToBf16(F16ToFloat(h));
      }
    } else {  // F32
      for (int64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, t.data + (first + i) * 4, 4);
        out[i] = FloatToBf16(f);
      }
    }
  });
}

Status UploadFloats(Uploader& up, const float* src, int64_t count, void* dst) {
  return up.Upload(count, dst, [src](int64_t first, int64_t n, uint16_t* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = FloatToBf16(src[first + i]);
  });
}

}  // namespace

size_t CudaWeightBytes(const ModelConfig& config) { return Layout(config).total * 2; }

StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& c, const SafetensorsReader& reader) {
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const Layout layout(c);
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout));
  RAG_ASSIGN_OR_RETURN(Uploader up, Uploader::Create());
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  // Uploads tensor `name` of `shape` to element offset `at` of the allocation.
  auto put = [&](const std::string& name, std::vector<int64_t> shape, size_t at) -> Status {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
    if (t->dtype != TensorDType::kF8E4M3) return UploadTensor(up, *t, base + at);
    RAG_ASSIGN_OR_RETURN(const TensorView* s, reader.Get(name + "_scale", {shape[0]}));
    if (shape.size() != 2 || s->dtype != TensorDType::kF32) {
      return InvalidArgument(t->file + ": F8_E4M3 tensor \"" + name + "\" needs an F32 \"" + name +
                             "_scale\" of one scale a row");
    }
    std::vector<float> scale(static_cast<size_t>(shape[0]));
    SafetensorsReader::ToFloat(*s, scale.data());
    return UploadTensor(up, *t, base + at, &scale);
  };
  RAG_RETURN_IF_ERROR(put("model.embed_tokens.weight", {c.vocab_size, dim}, layout.embedding));
  RAG_RETURN_IF_ERROR(put("model.norm.weight", {dim}, layout.final_norm));
  if (!c.tie_word_embeddings) {
    RAG_RETURN_IF_ERROR(put("lm_head.weight", {c.vocab_size, dim}, layout.lm_head));
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const Layout::Layer& l = layout.layers[static_cast<size_t>(i)];
    RAG_RETURN_IF_ERROR(put(p + "input_layernorm.weight", {dim}, l.attn_norm));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.q_proj.weight", {q_dim, dim}, l.wqkv));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.k_proj.weight", {kv_dim, dim}, l.wqkv + q_dim * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.v_proj.weight", {kv_dim, dim},
                            l.wqkv + (q_dim + kv_dim) * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.o_proj.weight", {dim, q_dim}, l.wo));
    RAG_RETURN_IF_ERROR(put(p + "post_attention_layernorm.weight", {dim}, l.mlp_norm));
    RAG_RETURN_IF_ERROR(put(p + "mlp.gate_proj.weight", {inter, dim}, l.w_gate_up));
    RAG_RETURN_IF_ERROR(put(p + "mlp.up_proj.weight", {inter, dim}, l.w_gate_up + inter * dim));
    RAG_RETURN_IF_ERROR(put(p + "mlp.down_proj.weight", {dim, inter}, l.w_down));
  }
  return w;
}

StatusOr<CudaWeights> UploadCudaWeights(const ModelConfig& c, const CpuWeights& cpu) {
  const Layout layout(c);
  if (cpu.layers.size() != layout.layers.size()) {
    return InvalidArgument("cuda weights: " + std::to_string(cpu.layers.size()) +
                           " layers given, the config has " + std::to_string(layout.layers.size()));
  }
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout));
  RAG_ASSIGN_OR_RETURN(Uploader up, Uploader::Create());
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  auto put = [&](const std::vector<float>& v, size_t at) {
    return UploadFloats(up, v.data(), static_cast<int64_t>(v.size()), base + at);
  };
  RAG_RETURN_IF_ERROR(put(cpu.embedding, layout.embedding));
  RAG_RETURN_IF_ERROR(put(cpu.final_norm, layout.final_norm));
  if (!c.tie_word_embeddings) RAG_RETURN_IF_ERROR(put(cpu.lm_head, layout.lm_head));
  for (size_t i = 0; i < layout.layers.size(); ++i) {
    const CpuLayerWeights& s = cpu.layers[i];
    const Layout::Layer& l = layout.layers[i];
    RAG_RETURN_IF_ERROR(put(s.attn_norm, l.attn_norm));
    RAG_RETURN_IF_ERROR(put(s.wqkv, l.wqkv));
    RAG_RETURN_IF_ERROR(put(s.wo, l.wo));
    RAG_RETURN_IF_ERROR(put(s.mlp_norm, l.mlp_norm));
    RAG_RETURN_IF_ERROR(put(s.w_gate_up, l.w_gate_up));
    RAG_RETURN_IF_ERROR(put(s.w_down, l.w_down));
  }
  return w;
}

StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& c, uint64_t seed) {
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const Layout layout(c);
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout));
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  uint64_t tensor = 0;  // each tensor its own stream of the hash
  auto matrix = [&](size_t at, int64_t n) {
    return FillNormalBf16(base + at, n, seed * 1000003u + ++tensor, 0.0f, 0.02f, nullptr);
  };
  auto norm = [&](size_t at) { return FillNormalBf16(base + at, dim, 0, 1.0f, 0.0f, nullptr); };
  RAG_RETURN_IF_ERROR(matrix(layout.embedding, c.vocab_size * dim));
  RAG_RETURN_IF_ERROR(norm(layout.final_norm));
  if (!c.tie_word_embeddings) RAG_RETURN_IF_ERROR(matrix(layout.lm_head, c.vocab_size * dim));
  for (const Layout::Layer& l : layout.layers) {
    RAG_RETURN_IF_ERROR(norm(l.attn_norm));
    RAG_RETURN_IF_ERROR(matrix(l.wqkv, (q_dim + 2 * kv_dim) * dim));
    RAG_RETURN_IF_ERROR(matrix(l.wo, dim * q_dim));
    RAG_RETURN_IF_ERROR(norm(l.mlp_norm));
    RAG_RETURN_IF_ERROR(matrix(l.w_gate_up, 2 * inter * dim));
    RAG_RETURN_IF_ERROR(matrix(l.w_down, dim * inter));
  }
  RAG_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return w;
}

}  // namespace rag
