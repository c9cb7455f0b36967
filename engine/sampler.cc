#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace rag {

Status ValidateSamplingParams(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || p.temperature > 100.0f) {
    return InvalidArgument("temperature must be between 0 and 100");
  }
  if (p.top_k < 0) return InvalidArgument("top_k must be 0 (off) or positive");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return InvalidArgument("top_p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) return InvalidArgument("min_p must be in [0, 1)");
  if (!(p.repetition_penalty > 0.0f) || p.repetition_penalty > 10.0f) {
    return InvalidArgument("repetition_penalty must be in (0, 10]");
  }
  return Status::Ok();
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::Sample(const float* logits, int vocab, const std::vector<int32_t>& history) {
  scratch_.assign(logits, logits + vocab);
  std::vector<float>& x = scratch_;

  if (params_.repetition_penalty != 1.0f) {
    // As transformers' RepetitionPenaltyLogitsProcessor: each distinct seen token once;
    // positive logits divided, negative ones multiplied.
    std::vector<bool> seen(static_cast<size_t>(vocab), false);
    for (int32_t id : history) {
      if (id < 0 || id >= vocab || seen[id]) continue;
      seen[id] = true;
      x[id] = x[id] > 0 ? x[id] / params_.repetition_penalty : x[id] * params_.repetition_penalty;
    }
  }
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());
  }
  for (float& v : x) v /= params_.temperature;

  // Candidates sorted by logit, best first; filters cut the tail.
  order_.resize(static_cast<size_t>(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  size_t keep = order_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(),
                      [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  } else {
    std::sort(order_.begin(), order_.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  }
  // Softmax over the kept candidates.
  const float max_logit = x[order_[0]];
  std::vector<double> probs(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += probs[i] = std::exp(static_cast<double>(x[order_[i]] - max_logit));
  for (double& p : probs) p /= total;
  if (params_.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p (at least one token).
    double mass = 0;
    size_t n = 0;
    while (n < keep) {
      mass += probs[n++];
      if (mass >= params_.top_p) break;
    }
    keep = n;
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= floor) ++n;
    keep = n;
  }
  double kept_mass = 0;
  for (size_t i = 0; i < keep; ++i) kept_mass += probs[i];
  std::uniform_real_distribution<double> uniform(0.0, kept_mass);
  const double r = uniform(rng_);
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (r < acc) return order_[i];
  }
  return order_[keep - 1];
}

float Sampler::NextUniform() {
  // Below 1 in float: the largest float under 1 when the double rounds up to 1.
  const float u = static_cast<float>(std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
  return u < 1.0f ? u : 0x1.fffffep-1f;
}

}  // namespace rag
