// The model-free answerer: picks the sentences of the retrieved passages that best match the
// question and writes them as a grounded answer with `<co:N>` tags, in the same format a Hermes 3
// model produces, so the same citation parser serves both.
//
// Scoring: each sentence is scored by the question's content terms it contains (stemmed,
// weighted by rarity across the passages' sentences): the squared share of the question's
// weight it covers, with a small prior for the passage's retrieval rank. Sentences after the
// first must score at least 0.4 of the best and cover at least half the question's weight. The best sentences (up to max_sentences, at least
// min_score) are output in order of relevance, each wrapped as `<co:N>sentence</co>`, where N is
// the index of its passage. Near-duplicate sentences (from overlapping chunks) are emitted once.
#pragma once

#include <string>
#include <vector>

namespace rag {

struct ExtractiveOptions {
  int max_sentences = 3;
  size_t max_sentence_chars = 400;  // longer sentences are skipped unless nothing else matches
};

// passages[i] is the text of Document:i, in retrieval order (best first). Returns "" when no
// sentence shares a content term with the question.
std::string ExtractiveAnswer(const std::string& question, const std::vector<std::string>& passages,
                             const ExtractiveOptions& options = {});

}  // namespace rag
