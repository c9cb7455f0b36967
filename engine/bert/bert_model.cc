#include "engine/bert/bert_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/bert/bert_weights.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/parallel.h"

namespace rag {
namespace {

// Rows of x per product call: a block of activations stays in L2 while the packed weight
// panels stream by (MatMulPacked applies each 16-row panel to every input row of the call).
constexpr int64_t kRowBlock = 64;

// out (n, m) = x (n, k) w^T + b, row blocks spread over the pool.
void Linear(const float* x, int64_t n, int64_t k, const PackedWeights& w,
            const std::vector<float>& b, int64_t m, float* out, ThreadPool* pool) {
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  ParallelRows(pool, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
      MatMulPacked(x + r0 * k, r1 - r0, w, out + r0 * m);
      for (int64_t r = r0; r < r1; ++r) {
        float* row = out + r * m;
        for (int64_t j = 0; j < m; ++j) row[j] += b[static_cast<size_t>(j)];
      }
    }
  });
}

// x = LayerNorm(x + residual) per row of width h (residual may be null).
void AddLayerNorm(float* x, const float* residual, int64_t n, int64_t h,
                  const std::vector<float>& g, const std::vector<float>& b, float eps,
                  ThreadPool* pool) {
  ParallelRows(pool, n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * h;
      if (residual != nullptr) {
        for (int64_t j = 0; j < h; ++j) row[j] += residual[r * h + j];
      }
      double mean = 0, var = 0;
      for (int64_t j = 0; j < h; ++j) mean += row[j];
      mean /= static_cast<double>(h);
      for (int64_t j = 0; j < h; ++j) var += (row[j] - mean) * (row[j] - mean);
      var /= static_cast<double>(h);
      const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      const float m = static_cast<float>(mean);
      for (int64_t j = 0; j < h; ++j) {
        row[j] = (row[j] - m) * inv * g[static_cast<size_t>(j)] + b[static_cast<size_t>(j)];
      }
    }
  });
}

Status ReadTensor(const BertTensorFile& st, const std::string& prefix, const std::string& name,
                  const std::vector<int64_t>& shape, std::vector<float>* out) {
  return st.Read(prefix + name, shape, out);
}

int64_t IntField(const JsonValue& root, const char* key) {
  const JsonValue* v = root.Find(key);
  return v != nullptr && v->is_integer() ? v->as_int() : 0;
}

}  // namespace

StatusOr<BertConfig> LoadBertConfig(const std::string& path) {
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  RAG_ASSIGN_OR_RETURN(JsonValue root, ReadJson(text, path));
  BertConfig c;
  c.vocab_size = IntField(root, "vocab_size");
  c.hidden = IntField(root, "hidden_size");
  c.layers = IntField(root, "num_hidden_layers");
  c.heads = IntField(root, "num_attention_heads");
  c.intermediate = IntField(root, "intermediate_size");
  c.max_positions = IntField(root, "max_position_embeddings");
  c.type_vocab = IntField(root, "type_vocab_size");
  if (const JsonValue* v = root.Find("layer_norm_eps"); v != nullptr && v->is_number()) {
    c.layer_norm_eps = static_cast<float>(v->as_double());
  }
  for (auto [value, key] : {std::pair{c.vocab_size, "vocab_size"},
                            {c.hidden, "hidden_size"},
                            {c.layers, "num_hidden_layers"},
                            {c.heads, "num_attention_heads"},
                            {c.intermediate, "intermediate_size"},
                            {c.max_positions, "max_position_embeddings"},
                            {c.type_vocab, "type_vocab_size"}}) {
    if (value <= 0)
      return InvalidArgument(path + ": " + key + " missing or not a positive integer");
  }
  if (c.hidden % c.heads != 0) {
    return InvalidArgument(path + ": hidden_size is not a multiple of num_attention_heads");
  }
  if (const JsonValue* v = root.Find("hidden_act"); v != nullptr && v->as_string() != "gelu") {
    return Unsupported(path + ": hidden_act \"" + v->as_string() + "\" (only \"gelu\")");
  }
  if (const JsonValue* v = root.Find("position_embedding_type");
      v != nullptr && v->is_string() && v->as_string() != "absolute") {
    return Unsupported(path + ": position_embedding_type \"" + v->as_string() +
                       "\" (only \"absolute\")");
  }
  return c;
}

BertEncoder::~BertEncoder() = default;

