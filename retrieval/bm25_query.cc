#include "retrieval/bm25_query.h"

#include "retrieval/text_terms.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace rag {

std::vector<std::string> QueryTerms(const std::string& question) {
  const std::vector<std::string> tokens = WordTokens(question);
  std::vector<std::string> terms;
  std::unordered_set<std::string> seen;
  for (const auto& t : tokens) {
    if (IsStopWord(t) || !seen.insert(t).second) continue;
    terms.push_back(t);
  }
  if (terms.empty()) {
    // A question made only of stop words ("what is it?") still deserves a search.
    seen.clear();
    for (const auto& t : tokens) {
      if (seen.insert(t).second) terms.push_back(t);
    }
  }
  return terms;
}

std::string BuildFtsQuery(const std::string& question) {
  std::string query;
  for (const auto& term : QueryTerms(question)) {
    if (!query.empty()) query += " OR ";
    // Terms hold no '"' (WordTokens drops punctuation), so quoting is safe and disables FTS5
    // operators such as AND, NOT, NEAR and column filters inside the question.
    query += '"' + term + '"';
  }
  return query;
}

}  // namespace rag
