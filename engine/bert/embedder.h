// Sentence embedders: text in, one fixed-size vector out per text. BertEmbedder runs a
// sentence-transformers directory (all-MiniLM-L6-v2 by default, fetched by scripts/setup.sh
// into models/all-MiniLM-L6-v2) on the CPU or, given a device encoder, a GPU, matching
// sentence-transformers' encode().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace rag {

class Embedder {
 public:
  virtual ~Embedder();
  // Identifies the model (stored with an index: a different name means re-indexing).
  virtual const std::string& name() const = 0;
  virtual int dim() const = 0;
  // One vector of dim() floats per text, in order. Thread-safe for the BERT embedder (calls
  // share its thread pool, one at a time).
  virtual StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) = 0;
};

struct BertHostWeights;
class BertEncoder;
// Builds the encoder an embedder runs on a device (engine/cuda/cuda_bert.h) from the loaded
// weights.
using BertEncoderFactory =
    std::function<StatusOr<std::unique_ptr<BertEncoder>>(const BertHostWeights&)>;

// Loads a sentence-transformers directory: config.json, model.safetensors, tokenizer.json,
// modules.json (a Normalize module turns on L2 normalisation), 1_Pooling/config.json (mean or
// CLS pooling; mean when absent) and sentence_bert_config.json (max_seq_length; 512 when absent,
// capped by the model's positions). NotFound naming the missing file; Unsupported for models or
// pooling modes we do not run. Only safetensors weights are read: a directory that has just
// pytorch_model.bin (older e5/gte/bge revisions) is converted once with
// `python3 tools/convert_bert_weights.py DIR` (no torch needed), which the NotFound names.
// num_threads <= 0 means all cores. The name is the directory's last component (the same on every
// device: the vectors agree). With device_encoder the encoder runs there (a GPU) instead of on
// num_threads CPU threads.
StatusOr<std::unique_ptr<Embedder>> LoadBertEmbedder(const std::string& dir, int num_threads,
                                                     const BertEncoderFactory& device_encoder = {});

}  // namespace rag
