// Words of a text as retrieval sees them: tokens split like SQLite FTS5's unicode61 tokenizer
// (ASCII letters and digits, any non-ASCII byte kept inside a word), lower-cased; an English
// stop-word list; and a light suffix stemmer for matching question words to sentence words.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rag {

// Lower-cased word tokens in order.
std::vector<std::string> WordTokens(std::string_view text);

// True for function words and the words questions are made of ("what", "does", "how").
bool IsStopWord(std::string_view word);

// A light, deterministic stemmer: strips common English inflections ("installing" ->
// "install", "packages" -> "packag", "libraries" -> "librari") so that inflected forms of
// one word compare equal. Not the Porter algorithm; only used to compare words with each other.
std::string Stem(std::string_view word);

}  // namespace rag
