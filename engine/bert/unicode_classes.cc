// Look-ups over the generated tables of unicode_tables.cc (binary search; all sorted).
#include <algorithm>
#include <string>

#include "engine/bert/unicode_tables.h"

namespace rag::bert_unicode {
namespace {

bool InRanges(const CodeRange* ranges, size_t n, char32_t c) {
  const CodeRange* end = ranges + n;
  const CodeRange* it =
      std::upper_bound(ranges, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

const CodeMapping* FindMapping(const CodeMapping* map, size_t n, char32_t c) {
  const CodeMapping* end = map + n;
  const CodeMapping* it =
      std::lower_bound(map, end, c, [](const CodeMapping& m, char32_t v) { return m.from < v; });
  return it != end && it->from == c ? it : nullptr;
}

}  // namespace

bool IsRemoved(char32_t c) { return InRanges(kRemoved, kRemovedSize, c); }

bool IsCleanWhitespace(char32_t c) { return c == ' ' || InRanges(kWhitespace, kWhitespaceSize, c); }

bool IsWhitespace(char32_t c) {
  return IsCleanWhitespace(c) || c == 0x0B || c == 0x0C || c == 0x85;
}

bool IsPunctuation(char32_t c) { return InRanges(kPunctuation, kPunctuationSize, c); }

bool IsChinese(char32_t c) { return InRanges(kChinese, kChineseSize, c); }

void AppendStripped(char32_t c, std::u32string* out) {
  if (c >= 0xAC00 && c <= 0xD7A3) {  // Hangul syllable: L V (T), Unicode 3.12
    const char32_t s = c - 0xAC00;
    out->push_back(0x1100 + s / (21 * 28));
    out->push_back(0x1161 + (s % (21 * 28)) / 28);
    if (s % 28 != 0) out->push_back(0x11A7 + s % 28);
    return;
  }
  if (const CodeMapping* m = FindMapping(kStripAccents, kStripAccentsSize, c)) {
    out->append(m->to);
  } else {
    out->push_back(c);
  }
}

void AppendLower(char32_t c, std::u32string* out) {
  if (c < 0x80) {
    out->push_back(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  } else if (const CodeMapping* m = FindMapping(kLowercase, kLowercaseSize, c)) {
    out->append(m->to);
  } else {
    out->push_back(c);
  }
}

}  // namespace rag::bert_unicode
