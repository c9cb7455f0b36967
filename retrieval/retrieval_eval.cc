#include "retrieval/retrieval_eval.h"

#include <set>

namespace rag {
namespace {

std::set<std::vector<std::string>> Runs(const std::vector<std::string>& words) {
  std::set<std::vector<std::string>> runs;
  for (size_t i = 0; i + kGoldRunWords <= words.size(); ++i) {
    runs.emplace(words.begin() + static_cast<std::ptrdiff_t>(i),
                 words.begin() + static_cast<std::ptrdiff_t>(i + kGoldRunWords));
  }
  return runs;
}

}  // namespace

std::vector<std::string> EvalWords(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : text) {
    char c = ch;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

int FirstHitRank(const std::string& gold, const std::vector<std::string>& passages) {
  const std::set<std::vector<std::string>> gold_runs = Runs(EvalWords(gold));
  for (size_t r = 0; r < passages.size() && r < 10; ++r) {
    for (const auto& run : Runs(EvalWords(passages[r]))) {
      if (gold_runs.count(run)) return static_cast<int>(r);
    }
  }
  return -1;
}

int RetrievalScorer::Add(const std::string& gold, const std::vector<std::string>& passages) {
  ++score_.questions;
  const int rank = FirstHitRank(gold, passages);
  if (rank >= 0) {
    hits1_ += rank == 0;
    hitsk_ += rank < score_.k;
    rr_ += 1.0 / (rank + 1);
  }
  return rank;
}

RetrievalScore RetrievalScorer::Result() const {
  RetrievalScore s = score_;
  if (s.questions > 0) {
    const double n = static_cast<double>(s.questions);
    s.recall_at_1 = static_cast<double>(hits1_) / n;
    s.recall_at_k = static_cast<double>(hitsk_) / n;
    s.mrr_at_10 = rr_ / n;
  }
  return s;
}

}  // namespace rag
