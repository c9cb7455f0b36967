// The model-level interface every backend implements (CPU now, CUDA next): one forward pass
// over a batch of sequences whose keys and values live in a paged KV cache.
//
// Paged KV cache: the cache is an array of blocks of `block_size` token slots (per layer, per
// KV head). A sequence owns a list of blocks (its block table, from the KvBlockManager);
// token position p of the sequence lives in slot p % block_size of block
// block_table[p / block_size]. The backend owns the cache memory; the block manager (CPU code,
// no tensors) only decides which block ids a sequence uses.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/model_config.h"

namespace rag {

// One sequence's part of a batch: `tokens` are fed at positions start_pos, start_pos+1, ...
// (a prompt chunk during prefill, one token during decode). Keys/values of positions below
// start_pos are already in the cache; the new ones are written there by Forward.
struct SequenceInput {
  std::vector<int32_t> tokens;
  int32_t start_pos = 0;
  std::vector<int32_t> block_table;  // covers positions [0, start_pos + tokens.size())
  bool all_logits = false;           // logits for every token (tests); else only the last
};

struct ForwardBatch {
  std::vector<SequenceInput> sequences;
};

// One logit row's sampling on the device (ForwardSample): SampleRows' parameters
// (kernels/kernels.h): temperature <= 0 is greedy, top_k <= 0 and top_p >= 1 are off; uniform in
// [0, 1) is the draw, made by the caller (the request's seeded generator).
struct DeviceSampling {
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float uniform = 0.0f;
};

struct BackendInfo {
  const char* name;    // "cpu", "cuda"
  int block_size;      // token slots per KV block
  int num_blocks;      // blocks in the cache
  // The most tokens and sequences one Forward takes; 0: no limit of its own. A backend that
  // names them wants steps that large (EngineOptions::For sizes the Engine's steps to them).
  int max_batch_tokens = 0;
  int max_batch_seqs = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelConfig& config() const = 0;
  virtual BackendInfo info() const = 0;

  // Runs the model over the batch and returns logits, row-major:
  // for each sequence in order, tokens.size() rows when all_logits, else 1 row; each row has
  // config().vocab_size floats. InvalidArgument for a block table too short, a position past
  // max_position_embeddings, or a token id outside the vocabulary.
  virtual StatusOr<std::vector<float>> Forward(const ForwardBatch& batch) = 0;

  // Greedy steps without copying logits out: the argmax of each logit row (lowest id among
  // equal maxima, as the Sampler's greedy choice), when the backend can pick it where the
  // logits are (the CUDA backend: 0.5 MB of logits a sequence a step stay on the GPU).
  virtual bool HasForwardArgmax() const { return false; }
  virtual StatusOr<std::vector<int32_t>> ForwardArgmax(const ForwardBatch& batch) {
    return Unsupported("this backend has no ForwardArgmax");
  }
  // Sampled steps the same way: `rows` holds one DeviceSampling per logit row (in Forward's
  // order); returns the drawn id of each (temperature, top-k, top-p on the device: the logits
  // stay where they are).
  virtual bool HasForwardSample() const { return false; }
  virtual StatusOr<std::vector<int32_t>> ForwardSample(const ForwardBatch& batch,
                                                       const std::vector<DeviceSampling>& rows) {
    (void)batch;
    (void)rows;
    return Unsupported("this backend has no ForwardSample");
  }
};

// The checks every backend's Forward makes first (the InvalidArgument cases above), against
// a cache of `num_blocks` blocks of `block_size` slots.
Status ValidateForwardBatch(const ForwardBatch& batch, const ModelConfig& config,
                            int64_t block_size, int64_t num_blocks);

}  // namespace rag
