#include "engine/utf8.h"

#include <cstdint>

namespace rag {
namespace {

// Length of the valid character at s[i], 0 when s[i..] starts an invalid sequence. Sets
// *incomplete when the bytes that are there form a valid prefix cut off by the end of s.
size_t CharLength(std::string_view s, size_t i, bool* incomplete) {
  *incomplete = false;
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *incomplete = true;
      return 0;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return 0;
  }
  return need;
}

}  // namespace

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
    bool incomplete;
    const size_t n = CharLength(s, i, &incomplete);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t AppendUtf8Lossy(std::string_view bytes, bool keep_incomplete_tail, std::string* out) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < bytes.size()) {
    bool incomplete;
    const size_t n = CharLength(bytes, i, &incomplete);
    if (n > 0) {
      out->append(bytes.data() + i, n);
      i += n;
      continue;
    }
    if (incomplete) {
      if (keep_incomplete_tail) return bytes.size() - i;
      out->append(kReplacement);
      return 0;
    }
    // Maximal invalid subpart: the lead byte plus the continuation bytes that were still valid.
    size_t skip = 1;
    const auto b0 = static_cast<uint8_t>(bytes[i]);
    if (b0 >= 0xC2 && b0 <= 0xF4) {
      uint8_t lo = 0x80, hi = 0xBF;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
      const size_t need = b0 <= 0xDF ? 2 : b0 <= 0xEF ? 3 : 4;
      while (skip < need && i + skip < bytes.size()) {
        const auto b = static_cast<uint8_t>(bytes[i + skip]);
        if (b < (skip == 1 ? lo : 0x80) || b > (skip == 1 ? hi : 0xBF)) break;
        ++skip;
      }
    }
    out->append(kReplacement);
    i += skip;
  }
  return 0;
}

}  // namespace rag
