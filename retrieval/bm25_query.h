// Turns a natural-language question into an FTS5 MATCH expression for BM25.
//
// "How does one pronounce Debian?" -> "pronounce" OR "debian"
// Words are lower-cased and split as FTS5's unicode61 tokenizer would; English stop words and
// question words are dropped (unless nothing else remains); each term is quoted so that FTS5
// syntax in the question (AND, NEAR, *, quotes, column filters) is never interpreted. The
// porter tokenizer of the index stems the quoted terms, so "installing" matches "install".
#pragma once

#include <string>
#include <vector>

namespace rag {

// Content terms of a question, lower-cased, stop words removed, duplicates dropped, in order.
std::vector<std::string> QueryTerms(const std::string& question);

// The MATCH expression; "" when the question has no searchable term.
std::string BuildFtsQuery(const std::string& question);

}  // namespace rag
