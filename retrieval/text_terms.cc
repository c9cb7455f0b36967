#include "retrieval/text_terms.h"

#include <unordered_set>

namespace rag {
namespace {

bool IsTokenByte(unsigned char c) {
  // unicode61 treats ASCII letters and digits as token characters, ASCII punctuation as
  // separators, and (with default settings) all non-ASCII letters as token characters; we keep
  // every non-ASCII byte, which keeps multi-byte letters whole.
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

}  // namespace

// English function words and the words questions are made of ("how do I ...?"). They carry no
// topic, and with OR semantics they would pull in every chunk.
bool IsStopWord(std::string_view word) {
  static const std::unordered_set<std::string_view> kWords = {
      "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
      "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
      "by", "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "else",
      "few", "for", "from", "further", "get", "gets", "got", "had", "has", "have", "having", "he",
      "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
      "is", "it", "its", "itself", "just", "me", "might", "more", "most", "must", "my", "myself",
      "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other", "our",
      "ours", "ourselves", "out", "over", "own", "same", "shall", "she", "should", "so", "some",
      "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
      "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "us",
      "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
      "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
      "s", "t", "d", "ll", "m", "re", "ve", "don", "doesn", "isn", "aren", "can't", "cannot",
      "tell", "explain", "please", "anyone", "someone", "something", "there's", "also", "way",
      "need", "want", "use", "using", "used", "make", "know"};
  return kWords.count(word) > 0;
}


std::vector<std::string> WordTokens(std::string_view text) {
  std::vector<std::string> tokens;
  std::string cur;
  for (unsigned char c : text) {
    if (IsTokenByte(c)) {
      cur += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    } else if (!cur.empty()) {
      tokens.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

std::string Stem(std::string_view word) {
  std::string w(word);
  auto ends = [&](std::string_view suffix) {
    return w.size() > suffix.size() + 2 && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  auto cut = [&](size_t n) { w.resize(w.size() - n); };
  if (ends("ies")) { cut(3); w += 'i'; }
  else if (ends("sses")) cut(2);
  else if (ends("s") && !ends("ss") && !ends("us") && !ends("is")) cut(1);
  if (ends("ing")) cut(3);
  else if (ends("edly")) cut(4);
  else if (ends("ed")) cut(2);
  else if (ends("ly")) cut(2);
  if (ends("e")) cut(1);
  if (w.size() > 3 && w[w.size() - 1] == w[w.size() - 2] &&
      (w.back() == 'l' || w.back() == 't' || w.back() == 'p' || w.back() == 'g' || w.back() == 'n')) {
    cut(1);  // "installed" -> "install" -> stays; "stopping" -> "stopp" -> "stop"
  }
  return w;
}

}  // namespace rag
