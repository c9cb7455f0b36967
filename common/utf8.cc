#include "common/utf8.h"

#include <cstdint>

namespace rag {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// A lead byte's character length (0: not a lead byte) and the allowed range of the byte after
// it (narrower than 0x80-0xBF where that rules out overlong forms, surrogates or code points
// above U+10FFFF).
struct Lead {
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;
};

Lead LeadOf(uint8_t b0) {
  Lead l;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    l.need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    l.need = 3;
    if (b0 == 0xE0) l.lo = 0xA0;  // overlong
    if (b0 == 0xED) l.hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    l.need = 4;
    if (b0 == 0xF0) l.lo = 0x90;  // overlong
    if (b0 == 0xF4) l.hi = 0x8F;  // above U+10FFFF
  }
  return l;
}

// Bytes of s[i..] that form a valid prefix of the character led by s[i] (1 at least, for the
// lead byte itself; l.need when the character is whole).
size_t ValidPrefix(std::string_view s, size_t i, const Lead& l) {
  size_t k = 1;
  while (k < l.need && i + k < s.size()) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if (b < (k == 1 ? l.lo : 0x80) || b > (k == 1 ? l.hi : 0xBF)) break;
    ++k;
  }
  return k;
}

}  // namespace

size_t Utf8CharLength(std::string_view s, size_t i, bool* incomplete) {
  if (incomplete != nullptr) *incomplete = false;
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  const Lead l = LeadOf(b0);
  if (l.need == 0) return 0;
  const size_t k = ValidPrefix(s, i, l);
  if (k == l.need) return k;
  if (incomplete != nullptr) *incomplete = i + k == s.size();
  return 0;
}

std::string ReplaceInvalidUtf8Bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8CharLength(s, i);
    if (n == 0) {
      out += kUtf8Replacement;
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const size_t n = Utf8CharLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t AppendUtf8Lossy(std::string_view bytes, bool keep_incomplete_tail, std::string* out) {
  size_t i = 0;
  while (i < bytes.size()) {
    bool incomplete;
    const size_t n = Utf8CharLength(bytes, i, &incomplete);
    if (n > 0) {
      out->append(bytes.data() + i, n);
      i += n;
      continue;
    }
    if (incomplete) {
      if (keep_incomplete_tail) return bytes.size() - i;
      out->append(kUtf8Replacement);
      return 0;
    }
    // Maximal invalid subpart: the lead byte plus the continuation bytes that were still valid.
    const Lead l = LeadOf(static_cast<uint8_t>(bytes[i]));
    const size_t skip = l.need == 0 ? 1 : ValidPrefix(bytes, i, l);
    out->append(kUtf8Replacement);
    i += skip;
  }
  return 0;
}

}  // namespace rag
