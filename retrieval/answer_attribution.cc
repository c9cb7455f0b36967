#include "retrieval/answer_attribution.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_set>

#include "ingest/chunker.h"
#include "retrieval/text_terms.h"

namespace rag {
namespace {

using TermSet = std::unordered_set<std::string>;

TermSet ContentTerms(std::string_view text) {
  TermSet terms;
  for (const std::string& w : WordTokens(text)) {
    if (!IsStopWord(w)) terms.insert(Stem(w));
  }
  return terms;
}

size_t CodePoints(const std::string& text, size_t bytes) {
  return Utf8Length(std::string_view(text).substr(0, bytes));
}

// A passage split once into sentences with their terms, reused for every answer sentence.
struct IndexedPassage {
  const std::string* text = nullptr;
  std::vector<SentenceSpan> sentences;
  std::vector<TermSet> terms;  // per sentence
};

IndexedPassage IndexPassage(const std::string& text) {
  IndexedPassage p;
  p.text = &text;
  p.sentences = SplitSentences(text);
  for (const auto& s : p.sentences) p.terms.push_back(ContentTerms(std::string_view(text).substr(s.begin, s.end - s.begin)));
  return p;
}

// Best window of one or two consecutive sentences; a single sentence wins ties (tighter span),
// and among equal windows the first.
SpanSupport Best(const TermSet& claim, const IndexedPassage& p, int source) {
  SpanSupport best;
  best.source = source;
  if (claim.empty()) return best;
  size_t best_hits = 0, best_begin = 0, best_end = 0;
  // Single sentences first: a two-sentence window must do strictly better to be chosen.
  for (size_t width = 1; width <= 2; ++width) {
    for (size_t i = 0; i + width <= p.sentences.size(); ++i) {
      size_t hits = 0;
      for (const std::string& t : claim) {
        bool found = p.terms[i].count(t) > 0 || (width == 2 && p.terms[i + 1].count(t) > 0);
        hits += found ? 1 : 0;
      }
      if (hits > best_hits) {
        best_hits = hits;
        best_begin = p.sentences[i].begin;
        best_end = p.sentences[i + width - 1].end;
      }
    }
  }
  if (best_hits == 0) return best;
  best.score = static_cast<double>(best_hits) / static_cast<double>(claim.size());
  best.passage_start = CodePoints(*p.text, best_begin);
  best.passage_end = CodePoints(*p.text, best_end);
  return best;
}

}  // namespace

SpanSupport BestSupport(const std::string& sentence, const std::string& passage, int source) {
  return Best(ContentTerms(sentence), IndexPassage(passage), source);
}

AttributedAnswer AttributeAnswer(const ParsedAnswer& parsed, const std::vector<std::string>& passages,
                                 const AttributionOptions& options) {
  AttributedAnswer out;
  out.answer = parsed.answer;
  std::vector<IndexedPassage> indexed;
  indexed.reserve(passages.size());
  for (const auto& p : passages) indexed.push_back(IndexPassage(p));
  const int n = static_cast<int>(passages.size());

  for (const SentenceSpan& s : SplitSentences(parsed.answer)) {
    AnswerSentence sentence;
    sentence.text = parsed.answer.substr(s.begin, s.end - s.begin);
    sentence.start = CodePoints(parsed.answer, s.begin);
    sentence.end = sentence.start + Utf8Length(sentence.text);
    const TermSet claim = ContentTerms(sentence.text);
    if (claim.size() < options.min_terms) continue;
    ++out.claim_sentences;

    // The model's tags on this sentence: every citation span that overlaps it.
    std::set<int> tagged;
    for (const Citation& c : parsed.citations) {
      if (c.start < sentence.end && sentence.start < c.end) {
        for (int src : c.sources) {
          if (src >= 0 && src < n) tagged.insert(src);
        }
      }
    }
    std::vector<SpanSupport> support;
    if (!tagged.empty()) {
      ++out.tagged_sentences;
      for (int src : tagged) {
        ++out.tag_pairs;
        SpanSupport b = Best(claim, indexed[src], src);
        if (b.score >= options.min_support) {
          ++out.tag_pairs_supported;
          support.push_back(b);
        }
      }
    }
    const bool from_tag = !support.empty();
    if (support.empty()) {
      for (int src = 0; src < n; ++src) {
        SpanSupport b = Best(claim, indexed[src], src);
        if (b.score >= options.min_support) support.push_back(b);
      }
    }
    if (support.empty()) {
      out.unsupported.push_back(std::move(sentence));
      continue;
    }
    // Best first; among equals the earlier (better retrieved) passage.
    std::stable_sort(support.begin(), support.end(),
                     [](const SpanSupport& a, const SpanSupport& b) { return a.score > b.score; });
    if (support.size() > options.max_sources) support.resize(options.max_sources);
    VerifiedCitation c;
    c.start = sentence.start;
    c.end = sentence.end;
    c.text = std::move(sentence.text);
    for (const auto& sp : support) c.sources.push_back(sp.source);
    std::sort(c.sources.begin(), c.sources.end());
    c.support = std::move(support);
    c.from_tag = from_tag;
    out.citations.push_back(std::move(c));
  }
  return out;
}

}  // namespace rag
