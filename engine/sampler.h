// Token sampling from one row of logits, with the processors applied in the order Hugging Face
// transformers applies them in generate(): repetition penalty, then temperature, top-k, top-p,
// min-p; then greedy argmax (temperature 0) or a draw from the softmax with the request's seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/status.h"

namespace rag {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off; >1 discourages tokens already in the sequence
  uint64_t seed = 0;
};

// InvalidArgument naming the field for values outside their ranges.
Status ValidateSamplingParams(const SamplingParams& params);

// Not thread-safe: one per sequence (it owns the sequence's random generator).
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // logits: (vocab) for the next position; history: the ids of the sequence so far (prompt and
  // generated), for the repetition penalty. Returns the chosen id.
  int32_t Sample(const float* logits, int vocab, const std::vector<int32_t>& history);
  // True when Sample is the plain argmax of the logits (temperature 0, no repetition penalty),
  // which a backend may compute where the logits are.
  bool IsPlainGreedy() const {
    return params_.temperature == 0.0f && params_.repetition_penalty == 1.0f;
  }
  // True when a backend's device sampling (temperature, top-k, top-p) covers these params: no
  // repetition penalty, no min-p.
  bool SamplesOnDevice() const {
    return params_.repetition_penalty == 1.0f && params_.min_p == 0.0f;
  }
  const SamplingParams& params() const { return params_; }
  // The next uniform draw in [0, 1) of this sequence's seeded generator (for device sampling).
  float NextUniform();

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;
  std::vector<int32_t> order_;
};

}  // namespace rag
