// Splits a parsed document into overlapping, sentence-aware chunks for retrieval.
//
// Contract:
// - A chunk never crosses a page or a section boundary, so its page and section are exact.
// - chunk.text == pages[page-1].text.substr(start, end - start) exactly (the span is what the
//   web page highlights), except that it is never empty or only whitespace.
// - Chunks are built from whole sentences up to about target_words words; a sentence longer than
//   max_words is cut at word boundaries. Consecutive chunks of the same page and section share
//   about overlap_words words (whole sentences) so a fact at a boundary is in one chunk whole.
// - Chunks come in reading order.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ingest/document.h"

namespace rag {

struct ChunkOptions {
  size_t target_words = 120;
  size_t overlap_words = 30;
  size_t max_words = 200;  // hard cap for one chunk
};

struct Chunk {
  int page = 1;        // 1-based page number
  size_t start = 0;    // byte offset of the chunk in its page's text
  size_t end = 0;      // one past the last byte
  std::string section; // title of the enclosing section, "" when none
  std::string text;    // the span's text
};

std::vector<Chunk> ChunkDocument(const ParsedDocument& doc, const ChunkOptions& options);

// Sentence boundaries of text as [begin, end) byte ranges, whitespace trimmed; exposed for the
// extractive answerer, which picks whole sentences. Handles abbreviations (e.g., Dr., i.e.),
// decimals (3.14), ellipses, closing quotes/brackets after the period, and blank lines.
struct SentenceSpan {
  size_t begin = 0;
  size_t end = 0;
};
std::vector<SentenceSpan> SplitSentences(const std::string& text);

}  // namespace rag
