#include "engine/cuda/cuda_weights.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "common/load_progress.h"
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

  bool lm_head_aliases_embedding = false;  // tied, and the rank's rows are rows of it

  // c: the rank's config (RankConfig: its heads and intermediate size); s: its lm_head rows.
  // fp8: the projections live in Fp8Layout's allocation instead (their offsets here unused).
  Layout(const ModelConfig& c, bool fp8, const TpSlices& s) {
    const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
    const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
    embedding = Take(c.vocab_size * dim);
    final_norm = Take(dim);
    // A tied lm_head is the embedding, or a slice of its rows when every rank's slice is whole
    // rows of it (no padding); otherwise a copy of the rank's rows.
    lm_head_aliases_embedding = c.tie_word_embeddings && s.vocab.size() == s.lm_rows;
    lm_head = lm_head_aliases_embedding ? embedding + static_cast<size_t>(s.vocab.begin * dim)
                                        : Take(s.lm_rows * dim);
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

StatusOr<CudaWeights> Allocate(const Layout& layout, const Fp8Layout* fp8, int64_t lm_rows) {
  CudaWeights w;
  w.lm_head_rows = lm_rows;
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

// Elements [first, first + n) of t (flat) as bf16 bits.
void ConvertRun(const TensorView& t, int64_t first, int64_t n, uint16_t* out) {
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
}

// Rows [rows.begin, rows.end) and columns [cols.begin, cols.end) of the 2-D (or, whole, any)
// tensor t to dst as a dense (rows, cols) bf16 matrix: only those bytes of the file are read
// (mmap), so each tensor-parallel rank reads its own part.
Status UploadTensorSlice(Uploader& up, const TensorView& t, TpRange rows, TpRange cols, void* dst) {
  if (t.dtype == TensorDType::kF8E4M3) {
    return InvalidArgument(t.file + ": tensor \"" + t.name + "\" is F8_E4M3, which only decoder "
                           "projections may be (rag quantize)");
  }
  const int64_t t_cols = t.shape.size() == 2 ? t.shape[1] : t.numel();
  const int64_t width = cols.size();
  return up.Upload(rows.size() * width, dst, [&](int64_t first, int64_t n, uint16_t* out) {
    while (n > 0) {  // runs within one row of the slice
      const int64_t r = first / width, c = first % width;
      const int64_t run = std::min(n, width - c);
      ConvertRun(t, (rows.begin + r) * t_cols + cols.begin + c, run, out);
      first += run;
      out += run;
      n -= run;
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
  const TpSlices whole = TensorParallelSlices(config, 0, 1);
  return Layout(config, fp8, whole).total * 2 + (fp8 ? Fp8Layout(config).total : 0);
}

StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& config, const SafetensorsReader& reader) {
  return LoadCudaWeights(config, reader, TensorParallelSlices(config, 0, 1));
}

StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& full, const SafetensorsReader& reader,
                                      const TpSlices& s) {
  const ModelConfig c = RankConfig(full, s.world);
  const int64_t dim = c.hidden_size;
  const int64_t q_all = full.num_attention_heads * c.head_dim, kv_all = full.num_key_value_heads * c.head_dim;
  const int64_t q_dim = s.q_rows.size(), kv_dim = s.k_rows.size(), inter = s.inter.size();
  const TpRange all_dim{0, dim};
  // An FP8 model has every decoder projection in F8_E4M3 (rag quantize writes all or none).
  RAG_ASSIGN_OR_RETURN(const TensorView* q0, reader.Get("model.layers.0.self_attn.q_proj.weight"));
  const bool fp8 = q0->dtype == TensorDType::kF8E4M3;
  const Layout layout(c, fp8, s);
  const Fp8Layout fp8_layout(c);
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(layout, fp8 ? &fp8_layout : nullptr, s.lm_rows));
  RAG_ASSIGN_OR_RETURN(Uploader up, Uploader::Create());
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  char* base8 = fp8 ? w.fp8_storage.as<char>() : nullptr;
  // Uploads rows x cols of tensor `name` (of `shape`) to element offset `at` of the allocation.
  auto put = [&](const std::string& name, std::vector<int64_t> shape, TpRange rows, TpRange cols,
                 size_t at) -> Status {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
    return UploadTensorSlice(up, *t, rows, cols, base + at);
  };
  auto put_whole = [&](const std::string& name, int64_t n, size_t at) {
    return put(name, {n}, {0, 1}, {0, n}, at);
  };
  // Rows x cols of an FP8 projection (and the rows' scales) to rows [row0, ...) of matrix m.
  auto put8 = [&](const std::string& name, std::vector<int64_t> shape, TpRange rows, TpRange cols,
                  const Fp8Layout::Matrix& m, int64_t row0) -> Status {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader.Get(name, shape));
    RAG_ASSIGN_OR_RETURN(const TensorView* sc, reader.Get(name + "_scale", {shape[0]}));
    if (t->dtype != TensorDType::kF8E4M3 || sc->dtype != TensorDType::kF32) {
      return InvalidArgument(t->file + ": \"" + name + "\" must be F8_E4M3 with an F32 \"" + name +
                             "_scale\" (an FP8 model quantizes every decoder projection)");
    }
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy2D(base8 + m.codes + row0 * m.cols, m.cols,
                                          t->data + rows.begin * shape[1] + cols.begin, shape[1],
                                          cols.size(), rows.size(), cudaMemcpyHostToDevice));
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(base8 + m.scale + row0 * 4, sc->data + rows.begin * 4,
                                        rows.size() * 4, cudaMemcpyHostToDevice));
    return Status::Ok();
  };
  RAG_RETURN_IF_ERROR(put("model.embed_tokens.weight", {c.vocab_size, dim}, {0, c.vocab_size},
                          all_dim, layout.embedding));
  RAG_RETURN_IF_ERROR(put_whole("model.norm.weight", dim, layout.final_norm));
  if (!layout.lm_head_aliases_embedding) {  // the rank's rows, then zero rows up to lm_rows
    const std::string name = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    RAG_RETURN_IF_ERROR(put(name, {c.vocab_size, dim}, s.vocab, all_dim, layout.lm_head));
    const int64_t pad = s.lm_rows - s.vocab.size();
    if (pad > 0) {
      RAG_CUDA_RETURN_IF_ERROR(cudaMemset(base + layout.lm_head + s.vocab.size() * dim, 0,
                                          static_cast<size_t>(pad * dim) * 2));
    }
  }
  const TpRange q_cols = s.q_rows;  // o's columns are the query heads' outputs
  // The ranks read their parts at once; rank 0 speaks for them.
  LoadProgress progress("model weights", s.rank == 0 ? c.num_hidden_layers : 0, "layers");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const Layout::Layer& l = layout.layers[static_cast<size_t>(i)];
    RAG_RETURN_IF_ERROR(put_whole(p + "input_layernorm.weight", dim, l.attn_norm));
    RAG_RETURN_IF_ERROR(put_whole(p + "post_attention_layernorm.weight", dim, l.mlp_norm));
    if (fp8) {
      const Fp8Layout::Layer& f = fp8_layout.layers[static_cast<size_t>(i)];
      const int64_t I = full.intermediate_size;
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.q_proj.weight", {q_all, dim}, s.q_rows, all_dim, f.wqkv, 0));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.k_proj.weight", {kv_all, dim}, s.k_rows, all_dim, f.wqkv, q_dim));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.v_proj.weight", {kv_all, dim}, s.v_rows, all_dim, f.wqkv,
                               q_dim + kv_dim));
      RAG_RETURN_IF_ERROR(put8(p + "self_attn.o_proj.weight", {dim, q_all}, all_dim, q_cols, f.wo, 0));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.gate_proj.weight", {I, dim}, s.inter, all_dim, f.w_gate_up, 0));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.up_proj.weight", {I, dim}, s.inter, all_dim, f.w_gate_up, inter));
      RAG_RETURN_IF_ERROR(put8(p + "mlp.down_proj.weight", {dim, I}, all_dim, s.inter, f.w_down, 0));
      progress.Add();
      continue;
    }
    const int64_t I = full.intermediate_size;
    RAG_RETURN_IF_ERROR(put(p + "self_attn.q_proj.weight", {q_all, dim}, s.q_rows, all_dim, l.wqkv));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.k_proj.weight", {kv_all, dim}, s.k_rows, all_dim,
                            l.wqkv + q_dim * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.v_proj.weight", {kv_all, dim}, s.v_rows, all_dim,
                            l.wqkv + (q_dim + kv_dim) * dim));
    RAG_RETURN_IF_ERROR(put(p + "self_attn.o_proj.weight", {dim, q_all}, all_dim, q_cols, l.wo));
    RAG_RETURN_IF_ERROR(put(p + "mlp.gate_proj.weight", {I, dim}, s.inter, all_dim, l.w_gate_up));
    RAG_RETURN_IF_ERROR(put(p + "mlp.up_proj.weight", {I, dim}, s.inter, all_dim,
                            l.w_gate_up + inter * dim));
    RAG_RETURN_IF_ERROR(put(p + "mlp.down_proj.weight", {dim, I}, all_dim, s.inter, l.w_down));
    progress.Add();
  }
  progress.Finish();
  return w;
}

