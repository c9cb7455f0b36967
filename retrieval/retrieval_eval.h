// Retrieval quality against gold answers, chunker-independent (the rule of
// ../shared/eval/score_retrieval.py): a retrieved passage is a hit when it shares a run of
// kGoldRunWords consecutive words with the gold section, words being the maximal runs of
// [a-z0-9] after ASCII lowercasing (Python's lower() there also maps the few non-ASCII letters
// whose lowercase is ASCII, such as the Kelvin sign; no other difference). Reports recall@1, recall@k and MRR@10 over the first 10
// passages of each question.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rag {

inline constexpr int kGoldRunWords = 8;

// Lowercased [a-z0-9]+ runs of text (other bytes, UTF-8 included, separate words).
std::vector<std::string> EvalWords(const std::string& text);

// Rank (0-based, among the first 10 passages) of the first hit, or -1.
int FirstHitRank(const std::string& gold, const std::vector<std::string>& passages);

struct RetrievalScore {
  int64_t questions = 0;
  int k = 5;
  double recall_at_1 = 0, recall_at_k = 0, mrr_at_10 = 0;
};

// Accumulates questions one at a time.
class RetrievalScorer {
 public:
  explicit RetrievalScorer(int k) { score_.k = k; }
  // Adds one question; returns the rank of its first hit (-1: none in the first 10).
  int Add(const std::string& gold, const std::vector<std::string>& passages);
  // Averages over the questions added (zeros when none).
  RetrievalScore Result() const;

 private:
  RetrievalScore score_;
  int64_t hits1_ = 0, hitsk_ = 0;
  double rr_ = 0;
};

}  // namespace rag
