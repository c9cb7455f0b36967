#include "ingest/sentences.h"

#include <algorithm>
#include <array>

namespace rag {
namespace ingest_internal {
namespace {

bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return IsLower(c) || IsUpper(c); }

// Bytes at which the scanner has to stop and look: the rest are skipped in a tight loop.
constexpr std::array<bool, 256> MakeStopTable() {
  std::array<bool, 256> t{};
  for (unsigned char c : {'\n', '.', '!', '?', '\xE2', '\xE3', '\xEF'}) t[c] = true;
  return t;
}
constexpr std::array<bool, 256> kStop = MakeStopTable();

// Length of a closing quote or bracket at text[i] (", ', ), ], ”, ’, », 」, 』, ）), or 0.
size_t CloserLength(std::string_view text, size_t i) {
  const char c = text[i];
  if (c == '"' || c == '\'' || c == ')' || c == ']') return 1;
  const std::string_view rest = text.substr(i, 3);
  if (rest == "\xE2\x80\x9D" || rest == "\xE2\x80\x99" || rest == "\xE3\x80\x8D" ||
      rest == "\xE3\x80\x8F" || rest == "\xEF\xBC\x89") {
    return 3;
  }
  if (rest.starts_with("\xC2\xBB")) return 2;
  return 0;
}

enum class Terminal { kNone, kPeriod, kOther, kCjk };

// The sentence-ending mark at text[i] and its length.
Terminal TerminalAt(std::string_view text, size_t i, size_t* length) {
  const char c = text[i];
  *length = 1;
  if (c == '.') return Terminal::kPeriod;
  if (c == '!' || c == '?') return Terminal::kOther;
  const std::string_view rest = text.substr(i, 3);
  *length = 3;
  if (rest == "\xE2\x80\xA6") return Terminal::kOther;  // … (an ellipsis, like "...")
  if (rest == "\xE3\x80\x82" || rest == "\xEF\xBC\x81" || rest == "\xEF\xBC\x9F") {
    return Terminal::kCjk;  // 。！？
  }
  return Terminal::kNone;
}

bool EqualsLower(std::string_view token, std::string_view lower) {
  if (token.size() != lower.size()) return false;
  for (size_t i = 0; i < token.size(); ++i) {
    const char c = IsUpper(token[i]) ? static_cast<char>(token[i] - 'A' + 'a') : token[i];
    if (c != lower[i]) return false;
  }
  return true;
}

template <size_t N>
bool InList(std::string_view token, const std::array<std::string_view, N>& list) {
  for (std::string_view w : list) {
    if (EqualsLower(token, w)) return true;
  }
  return false;
}

// Abbreviations after which a period never ends a sentence.
constexpr std::array<std::string_view, 38> kAlwaysAbbrev = {
    "mr",  "mrs",  "ms",  "dr",   "prof", "rev", "hon", "st",  "mt",  "gen",
    "col", "capt", "lt",  "sgt",  "sr",   "jr",  "cf",  "vs",  "al",  "approx",
    "ca",  "resp", "viz", "dept", "univ", "est", "jan", "feb", "mar", "apr",
    "jun", "jul",  "aug", "sep",  "sept", "oct", "nov", "dec"};
// Abbreviations that do not end a sentence when a number follows ("Fig. 3", "No. 5").
constexpr std::array<std::string_view, 16> kNumberAbbrev = {
    "no",   "nos", "nr", "fig", "figs", "eq",  "eqs",  "vol",
    "vols", "pp",  "p",  "sec", "ch",   "ref", "refs", "art"};

// True when the period at text[dot] ends an abbreviation. `next` is the first byte of the
// following word.
bool IsAbbreviation(std::string_view text, size_t begin, size_t dot, char next) {
  size_t b = dot;
  while (b > begin && !IsSpace(text[b - 1])) --b;
  while (b < dot && (text[b] == '(' || text[b] == '[' || text[b] == '"' || text[b] == '\'')) ++b;
  const std::string_view token = text.substr(b, dot - b);
  if (token.size() == 1 && IsLetter(token[0])) return true;  // an initial: "J. Smith"
  if (token.find('.') != std::string_view::npos) {           // "e.g", "U.S", "Ph.D"
    size_t seg = 0;
    for (char c : token) {
      if (c == '.') {
        if (seg == 0 || seg > 2) return false;
        seg = 0;
      } else if (!IsLetter(c) || ++seg > 2) {
        return false;
      }
    }
    return seg > 0;
  }
  if (InList(token, kAlwaysAbbrev)) return true;
  return (IsDigit(next) || next == '(') && InList(token, kNumberAbbrev);
}

// Words that rarely end a sentence: a line that ends with one continues on the next line.
constexpr std::array<std::string_view, 24> kContinuationWords = {
    "a",  "an",  "the",  "and",  "or", "but",  "nor",   "of",  "to", "in",  "on",  "at",
    "by", "for", "with", "from", "as", "that", "which", "who", "is", "are", "was", "were"};

// True when the line break between a line whose text ends at text[line_end - 1] and the next
// line, which starts at text[next], ends a sentence.
bool LineBreakEndsSentence(std::string_view text, size_t line_begin, size_t line_end, size_t next) {
  const char c = text[next];
  const size_t space = text.substr(0, std::min(text.size(), next + 5)).find(' ', next);
  if (space != std::string_view::npos) {
    const std::string_view marker = text.substr(next, space - next);
    if (marker == "-" || marker == "*" || marker == "+" || marker == "\xE2\x80\xA2") return true;
    if (marker.size() >= 2 && (marker.back() == '.' || marker.back() == ')') &&
        IsDigit(marker[0])) {
      return true;
    }
  }
  if (IsLower(c) || line_end == line_begin) return false;
  const char last = text[line_end - 1];
  if (last == ',' || last == ';' || last == '-' || last == '(' || last == '/' || last == '&') {
    return false;
  }
  if (IsDigit(c) && IsLower(last)) return false;
  size_t word = line_end;
  while (word > line_begin && IsLetter(text[word - 1])) --word;
  return !InList(text.substr(word, line_end - word), kContinuationWords);
}

class Splitter {
 public:
  // Reads text[0, end) only, so that no mark or closer is taken from beyond `end`.
  Splitter(std::string_view text, size_t end, std::vector<SentenceSpan>* out)
      : text_(text.substr(0, end)), end_(text_.size()), out_(out) {}

