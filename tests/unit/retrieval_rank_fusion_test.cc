// Reciprocal rank fusion against hand-computed scores.
#include "retrieval/rank_fusion.h"

#include <gtest/gtest.h>

namespace rag {
namespace {

TEST(RankFusion, SumsReciprocalRanks) {
  // BM25: 7, 3, 9; dense: 3, 5, 7.
  const auto fused = ReciprocalRankFusion({{7, 3, 9}, {3, 5, 7}}, 60);
  ASSERT_EQ(fused.size(), 4u);
  // 3: 1/62 + 1/61; 7: 1/61 + 1/63; 9: 1/63; 5: 1/62.
  EXPECT_EQ(fused[0].first, 3);
  EXPECT_DOUBLE_EQ(fused[0].second, 1.0 / 62 + 1.0 / 61);
  EXPECT_EQ(fused[1].first, 7);
  EXPECT_DOUBLE_EQ(fused[1].second, 1.0 / 61 + 1.0 / 63);
  EXPECT_EQ(fused[2].first, 5);
  EXPECT_EQ(fused[3].first, 9);
}

TEST(RankFusion, TiesKeepFirstAppearanceAndDuplicatesCountOnce) {
  const auto fused = ReciprocalRankFusion({{1, 2}, {2, 1}});  // equal sums: 1 first (ranking 0)
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(fused[0].first, 1);
  EXPECT_DOUBLE_EQ(fused[0].second, fused[1].second);
  const auto dup = ReciprocalRankFusion({{4, 4, 4}});
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_DOUBLE_EQ(dup[0].second, 1.0 / 61);
  EXPECT_TRUE(ReciprocalRankFusion({}).empty());
  EXPECT_TRUE(ReciprocalRankFusion({{}, {}}).empty());
}

// Weighted: the first ranking at half weight (as BM25 in the assistant's fusion).
TEST(RankFusion, WeightsScaleEachRankingsContribution) {
  const auto fused = ReciprocalRankFusion({{7, 3}, {3, 5, 7}}, 60, {0.5, 1.0});
  ASSERT_EQ(fused.size(), 3u);
  // 3: 0.5/62 + 1/61; 7: 0.5/61 + 1/63; 5: 1/62.
  EXPECT_EQ(fused[0].first, 3);
  EXPECT_DOUBLE_EQ(fused[0].second, 0.5 / 62 + 1.0 / 61);
  EXPECT_EQ(fused[1].first, 7);
  EXPECT_DOUBLE_EQ(fused[1].second, 0.5 / 61 + 1.0 / 63);
  EXPECT_EQ(fused[2].first, 5);
  EXPECT_DOUBLE_EQ(fused[2].second, 1.0 / 62);
  // A ranking without a weight counts fully.
  const auto partial = ReciprocalRankFusion({{7, 3}, {3, 5, 7}}, 60, {0.5});
  EXPECT_DOUBLE_EQ(partial[0].second, 0.5 / 62 + 1.0 / 61);
}

}  // namespace
}  // namespace rag
