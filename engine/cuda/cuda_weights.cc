#include "engine/cuda/cuda_weights.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "common/logging.h"
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

  // fp8: the projections live in Fp8Layout's allocation instead (their offsets here unused).
  Layout(const ModelConfig& c, bool fp8) {
    const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
    const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
    embedding = Take(c.vocab_size * dim);
    final_norm = Take(dim);
    lm_head = c.tie_word_embeddings ? embedding : Take(c.vocab_size * dim);
    layers.resize(static_cast<size_t>(c.num_hidden_layers));
    for (Layer& l : layers) {
      l.attn_norm = Take(dim);
      l.mlp_norm = Take(dim);
      if (fp8) continue;
      l.wqkv = Take((q_dim + 2 * kv_dim) * dim);
      l.wo = Take(dim * q_dim);
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

// Byte offsets of an FP8 model's projections (codes, then the row scales, of each matrix).
struct Fp8Layout {
  struct Matrix {
    size_t codes, scale;
    int64_t rows, cols;
  };
  struct Layer {
    Matrix wqkv, wo, w_gate_up, w_down;
  };
  std::vector<Layer> layers;
  size_t total = 0;  // bytes

  explicit Fp8Layout(const ModelConfig& c) {
    const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
    const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
    layers.resize(static_cast<size_t>(c.num_hidden_layers));
    for (Layer& l : layers) {
      l.wqkv = Take(q_dim + 2 * kv_dim, dim);
      l.wo = Take(dim, q_dim);
      l.w_gate_up = Take(2 * inter, dim);
      l.w_down = Take(dim, inter);
    }
  }

 private:
  size_t Bytes(size_t n) {
    const size_t at = total;
    total += (n + kAlign - 1) / kAlign * kAlign;
    return at;
  }
  Matrix Take(int64_t rows, int64_t cols) {
    Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.codes = Bytes(static_cast<size_t>(rows * cols));
    m.scale = Bytes(static_cast<size_t>(rows) * 4);
    return m;
  }
};

StatusOr<CudaWeights> Allocate(const ModelConfig& c, const Layout& layout, const Fp8Layout* fp8) {
  CudaWeights w;
  RAG_ASSIGN_OR_RETURN(w.storage, DeviceBuffer::Allocate(layout.total * 2, "the model weights"));
  if (fp8 != nullptr) {
    RAG_ASSIGN_OR_RETURN(w.fp8_storage, DeviceBuffer::Allocate(fp8->total, "the FP8 projections"));
    w.fp8 = true;
  }
  const __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  const char* base8 = fp8 != nullptr ? w.fp8_storage.as<char>() : nullptr;
  auto matrix8 = [base8](const Fp8Layout::Matrix& m) {
    return CudaFp8Matrix{reinterpret_cast<const __nv_fp8_e4m3*>(base8 + m.codes),
                         reinterpret_cast<const float*>(base8 + m.scale)};
  };
  w.embedding = base + layout.embedding;
  w.final_norm = base + layout.final_norm;
  w.lm_head = base + layout.lm_head;
  for (size_t i = 0; i < layout.layers.size(); ++i) {
    const Layout::Layer& l = layout.layers[i];
    CudaLayerWeights lw{base + l.attn_norm, nullptr, nullptr, base + l.mlp_norm, nullptr, nullptr,
                        {}, {}, {}, {}};
    if (fp8 != nullptr) {
      const Fp8Layout::Layer& f = fp8->layers[i];
      lw.wqkv8 = matrix8(f.wqkv);
      lw.wo8 = matrix8(f.wo);
      lw.w_gate_up8 = matrix8(f.w_gate_up);
      lw.w_down8 = matrix8(f.w_down);
    } else {
      lw.wqkv = base + l.wqkv;
      lw.wo = base + l.wo;
      lw.w_gate_up = base + l.w_gate_up;
      lw.w_down = base + l.w_down;
    }
    w.layers.push_back(lw);
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

Status UploadTensor(Uploader& up, const TensorView& t, void* dst) {
  if (t.dtype == TensorDType::kF8E4M3) {
    return InvalidArgument(t.file + ": tensor \"" + t.name + "\" is F8_E4M3, which only decoder "
                           "projections may be (rag quantize)");
  }
  return up.Upload(t.numel(), dst, [&t](int64_t first, int64_t n, uint16_t* out) {
    if (t.dtype == TensorDType::kBF16) {
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

size_t CudaWeightBytes(const ModelConfig& config, bool fp8) {
  return Layout(config, fp8).total * 2 + (fp8 ? Fp8Layout(config).total : 0);
}

StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& c, const SafetensorsReader& reader) {
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  // An FP8 model has every decoder projection in F8_E4M3 (rag quantize writes all or none).
  RAG_ASSIGN_OR_RETURN(const TensorView* q0, reader.Get("model.layers.0.self_attn.q_proj.weight"));
  const bool fp8 = q0->dtype == TensorDType::kF8E4M3;
  const Layout layout(c, fp8);
  const Fp8Layout fp8_layout(c);
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout, fp8 ? &fp8_layout : nullptr));
  RAG_ASSIGN_OR_RETURN(Uploader up, Uploader::Create());
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  char* base8 = fp8 ? w.fp8_storage.as<char>() : nullptr;
  // Uploads tensor `name` of `shape` to element offset `at` of the allocation.
  auto put = [&](const std::string& name, std::vector<int64_t> shape, size_t at) -> Status {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
    return UploadTensor(up, *t, base + at);
  };
  // An FP8 projection (and its scales) to rows [row0, row0 + shape[0]) of matrix m.
  auto put8 = [&](const std::string& name, std::vector<int64_t> shape, const Fp8Layout::Matrix& m,
                  int64_t row0) -> Status {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
    RAG_ASSIGN_OR_RETURN(const TensorView* s, reader.Get(name + "_scale", {shape[0]}));
    if (t->dtype != TensorDType::kF8E4M3 || s->dtype != TensorDType::kF32) {
      return InvalidArgument(t->file + ": \"" + name + "\" must be F8_E4M3 with an F32 \"" + name +
                             "_scale\" (an FP8 model quantizes every decoder projection)");
    }
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(base8 + m.codes + row0 * m.cols, t->data, t->nbytes,
                                        cudaMemcpyHostToDevice));
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(base8 + m.scale + row0 * 4, s->data, s->nbytes,
                                        cudaMemcpyHostToDevice));
    return Status::Ok();
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
    RAG_RETURN_IF_ERROR(put(p + "post_attention_layernorm.weight", {dim}, l.mlp_norm));
    if (fp8) {
      const Fp8Layout::Layer& f = fp8_layout.layers[static_cast<size_t>(i)];
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.q_proj.weight", {q_dim, dim}, f.wqkv, 0));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.k_proj.weight", {kv_dim, dim}, f.wqkv, q_dim));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.v_proj.weight", {kv_dim, dim}, f.wqkv, q_dim + kv_dim));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.o_proj.weight", {dim, q_dim}, f.wo, 0));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.gate_proj.weight", {inter, dim}, f.w_gate_up, 0));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.up_proj.weight", {inter, dim}, f.w_gate_up, inter));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.down_proj.weight", {dim, inter}, f.w_down, 0));
      continue;
    }
    RAG_RETURN_IF_ERROR(put(p + "self_attn.q_proj.weight", {q_dim, dim}, l.wqkv));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.k_proj.weight", {kv_dim, dim}, l.wqkv + q_dim * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.v_proj.weight", {kv_dim, dim},
                            l.wqkv + (q_dim + kv_dim) * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.o_proj.weight", {dim, q_dim}, l.wo));
    RAG_RETURN_IF_ERROR(put(p + "mlp.gate_proj.weight", {inter, dim}, l.w_gate_up));
    RAG_RETURN_IF_ERROR(put(p + "mlp.up_proj.weight", {inter, dim}, l.w_gate_up + inter * dim));
    RAG_RETURN_IF_ERROR(put(p + "mlp.down_proj.weight", {dim, inter}, l.w_down));
  }
  return w;
}