StatusOr<BertHostWeights> LoadBertWeights(const std::string& dir) {
  BertHostWeights w;
  RAG_ASSIGN_OR_RETURN(w.config, LoadBertConfig(dir + "/config.json"));
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    // Older Hugging Face encoders ship only PyTorch's pickle; it is converted once, outside the
    // C++ (which never unpickles), by a torch-free script.
    if (std::filesystem::exists(dir + "/pytorch_model.bin")) {
      return NotFound(dir +
                      "/model.safetensors: no such file; the directory has pytorch_model.bin: "
                      "convert it once with `python3 tools/convert_bert_weights.py " +
                      dir + "`");
    }
    return NotFound(dir + "/model.safetensors: no such file");
  }
  RAG_ASSIGN_OR_RETURN(auto st, BertTensorFile::Open(dir + "/model.safetensors"));
  const BertConfig& c = w.config;
  const int64_t h = c.hidden, inter = c.intermediate;
  const std::string p = st->Has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  RAG_RETURN_IF_ERROR(ReadTensor(*st, p, "embeddings.word_embeddings.weight", {c.vocab_size, h},
                                 &w.word_emb));
  RAG_RETURN_IF_ERROR(ReadTensor(*st, p, "embeddings.position_embeddings.weight",
                                 {c.max_positions, h}, &w.pos_emb));
  RAG_RETURN_IF_ERROR(ReadTensor(*st, p, "embeddings.token_type_embeddings.weight",
                                 {c.type_vocab, h}, &w.type_emb));
  RAG_RETURN_IF_ERROR(ReadTensor(*st, p, "embeddings.LayerNorm.weight", {h}, &w.emb_ln_g));
  RAG_RETURN_IF_ERROR(ReadTensor(*st, p, "embeddings.LayerNorm.bias", {h}, &w.emb_ln_b));
  w.layers.resize(static_cast<size_t>(c.layers));
  std::vector<float> tmp;
  for (int64_t i = 0; i < c.layers; ++i) {
    BertHostWeights::Layer& l = w.layers[static_cast<size_t>(i)];
    const std::string lp = "encoder.layer." + std::to_string(i) + ".";
    l.qkv_w.reserve(static_cast<size_t>(3 * h * h));
    l.qkv_b.reserve(static_cast<size_t>(3 * h));
    for (const char* part : {"query", "key", "value"}) {
      RAG_RETURN_IF_ERROR(
          ReadTensor(*st, p, lp + "attention.self." + part + ".weight", {h, h}, &tmp));
      l.qkv_w.insert(l.qkv_w.end(), tmp.begin(), tmp.end());
      RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "attention.self." + part + ".bias", {h}, &tmp));
      l.qkv_b.insert(l.qkv_b.end(), tmp.begin(), tmp.end());
    }
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "attention.output.dense.weight", {h, h}, &l.o_w));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "attention.output.dense.bias", {h}, &l.o_b));
    RAG_RETURN_IF_ERROR(
        ReadTensor(*st, p, lp + "attention.output.LayerNorm.weight", {h}, &l.ln1_g));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "attention.output.LayerNorm.bias", {h}, &l.ln1_b));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "intermediate.dense.weight", {inter, h}, &l.up_w));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "intermediate.dense.bias", {inter}, &l.up_b));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "output.dense.weight", {h, inter}, &l.down_w));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "output.dense.bias", {h}, &l.down_b));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "output.LayerNorm.weight", {h}, &l.ln2_g));
    RAG_RETURN_IF_ERROR(ReadTensor(*st, p, lp + "output.LayerNorm.bias", {h}, &l.ln2_b));
  }
  return w;
}

StatusOr<std::vector<int64_t>> PackedStarts(const BertConfig& config,
                                            const std::vector<std::vector<int32_t>>& seqs) {
  std::vector<int64_t> starts{0};
  starts.reserve(seqs.size() + 1);
  for (const auto& s : seqs) {
    if (s.empty()) return InvalidArgument("empty token sequence");
    if (static_cast<int64_t>(s.size()) > config.max_positions) {
      return InvalidArgument("sequence of " + std::to_string(s.size()) + " tokens is longer than " +
                             std::to_string(config.max_positions) + " positions");
    }
    for (int32_t id : s) {
      if (id < 0 || id >= config.vocab_size) {
        return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary");
      }
    }
    starts.push_back(starts.back() + static_cast<int64_t>(s.size()));
  }
  return starts;
}

StatusOr<std::unique_ptr<BertModel>> BertModel::Load(const std::string& dir) {
  RAG_ASSIGN_OR_RETURN(BertHostWeights w, LoadBertWeights(dir));
  return FromWeights(std::move(w));
}

std::unique_ptr<BertModel> BertModel::FromWeights(BertHostWeights w) {
  auto model = std::unique_ptr<BertModel>(new BertModel());
  const BertConfig& c = w.config;
  const int64_t h = c.hidden, inter = c.intermediate;
  model->config_ = c;
  model->word_emb_ = std::move(w.word_emb);
  model->pos_emb_ = std::move(w.pos_emb);
  model->type_emb_ = std::move(w.type_emb);
  model->emb_ln_g_ = std::move(w.emb_ln_g);
  model->emb_ln_b_ = std::move(w.emb_ln_b);
  for (BertHostWeights::Layer& hl : w.layers) {
    Layer l;
    l.qkv_w = PackWeights(hl.qkv_w.data(), 3 * h, h);
    l.qkv_b = std::move(hl.qkv_b);
    l.o_w = PackWeights(hl.o_w.data(), h, h);
    l.o_b = std::move(hl.o_b);
    l.ln1_g = std::move(hl.ln1_g);
    l.ln1_b = std::move(hl.ln1_b);
    l.up_w = PackWeights(hl.up_w.data(), inter, h);
    l.up_b = std::move(hl.up_b);
    l.down_w = PackWeights(hl.down_w.data(), h, inter);
    l.down_b = std::move(hl.down_b);
    l.ln2_g = std::move(hl.ln2_g);
    l.ln2_b = std::move(hl.ln2_b);
    model->layers_.push_back(std::move(l));
  }
  return model;
}

