// TextShingles: the Jaccard similarity of word 4-gram sets that Retrieve uses to keep one copy of
// a repeated passage, on texts built to sit on either side of the threshold.
#include <gtest/gtest.h>

#include <string>

#include "retrieval/near_duplicate.h"

namespace rag {
namespace {

// n distinct words w<from>..w<from+n-1>, space-separated.
std::string Words(int from, int n) {
  std::string s;
  for (int i = from; i < from + n; ++i) s += (s.empty() ? "w" : " w") + std::to_string(i);
  return s;
}

TEST(NearDuplicateTest, SameWordsAreDuplicatesWhateverTheCaseAndPunctuation) {
  const std::string text = "The island ferry departs from the north pier at seven o'clock.";
  EXPECT_DOUBLE_EQ(TextShingles(text).Jaccard(TextShingles(text)), 1.0);
  EXPECT_DOUBLE_EQ(TextShingles(text).Jaccard(TextShingles(
                       "the ISLAND ferry, departs from the north pier -- at seven o'clock!")),
                   1.0);
}

TEST(NearDuplicateTest, OneWordChangedInAPassageIsStillADuplicate) {
  const std::string a = Words(0, 200);
  std::string b = a;
  b.replace(b.find("w100 "), 5, "changed ");
  const double j = TextShingles(a).Jaccard(TextShingles(b));
  EXPECT_GT(j, kNearDuplicateJaccard);  // 4 of ~200 shingles differ: about 0.96
  EXPECT_LT(j, 1.0);
}

TEST(NearDuplicateTest, NeighbouringChunksAndOtherTextsAreNot) {
  // Two 200-word chunks sharing a 50-word overlap, as the chunker makes them.
  EXPECT_LT(TextShingles(Words(0, 200)).Jaccard(TextShingles(Words(150, 200))), 0.2);
  EXPECT_DOUBLE_EQ(TextShingles(Words(0, 50)).Jaccard(TextShingles(Words(1000, 50))), 0.0);
  // Half of a passage is not its duplicate.
  EXPECT_LT(TextShingles(Words(0, 200)).Jaccard(TextShingles(Words(0, 100))), kNearDuplicateJaccard);
}

TEST(NearDuplicateTest, ShortAndEmptyTexts) {
  EXPECT_DOUBLE_EQ(TextShingles("Yes.").Jaccard(TextShingles("yes")), 1.0);
  EXPECT_DOUBLE_EQ(TextShingles("Yes.").Jaccard(TextShingles("No.")), 0.0);
  EXPECT_DOUBLE_EQ(TextShingles("").Jaccard(TextShingles("  ")), 1.0);
  EXPECT_DOUBLE_EQ(TextShingles("").Jaccard(TextShingles("words here")), 0.0);
}

}  // namespace
}  // namespace rag
