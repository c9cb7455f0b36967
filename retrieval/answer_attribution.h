// Citations that can be trusted: every sentence of an answer is checked against the retrieved
// passages before a citation is returned (issue 4, DESIGN.md section 2).
//
// Support measure (lexical): a sentence's content terms are its word tokens (text_terms.h: the
// FTS5-like tokenizer, lower-cased) minus stop words, stemmed, unique. A passage window (one
// passage sentence, or two consecutive ones, since a model often fuses two facts into one
// sentence) supports the sentence with score = |sentence terms found in the window| / |sentence
// terms|: the share of what the sentence claims that the passage states in so many words. A
// sentence is supported by a passage when its best window scores at least `min_support`. Why
// 0.6: a sentence copied or lightly paraphrased from a passage keeps most of its content words
// (extractive answers score 1.0); an answer sentence on the right topic but not stated by the
// passage typically shares only the topic words (the question's terms), 20-50% of its terms, and
// "more than half" is the cut of ROUGE-style precision checks. Sentences with fewer than
// `min_terms` content terms ("Yes.", "Cited Documents: 0") make no checkable claim and are
// skipped (neither cited nor unsupported).
//
// Policy:
// - A sentence inside a `<co:N>` span (from the model's tags) keeps the cited sources that
//   support it. When none of them does, the sentence is attributed as if it had no tag (the
//   wrong source is dropped, never shown).
// - A sentence without a tag is attributed: every passage whose best window scores at least
//   min_support supports it (best first, at most max_sources).
// - A sentence no passage supports is listed as unsupported and carries no citation.
//
// Offsets: sentence start/end are code points of the answer (as ParsedAnswer's); passage_start/
// passage_end are code points of the passage text, the supporting window, half-open.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/citations.h"

namespace rag {

struct AttributionOptions {
  double min_support = 0.6;
  size_t min_terms = 2;
  size_t max_sources = 3;
};

struct SpanSupport {
  int source = 0;            // passage index (Document:N)
  size_t passage_start = 0;  // code points in the passage text
  size_t passage_end = 0;
  double score = 0;          // share of the sentence's content terms found in the window
};

struct VerifiedCitation {
  size_t start = 0;  // code points in the answer, half-open
  size_t end = 0;
  std::string text;
  std::vector<int> sources;           // ascending, unique; == the sources of `support`
  std::vector<SpanSupport> support;   // best first
  bool from_tag = false;              // the model's own <co:N> tag, verified
};

struct AnswerSentence {
  size_t start = 0;  // code points in the answer, half-open
  size_t end = 0;
  std::string text;
};

struct AttributedAnswer {
  std::string answer;
  std::vector<VerifiedCitation> citations;   // in answer order, one per supported sentence
  std::vector<AnswerSentence> unsupported;   // in answer order
  // Counts for evaluation (ALCE-style; cli_eval_answers.cc).
  int claim_sentences = 0;     // sentences with >= min_terms content terms
  int tagged_sentences = 0;    // claim sentences inside a model tag
  int tag_pairs = 0;           // (sentence, tagged source) pairs
  int tag_pairs_supported = 0; // of those, the source supports the sentence
};

// The best supporting window of `passage` for `sentence` (score 0 and an empty span when the
// sentence has no content terms).
SpanSupport BestSupport(const std::string& sentence, const std::string& passage, int source);

// Splits parsed.answer into sentences (ingest's SplitSentences) and verifies or attributes each
// as described above. passages[i] is the text of Document:i.
AttributedAnswer AttributeAnswer(const ParsedAnswer& parsed, const std::vector<std::string>& passages,
                                 const AttributionOptions& options = {});

}  // namespace rag