StatusOr<CudaWeights> UploadCudaWeights(const ModelConfig& c, const CpuWeights& cpu) {
  const Layout layout(c, /*fp8=*/false);
  if (cpu.layers.size() != layout.layers.size()) {
    return InvalidArgument("cuda weights: " + std::to_string(cpu.layers.size()) +
                           " layers given, the config has " + std::to_string(layout.layers.size()));
  }
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout, nullptr));
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

StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& c, uint64_t seed, bool fp8) {
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const Layout layout(c, fp8);
  const Fp8Layout fp8_layout(c);
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(c, layout, fp8 ? &fp8_layout : nullptr));
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  uint64_t tensor = 0;  // each tensor its own stream of the hash
  auto matrix = [&](size_t at, int64_t n) {
    return FillNormalBf16(base + at, n, seed * 1000003u + ++tensor, 0.0f, 0.02f, nullptr);
  };
  auto norm = [&](size_t at) { return FillNormalBf16(base + at, dim, 0, 1.0f, 0.0f, nullptr); };
  RAG_RETURN_IF_ERROR(matrix(layout.embedding, c.vocab_size * dim));
  RAG_RETURN_IF_ERROR(norm(layout.final_norm));
  if (!c.tie_word_embeddings) RAG_RETURN_IF_ERROR(matrix(layout.lm_head, c.vocab_size * dim));
  char* base8 = fp8 ? w.fp8_storage.as<char>() : nullptr;
  auto matrix8 = [&](const Fp8Layout::Matrix& m) {
    return FillNormalFp8(reinterpret_cast<__nv_fp8_e4m3*>(base8 + m.codes),
                         reinterpret_cast<float*>(base8 + m.scale), m.rows, m.cols,
                         seed * 1000003u + ++tensor, 0.02f, nullptr);
  };
  for (size_t i = 0; i < layout.layers.size(); ++i) {
    const Layout::Layer& l = layout.layers[i];
    RAG_RETURN_IF_ERROR(norm(l.attn_norm));
    RAG_RETURN_IF_ERROR(norm(l.mlp_norm));
    if (fp8) {
      const Fp8Layout::Layer& f = fp8_layout.layers[i];
      for (const Fp8Layout::Matrix* m : {&f.wqkv, &f.wo, &f.w_gate_up, &f.w_down}) {
        RAG_RETURN_IF_ERROR(matrix8(*m));
      }
      continue;
    }
    RAG_RETURN_IF_ERROR(matrix(l.wqkv, (q_dim + 2 * kv_dim) * dim));
    RAG_RETURN_IF_ERROR(matrix(l.wo, dim * q_dim));
    RAG_RETURN_IF_ERROR(matrix(l.w_gate_up, 2 * inter * dim));
    RAG_RETURN_IF_ERROR(matrix(l.w_down, dim * inter));
  }
  RAG_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return w;
}

}  // namespace rag
