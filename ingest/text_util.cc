#include "ingest/text_util.h"

#include <cstdint>
#include <cstring>

#include "common/utf8.h"

namespace rag::ingest_internal {
namespace {

// Windows-1252 code points of bytes 0x80..0x9F (0 where the code page leaves a byte undefined).
constexpr uint16_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

std::string DecodeCp1252(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else if (c < 0xA0) {
      const uint16_t cp = kCp1252High[c - 0x80];
      if (cp)
        AppendUtf8(cp, &out);
      else
        out += kUtf8Replacement;
    } else {
      AppendUtf8(c, &out);
    }
  }
  return out;
}

std::string DecodeUtf16(std::string_view s, bool little_endian) {
  std::string out;
  out.reserve(s.size());
  const auto unit = [&](size_t i) -> uint32_t {
    const auto lo = static_cast<unsigned char>(s[little_endian ? i : i + 1]);
    const auto hi = static_cast<unsigned char>(s[little_endian ? i + 1 : i]);
    return (static_cast<uint32_t>(hi) << 8) | lo;
  };
  size_t i = 0;
  while (i + 1 < s.size()) {
    uint32_t u = unit(i);
    i += 2;
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < s.size()) {
      const uint32_t low = unit(i);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        i += 2;
        AppendUtf8(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00), &out);
        continue;
      }
    }
    if (u >= 0xD800 && u <= 0xDFFF)
      out += kUtf8Replacement;  // unpaired surrogate
    else
      AppendUtf8(u, &out);
  }
  return out;
}

}  // namespace

StatusOr<std::string> DecodeTextFile(std::string_view bytes, const std::string& filename) {
  if (bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);
  if (bytes.starts_with("\xFF\xFE")) return DecodeUtf16(bytes.substr(2), /*little_endian=*/true);
  if (bytes.starts_with("\xFE\xFF")) return DecodeUtf16(bytes.substr(2), /*little_endian=*/false);
  if (std::memchr(bytes.data(), '\0', bytes.size()) != nullptr) {
    return InvalidArgument(filename + ": binary content (NUL bytes), not a text file");
  }
  size_t multibyte = 0;
  bool valid = true;
  for (size_t i = 0; i < bytes.size();) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8CharLength(bytes, i);
    if (n == 0) {
      valid = false;
      ++i;
    } else {
      ++multibyte;
      i += n;
    }
  }
  if (valid) return std::string(bytes);
  if (multibyte == 0) return DecodeCp1252(bytes);
  return ReplaceInvalidUtf8Bytes(bytes);
}

std::string NormalizeNewlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string_view TrimAscii(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsAsciiSpace(s[b])) ++b;
  while (e > b && IsAsciiSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (!IsAsciiSpace(c)) return false;
  }
  return true;
}

std::string CollapseWhitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool nbsp = s[i] == '\xC2' && i + 1 < s.size() && s[i + 1] == '\xA0';
    if (IsAsciiSpace(s[i]) || nbsp) {
      space = true;
      if (nbsp) ++i;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(s[i]);
  }
  return out;
}

std::string_view Utf8Prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string MakeTitle(std::string_view text) {
  std::string title = CollapseWhitespace(text);
  if (title.size() <= kMaxTitleBytes) return title;
  std::string_view cut = Utf8Prefix(title, kMaxTitleBytes);
  const size_t space = cut.rfind(' ');
  if (space != std::string_view::npos && space >= kMaxTitleBytes / 2) cut = cut.substr(0, space);
  return std::string(cut);
}

std::string FirstLineTitle(const ParsedDocument& doc) {
  for (const PageText& page : doc.pages) {
    std::string_view text = page.text;
    while (!text.empty()) {
      const size_t nl = text.find('\n');
      std::string title = MakeTitle(text.substr(0, nl));
      if (!title.empty()) return title;
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  }
  return "";
}

std::string FileNameTitle(const std::string& filename) {
  const size_t slash = filename.find_last_of('/');
  std::string title = MakeTitle(slash == std::string::npos ? filename : filename.substr(slash + 1));
  return title.empty() ? "untitled" : ReplaceInvalidUtf8Bytes(title);
}

bool HasNoText(const ParsedDocument& doc) {
  for (const PageText& page : doc.pages) {
    if (!IsBlank(page.text)) return false;
  }
  return true;
}

Status NoTextError(const std::string& filename) {
  return InvalidArgument(filename + ": the document has no text");
}

}  // namespace rag::ingest_internal
