// A BERT encoder (BertModel of Hugging Face transformers, absolute positions, post-LayerNorm,
// erf GELU) in fp32 on the CPU, with weights from model.safetensors (bf16/f16/f32 converted at
// load; names with or without the "bert." prefix; one file, not shards).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/cpu/packed_matmul.h"
#include "common/thread_pool.h"

namespace rag {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden = 0;  // H
  int64_t layers = 0;
  int64_t heads = 0;         // H % heads == 0
  int64_t intermediate = 0;  // I
  int64_t max_positions = 0;
  int64_t type_vocab = 0;
  float layer_norm_eps = 1e-12f;
};

// Reads config.json: model_type bert (or a BERT-shaped one), hidden_act "gelu", absolute
// positions. NotFound / InvalidArgument / Unsupported naming the file and field.
StatusOr<BertConfig> LoadBertConfig(const std::string& path);

// The weights of a BERT encoder as stored (row-major fp32, nn.Linear's (out, in) layout), the
// query, key and value projections stacked into one (3H, H) matrix.
struct BertHostWeights {
  struct Layer {
    std::vector<float> qkv_w, qkv_b;    // (3H, H), (3H)
    std::vector<float> o_w, o_b;        // (H, H), (H)
    std::vector<float> ln1_g, ln1_b;    // (H)
    std::vector<float> up_w, up_b;      // (I, H), (I)
    std::vector<float> down_w, down_b;  // (H, I), (H)
    std::vector<float> ln2_g, ln2_b;    // (H)
  };
  BertConfig config;
  std::vector<float> word_emb, pos_emb, type_emb;  // (V, H), (P, H), (T, H): row 0 is used
  std::vector<float> emb_ln_g, emb_ln_b;
  std::vector<Layer> layers;
};

// Reads config.json and model.safetensors of dir (names with or without "bert."). When only
// pytorch_model.bin is there, NotFound names tools/convert_bert_weights.py, which converts it.
StatusOr<BertHostWeights> LoadBertWeights(const std::string& dir);

// Checks a packed batch against the model (ids inside the vocabulary, 1..max_positions tokens a
// sequence) and returns the row offsets: starts[s] is sequence s's first row, starts.back() the
// total. InvalidArgument naming the problem.
StatusOr<std::vector<int64_t>> PackedStarts(const BertConfig& config,
                                            const std::vector<std::vector<int32_t>>& seqs);

// What an embedder runs: the last hidden states of a packed batch (BertModel::Forward's
// contract), on the CPU (BertModel) or a GPU (engine/cuda/cuda_bert.h).
class BertEncoder {
 public:
  virtual ~BertEncoder();
  virtual const BertConfig& config() const = 0;
  virtual Status Encode(const std::vector<std::vector<int32_t>>& seqs, std::vector<float>* out) = 0;
};

class BertModel {
 public:
  // Reads config.json and model.safetensors of dir.
  static StatusOr<std::unique_ptr<BertModel>> Load(const std::string& dir);
  // Packs the weights for the CPU kernels (the embeddings and small vectors are moved in).
  static std::unique_ptr<BertModel> FromWeights(BertHostWeights weights);

  const BertConfig& config() const { return config_; }

  // The last hidden states of a packed batch: seqs[i] are token ids (token type 0, positions
  // from 0), each at most max_positions long; out gets (sum of lengths, H) floats, the rows of
  // each sequence in order. Sequences attend only to themselves, which gives exactly what a
  // padded batch with an attention mask gives for the non-padding rows. InvalidArgument for an
  // id out of the vocabulary or a sequence too long or empty. pool may be null. The model holds
  // no per-call state: concurrent calls are safe when they do not share a pool.
  Status Forward(const std::vector<std::vector<int32_t>>& seqs, ThreadPool* pool,
                 std::vector<float>* out) const;

 private:
  struct Layer {
    PackedWeights qkv_w;                // (3H, H): query, key, value rows
    std::vector<float> qkv_b;           // (3H)
    PackedWeights o_w;                  // (H, H)
    std::vector<float> o_b;             // (H)
    std::vector<float> ln1_g, ln1_b;    // (H)
    PackedWeights up_w;                 // (I, H)
    std::vector<float> up_b;            // (I)
    PackedWeights down_w;               // (H, I)
    std::vector<float> down_b;          // (H)
    std::vector<float> ln2_g, ln2_b;    // (H)
  };
  BertModel() = default;
  void Attention(const float* qkv, const std::vector<int64_t>& starts, ThreadPool* pool,
                 float* ctx) const;

  BertConfig config_;
  std::vector<float> word_emb_;  // (V, H)
  std::vector<float> pos_emb_;   // (P, H)
  std::vector<float> type_emb_;  // (T, H); row 0 is used
  std::vector<float> emb_ln_g_, emb_ln_b_;
  std::vector<Layer> layers_;
};

}  // namespace rag
