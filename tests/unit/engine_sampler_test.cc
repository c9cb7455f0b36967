#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

namespace rag {
namespace {

SamplingParams Params(float temperature, int top_k = 0, float top_p = 1, float min_p = 0,
                      float repetition_penalty = 1, uint64_t seed = 7) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.repetition_penalty = repetition_penalty;
  p.seed = seed;
  return p;
}

TEST(Sampler, GreedyIsArgmax) {
  const std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.4f};
  Sampler s(Params(0));
  EXPECT_EQ(s.Sample(logits.data(), 4, {}), 1);
}

TEST(Sampler, RepetitionPenaltyFollowsTransformers) {
  // transformers divides positive logits and multiplies negative ones of seen tokens (once each).
  const std::vector<float> logits = {3.0f, 2.0f, -0.5f, 1.9f};
  Sampler s(Params(0, 0, 1, 0, 2.0f));
  // Token 0 seen: 3.0 -> 1.5; token 1 seen twice: 2.0 -> 1.0; token 3 (1.9) now wins.
  EXPECT_EQ(s.Sample(logits.data(), 4, {0, 1, 1}), 3);
  // A negative logit gets more negative, never flips to positive.
  const std::vector<float> neg = {-0.1f, -0.3f};
  Sampler s2(Params(0, 0, 1, 0, 4.0f));
  EXPECT_EQ(s2.Sample(neg.data(), 2, {0}), 1);  // -0.1 * 4 = -0.4 < -0.3
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f, 0.5f};
  double z = 0;
  for (float l : logits) z += std::exp(l);
  Sampler s(Params(1.0f, 0, 1, 0, 1, 123));
  std::map<int, int> counts;
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[s.Sample(logits.data(), 4, {})];
  for (int t = 0; t < 4; ++t) {
    const double expected = std::exp(logits[t]) / z;
    EXPECT_NEAR(counts[t] / static_cast<double>(n), expected, 0.01) << t;
  }
}

TEST(Sampler, FiltersCutTheTail) {
  const std::vector<float> logits = {2.0f, 1.9f, 1.8f, -5.0f, -6.0f};
  std::set<int> seen;
  Sampler top_k(Params(1.0f, 2));
  for (int i = 0; i < 2000; ++i) seen.insert(top_k.Sample(logits.data(), 5, {}));
  EXPECT_EQ(seen, (std::set<int>{0, 1}));

  seen.clear();
  Sampler top_p(Params(1.0f, 0, 0.5f));  // p = .36, .33, .30, ...: the first two reach 0.5
  for (int i = 0; i < 2000; ++i) seen.insert(top_p.Sample(logits.data(), 5, {}));
  EXPECT_EQ(seen, (std::set<int>{0, 1}));

  seen.clear();
  Sampler min_p(Params(1.0f, 0, 1, 0.01f));  // tokens 3, 4 are < 1% of the best
  for (int i = 0; i < 4000; ++i) seen.insert(min_p.Sample(logits.data(), 5, {}));
  EXPECT_EQ(seen, (std::set<int>{0, 1, 2}));
}

TEST(Sampler, SameSeedSameDraws) {
  const std::vector<float> logits = {0.3f, 0.2f, 0.1f, 0.0f, -0.1f};
  Sampler a(Params(0.8f, 0, 0.95f, 0, 1, 99)), b(Params(0.8f, 0, 0.95f, 0, 1, 99));
  Sampler c(Params(0.8f, 0, 0.95f, 0, 1, 100));
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    const int x = a.Sample(logits.data(), 5, {});
    EXPECT_EQ(x, b.Sample(logits.data(), 5, {}));
    differs = differs || x != c.Sample(logits.data(), 5, {});
  }
  EXPECT_TRUE(differs);
}

TEST(Sampler, ValidationNamesTheField) {
  EXPECT_TRUE(ValidateSamplingParams(Params(0.7f, 40, 0.9f, 0.05f, 1.1f)).ok());
  EXPECT_NE(ValidateSamplingParams(Params(-1)).message().find("temperature"), std::string::npos);
  EXPECT_NE(ValidateSamplingParams(Params(1, -1)).message().find("top_k"), std::string::npos);
  EXPECT_NE(ValidateSamplingParams(Params(1, 0, 0)).message().find("top_p"), std::string::npos);
  EXPECT_NE(ValidateSamplingParams(Params(1, 0, 1, 1)).message().find("min_p"), std::string::npos);
  EXPECT_NE(ValidateSamplingParams(Params(1, 0, 1, 0, 0)).message().find("repetition"), std::string::npos);
  EXPECT_FALSE(ValidateSamplingParams(Params(NAN)).ok());
}

}  // namespace
}  // namespace rag