StatusOr<CudaWeights> UploadCudaWeights(const ModelConfig& c, const CpuWeights& cpu) {
  const Layout layout(c, /*fp8=*/false, TensorParallelSlices(c, 0, 1));
  if (cpu.layers.size() != layout.layers.size()) {
    return InvalidArgument("cuda weights: " + std::to_string(cpu.layers.size()) +
                           " layers given, the config has " + std::to_string(layout.layers.size()));
  }
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(layout, nullptr, c.vocab_size));
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

StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& config, uint64_t seed, bool fp8) {
  return DummyCudaWeights(config, seed, fp8, TensorParallelSlices(config, 0, 1));
}

StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& full, uint64_t seed, bool fp8,
                                       const TpSlices& s) {
  const ModelConfig c = RankConfig(full, s.world);
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const Layout layout(c, fp8, s);
  const Fp8Layout fp8_layout(c);
  seed += static_cast<uint64_t>(s.rank) * 0x9E3779B97F4A7C15ull;  // each rank its own draws
  RAG_ASSIGN_OR_RETURN(CudaWeights w, Allocate(layout, fp8 ? &fp8_layout : nullptr, s.lm_rows));
  __nv_bfloat16* base = w.storage.as<__nv_bfloat16>();
  uint64_t tensor = 0;  // each tensor its own stream of the hash
  auto matrix = [&](size_t at, int64_t n) {
    return FillNormalBf16(base + at, n, seed * 1000003u + ++tensor, 0.0f, 0.02f, nullptr);
  };
  auto norm = [&](size_t at) { return FillNormalBf16(base + at, dim, 0, 1.0f, 0.0f, nullptr); };
  RAG_RETURN_IF_ERROR(matrix(layout.embedding, c.vocab_size * dim));
  RAG_RETURN_IF_ERROR(norm(layout.final_norm));
  if (!layout.lm_head_aliases_embedding) RAG_RETURN_IF_ERROR(matrix(layout.lm_head, s.lm_rows * dim));
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