  void Run(size_t begin) {
    size_t start = SkipSpace(begin);
    size_t i = start;
    while (i < end_) {
      while (i < end_ && !kStop[static_cast<unsigned char>(text_[i])]) ++i;
      if (i >= end_) break;
      if (text_[i] == '\n') {
        size_t j = i + 1;
        while (j < end_ && text_[j] != '\n' && IsSpace(text_[j])) ++j;
        if (j >= end_) break;
        if (text_[j] == '\n') {  // a blank line
          Emit(start, i);
          start = i = SkipSpace(j);
          continue;
        }
        if (LineBreakEndsSentence(text_, start, LineEnd(start, i), j)) {
          Emit(start, i);
          start = j;
        }
        i = j;
        continue;
      }
      size_t len = 0;
      const Terminal kind = TerminalAt(text_, i, &len);
      if (kind == Terminal::kNone) {
        ++i;
        continue;
      }
      size_t k = i + len;
      // A run of marks ("?!", "...") and closing quotes or brackets belongs to the sentence.
      while (k < end_) {
        size_t l = 0;
        if (TerminalAt(text_, k, &l) != Terminal::kNone) {
          k += l;
        } else if ((l = CloserLength(text_, k)) > 0) {
          k += l;
        } else {
          break;
        }
      }
      if (kind == Terminal::kCjk) {
        Emit(start, k);
        start = i = SkipSpace(k);
        continue;
      }
      if (k >= end_ || !IsSpace(text_[k])) {
        i = k;
        continue;
      }
      const size_t next = SkipSpace(k);
      if (next >= end_) break;
      const char c = text_[next];
      bool ends = !IsLower(c);
      if (ends && kind == Terminal::kPeriod && k == i + 1 && IsAbbreviation(text_, start, i, c)) {
        ends = false;
      }
      if (ends) {
        Emit(start, k);
        start = next;
      }
      i = next;
    }
    Emit(start, end_);
  }

 private:
  size_t SkipSpace(size_t i) const {
    while (i < end_ && IsSpace(text_[i])) ++i;
    return i;
  }

  // One past the last non-space byte of text_[start, i), or start.
  size_t LineEnd(size_t start, size_t i) const {
    while (i > start && IsSpace(text_[i - 1])) --i;
    return i;
  }

  void Emit(size_t b, size_t e) {
    while (e > b && IsSpace(text_[e - 1])) --e;
    while (b < e && IsSpace(text_[b])) ++b;
    if (b < e) out_->push_back(SentenceSpan{b, e});
  }

  std::string_view text_;
  size_t end_;
  std::vector<SentenceSpan>* out_;
};

}  // namespace

void SplitSentencesInRange(std::string_view text, size_t begin, size_t end,
                           std::vector<SentenceSpan>* out) {
  end = std::min(end, text.size());
  if (begin >= end) return;
  Splitter(text, end, out).Run(begin);
}

}  // namespace ingest_internal

std::vector<SentenceSpan> SplitSentences(const std::string& text) {
  std::vector<SentenceSpan> spans;
  ingest_internal::SplitSentencesInRange(text, 0, text.size(), &spans);
  return spans;
}

}  // namespace rag
