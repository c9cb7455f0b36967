#include "retrieval/extractive_answerer.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "ingest/chunker.h"
#include "retrieval/bm25_query.h"
#include "retrieval/text_terms.h"

namespace rag {
namespace {

struct Candidate {
  int passage = 0;
  size_t begin = 0, end = 0;  // byte span in the passage
  std::unordered_set<std::string> stems;
  double score = 0;
  double coverage = 0;  // share of the question's term weight the sentence contains
  std::string key;  // normalised text for de-duplication
};

std::string NormalisedKey(std::string_view sentence) {
  std::string key;
  for (const auto& w : WordTokens(sentence)) key += w + ' ';
  return key;
}

}  // namespace

std::string ExtractiveAnswer(const std::string& question, const std::vector<std::string>& passages,
                             const ExtractiveOptions& options) {
  std::unordered_set<std::string> query;
  for (const auto& t : QueryTerms(question)) query.insert(Stem(t));
  if (query.empty()) return "";

  std::vector<Candidate> candidates;
  for (size_t p = 0; p < passages.size(); ++p) {
    for (const SentenceSpan& s : SplitSentences(passages[p])) {
      Candidate c;
      c.passage = static_cast<int>(p);
      c.begin = s.begin;
      c.end = s.end;
      const std::string_view text = std::string_view(passages[p]).substr(s.begin, s.end - s.begin);
      for (const auto& w : WordTokens(text)) c.stems.insert(Stem(w));
      c.key = NormalisedKey(text);
      candidates.push_back(std::move(c));
    }
  }
  // Sentence frequency of each query stem: rare words say more about relevance.
  std::unordered_map<std::string, int> df;
  for (const auto& c : candidates) {
    for (const auto& q : query) df[q] += c.stems.count(q);
  }
  const double n = static_cast<double>(candidates.size());
  double max_weight = 0;
  for (const auto& q : query) max_weight += std::log(1.0 + n / (1.0 + df[q]));

  for (auto& c : candidates) {
    double weight = 0;
    int matched = 0;
    for (const auto& q : query) {
      if (c.stems.count(q)) {
        weight += std::log(1.0 + n / (1.0 + df[q]));
        ++matched;
      }
    }
    if (matched == 0) continue;
    // Squared, so that a sentence sharing one common word of a two-word question ("what
    // happened in 1887?" -> any sentence with "happen") falls far behind one that answers it.
    c.coverage = weight / max_weight;
    const double coverage = c.coverage * c.coverage;
    const double rank_prior = 1.0 / (1.0 + 0.1 * c.passage);
    const size_t chars = c.end - c.begin;
    // Very short fragments ("See below.") and run-on blocks make poor answers.
    const double length_factor = chars < 25 ? 0.4 : (chars > options.max_sentence_chars ? 0.5 : 1.0);
    c.score = coverage * rank_prior * length_factor;
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });

  std::string answer;
  std::unordered_set<std::string> used;
  int emitted = 0;
  const double best = candidates.empty() ? 0 : candidates[0].score;
  for (const auto& c : candidates) {
    if (emitted >= options.max_sentences || c.score <= 0) break;
    // Keep only sentences close in merit to the best one: a weak second sentence adds noise.
    if (emitted > 0 && c.score < 0.4 * best) break;
    // And it must contain at least half of what the question asks about: a sentence that
    // shares one common word ("happen") with a two-term question is not an answer.
    if (emitted > 0 && c.coverage < 0.5) continue;
    if (!used.insert(c.key).second) continue;
    std::string_view text = std::string_view(passages[c.passage]).substr(c.begin, c.end - c.begin);
    if (!answer.empty()) answer += ' ';
    answer += "<co:" + std::to_string(c.passage) + ">";
    // Inside the answer a sentence is one line: the passage's line breaks are layout.
    for (char ch : text) answer += (ch == '\n' || ch == '\r') ? ' ' : ch;
    answer += "</co>";
    ++emitted;
  }
  return answer;
}

}  // namespace rag