void BertModel::Attention(const float* qkv, const std::vector<int64_t>& starts, ThreadPool* pool,
                          float* ctx) const {
  const int64_t h = config_.hidden, heads = config_.heads, d = h / heads;
  const int64_t nseq = static_cast<int64_t>(starts.size()) - 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // One task per (sequence, head); each writes its own columns of ctx. The head's q, k and v^T
  // are gathered into contiguous blocks so that both products run on the AVX2 matmul kernel:
  // scores (n, n) = q k^T, then ctx (n, d) = softmax(scores) (v^T)^T.
  ParallelRows(pool, nseq * heads, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> q, k, vt, scores, o;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t s = t / heads, hd = t % heads;
      const int64_t base = starts[static_cast<size_t>(s)];
      const int64_t n = starts[static_cast<size_t>(s) + 1] - base;
      q.resize(static_cast<size_t>(n * d));
      k.resize(static_cast<size_t>(n * d));
      vt.resize(static_cast<size_t>(d * n));
      scores.resize(static_cast<size_t>(n * n));
      o.resize(static_cast<size_t>(n * d));
      for (int64_t i = 0; i < n; ++i) {
        const float* row = qkv + (base + i) * 3 * h + hd * d;
        for (int64_t e = 0; e < d; ++e) {
          q[static_cast<size_t>(i * d + e)] = row[e] * scale;
          k[static_cast<size_t>(i * d + e)] = row[h + e];
          vt[static_cast<size_t>(e * n + i)] = row[2 * h + e];
        }
      }
      MatMulRange(q.data(), n, d, k.data(), n, 0, n, scores.data());
      for (int64_t i = 0; i < n; ++i) {
        float* p = scores.data() + i * n;
        const float mx = *std::max_element(p, p + n);
        float sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; ++j) p[j] *= inv;
      }
      MatMulRange(scores.data(), n, n, vt.data(), d, 0, d, o.data());
      for (int64_t i = 0; i < n; ++i) {
        std::copy(o.data() + i * d, o.data() + (i + 1) * d, ctx + (base + i) * h + hd * d);
      }
    }
  });
}

Status BertModel::Forward(const std::vector<std::vector<int32_t>>& seqs, ThreadPool* pool,
                          std::vector<float>* out) const {
  const int64_t h = config_.hidden, inter = config_.intermediate;
  RAG_ASSIGN_OR_RETURN(const std::vector<int64_t> starts, PackedStarts(config_, seqs));
  const int64_t n = starts.back();
  std::vector<float>& x = *out;  // (n, H)
  x.assign(static_cast<size_t>(n * h), 0.0f);
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t i = 0; i < seqs[s].size(); ++i) {
      float* row = x.data() + (starts[s] + static_cast<int64_t>(i)) * h;
      const float* w = word_emb_.data() + static_cast<int64_t>(seqs[s][i]) * h;
      const float* pe = pos_emb_.data() + static_cast<int64_t>(i) * h;
      for (int64_t j = 0; j < h; ++j) row[j] = w[j] + pe[j] + type_emb_[static_cast<size_t>(j)];
    }
  }
  AddLayerNorm(x.data(), nullptr, n, h, emb_ln_g_, emb_ln_b_, config_.layer_norm_eps, pool);
  std::vector<float> qkv(static_cast<size_t>(n * 3 * h)), ctx(static_cast<size_t>(n * h));
  std::vector<float> proj(static_cast<size_t>(n * h)), up(static_cast<size_t>(n * inter));
  for (const Layer& l : layers_) {
    Linear(x.data(), n, h, l.qkv_w, l.qkv_b, 3 * h, qkv.data(), pool);
    Attention(qkv.data(), starts, pool, ctx.data());
    Linear(ctx.data(), n, h, l.o_w, l.o_b, h, proj.data(), pool);
    AddLayerNorm(x.data(), proj.data(), n, h, l.ln1_g, l.ln1_b, config_.layer_norm_eps, pool);
    Linear(x.data(), n, h, l.up_w, l.up_b, inter, up.data(), pool);
    ParallelRows(pool, n, 16, [&](int64_t r0, int64_t r1) {
      for (float* v = up.data() + r0 * inter; v < up.data() + r1 * inter; ++v) {
        *v = 0.5f * *v * (1.0f + std::erf(*v * 0.70710678118654752f));  // HF "gelu" (erf form)
      }
    });
    Linear(up.data(), n, inter, l.down_w, l.down_b, h, proj.data(), pool);
    AddLayerNorm(x.data(), proj.data(), n, h, l.ln2_g, l.ln2_b, config_.layer_norm_eps, pool);
  }
  return Status::Ok();
}

}  // namespace rag
