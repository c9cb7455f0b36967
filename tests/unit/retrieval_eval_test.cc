// The retrieval scorer against hand-computed cases of the shared scorer's rule
// (../shared/eval/score_retrieval.py): 8-word runs, first hit rank, recall@1/@k, MRR@10.
#include "retrieval/retrieval_eval.h"

#include <gtest/gtest.h>

namespace rag {
namespace {

const std::string kGold =
    "The package manager keeps a database of installed packages in /var/lib/dpkg, and APT "
    "reads it before every upgrade.";

TEST(RetrievalEval, WordsAreLowercaseAsciiAlnumRuns) {
  EXPECT_EQ(EvalWords("APT's DB: /var/lib/dpkg, v2.0 -- éclair"),
            (std::vector<std::string>{"apt", "s", "db", "var", "lib", "dpkg", "v2", "0", "clair"}));
  EXPECT_TRUE(EvalWords("").empty());
  EXPECT_TRUE(EvalWords("--- ...").empty());
}

TEST(RetrievalEval, AHitNeedsEightConsecutiveGoldWords) {
  // 8 consecutive words of the gold, differently cased and punctuated: a hit.
  EXPECT_EQ(FirstHitRank(kGold, {"unrelated text", "KEEPS a DATABASE of installed packages, in /VAR/lib"}), 1);
  // Only 7 consecutive words: no hit.
  EXPECT_EQ(FirstHitRank(kGold, {"keeps a database of installed packages in"}), -1);
  // The same 8 words out of order: no hit.
  EXPECT_EQ(FirstHitRank(kGold, {"a keeps database of installed packages in var lib"}), -1);
  // A hit past the tenth passage does not count.
  std::vector<std::string> eleven(10, "nothing here at all");
  eleven.push_back(kGold);
  EXPECT_EQ(FirstHitRank(kGold, eleven), -1);
  // A gold shorter than 8 words can never be hit.
  EXPECT_EQ(FirstHitRank("too short a gold", {"too short a gold"}), -1);
}

TEST(RetrievalEval, ScoresAverageOverQuestions) {
  RetrievalScorer scorer(5);
  EXPECT_EQ(scorer.Add(kGold, {kGold}), 0);                                   // rank 0
  EXPECT_EQ(scorer.Add(kGold, {"a", "b", "c", kGold}), 3);                    // rank 3
  EXPECT_EQ(scorer.Add(kGold, {"a", "b", "c", "d", "e", "f", kGold}), 6);     // rank 6: past k
  EXPECT_EQ(scorer.Add(kGold, {"a"}), -1);                                    // miss
  const RetrievalScore s = scorer.Result();
  EXPECT_EQ(s.questions, 4);
  EXPECT_EQ(s.k, 5);
  EXPECT_DOUBLE_EQ(s.recall_at_1, 0.25);
  EXPECT_DOUBLE_EQ(s.recall_at_k, 0.5);
  EXPECT_DOUBLE_EQ(s.mrr_at_10, (1.0 + 1.0 / 4 + 1.0 / 7) / 4);
  EXPECT_EQ(RetrievalScorer(5).Result().questions, 0);
}

}  // namespace
}  // namespace rag
