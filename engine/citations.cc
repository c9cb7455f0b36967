#include "engine/citations.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "common/utf8.h"

namespace rag {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Removes lines that start with "Cited Documents:" (any case), the list Hermes 3 appends.
std::string DropCitedDocumentsLines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    const size_t line_end = eol == std::string_view::npos ? text.size() : eol;
    std::string_view line = text.substr(pos, line_end - pos);
    size_t i = 0;
    while (i < line.size() && IsSpace(line[i])) ++i;
    static constexpr std::string_view kPrefix = "cited documents:";
    bool drop = line.size() - i >= kPrefix.size();
    for (size_t k = 0; drop && k < kPrefix.size(); ++k) {
      drop = std::tolower(static_cast<unsigned char>(line[i + k])) == kPrefix[k];
    }
    if (!drop) {
      out.append(line);
      if (eol != std::string_view::npos) out += '\n';
    }
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
  }
  return out;
}

// Tries to read a citation tag at text[pos] ('<'). On success sets *len to the tag's length.
// Opening: <co:N>, <co: N, M>   Closing: </co>, </co:N>, </co: N>
bool MatchTag(std::string_view text, size_t pos, bool* closing, std::vector<int>* ids, size_t* len) {
  size_t i = pos + 1;
  *closing = i < text.size() && text[i] == '/';
  if (*closing) ++i;
  if (text.substr(i, 2) != "co") return false;
  i += 2;
  auto skip_spaces = [&] { while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i; };
  skip_spaces();
  ids->clear();
  if (i < text.size() && text[i] == ':') {
    ++i;
    for (;;) {
      skip_spaces();
      size_t digits = 0;
      long long value = 0;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && digits < 9) {
        value = value * 10 + (text[i] - '0');
        ++i;
        ++digits;
      }
      if (digits == 0) return false;
      if (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) return false;
      ids->push_back(static_cast<int>(value));
      skip_spaces();
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
  } else if (!*closing) {
    return false;  // "<co>" without ids is not a citation
  }
  skip_spaces();
  if (i >= text.size() || text[i] != '>') return false;
  *len = i + 1 - pos;
  return true;
}

struct ByteSpan {
  size_t start, end;
  std::vector<int> sources;
};

// Code point index of every byte offset boundary we need: counts lead bytes before `byte`.
size_t CodePointsBefore(std::string_view s, size_t byte) {
  size_t n = 0;
  for (size_t i = 0; i < byte && i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

size_t Utf8Length(std::string_view text) {
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++count) i += std::max<size_t>(1, Utf8CharLength(text, i));
  return count;
}

ParsedAnswer ParseCitations(std::string_view tagged, int num_passages) {
  // Offsets count code points of the answer; invalid bytes (possible in raw model output) would
  // make them ambiguous (a stray continuation byte is no code point of its own), so they become
  // U+FFFD first.
  const std::string valid = ReplaceInvalidUtf8Bytes(tagged);
  const std::string text = DropCitedDocumentsLines(valid);
  std::string out;
  out.reserve(text.size());
  std::vector<ByteSpan> spans;
  bool open = false;
  ByteSpan current{};

  auto close_span = [&] {
    if (!open) return;
    current.end = out.size();
    spans.push_back(current);
    open = false;
  };
  // Appends a character, collapsing runs of spaces/tabs and never starting the answer with
  // whitespace, so removed tags do not leave double spaces behind.
  auto append = [&](char c) {
    if (c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ' || out.back() == '\n')) return;
    if (c == '\n') {
      while (!out.empty() && out.back() == ' ') out.pop_back();
      if (out.empty()) return;
      if (open) close_span();  // an unclosed tag cites to the end of its line
    }
    out += c;
  };

  std::vector<int> ids;
  for (size_t i = 0; i < text.size();) {
    bool closing = false;
    size_t len = 0;
    if (text[i] == '<' && MatchTag(text, i, &closing, &ids, &len)) {
      if (closing) {
        close_span();
      } else {
        close_span();
        std::vector<int> valid;
        for (int id : ids) {
          if (id >= 0 && id < num_passages) valid.push_back(id);
        }
        std::sort(valid.begin(), valid.end());
        valid.erase(std::unique(valid.begin(), valid.end()), valid.end());
        if (!valid.empty()) {
          open = true;
          current = ByteSpan{out.size(), out.size(), std::move(valid)};
        }
      }
      i += len;
      continue;
    }
    append(text[i]);
    ++i;
  }
  close_span();
  while (!out.empty() && IsSpace(out.back())) out.pop_back();

  ParsedAnswer result;
  for (ByteSpan s : spans) {
    s.end = std::min(s.end, out.size());
    while (s.start < s.end && IsSpace(out[s.start])) ++s.start;
    while (s.end > s.start && IsSpace(out[s.end - 1])) --s.end;
    if (s.start >= s.end) continue;
    Citation c;
    c.start = CodePointsBefore(out, s.start);
    c.end = c.start + Utf8Length(std::string_view(out).substr(s.start, s.end - s.start));
    c.text = out.substr(s.start, s.end - s.start);
    c.sources = std::move(s.sources);
    result.citations.push_back(std::move(c));
  }
  result.answer = std::move(out);
  return result;
}

}  // namespace rag
