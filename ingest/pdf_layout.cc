// The page-level PDF heuristics of pdf_layout.h: words -> lines -> page text.
#include "ingest/pdf_layout.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "common/utf8.h"
#include "ingest/text_util.h"

namespace rag::ingest_internal {
namespace {

constexpr std::string_view kSoftHyphen = "\xC2\xAD";

bool IsAsciiLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// True when the line ends a sentence or a lead-in: . ! ? : possibly followed by a closing
// quote or bracket.
bool EndsSentence(std::string_view line) {
  while (!line.empty()) {
    const char c = line.back();
    if (c == '"' || c == '\'' || c == ')' || c == ']') {
      line.remove_suffix(1);
    } else if (line.ends_with("\xE2\x80\x9D") || line.ends_with("\xE2\x80\x99")) {  // ” ’
      line.remove_suffix(3);
    } else {
      return c == '.' || c == '!' || c == '?' || c == ':';
    }
  }
  return false;
}

// True when the line starts with a list marker: a bullet, "1." / "1)", "(a)", "a)".
bool StartsWithListMarker(std::string_view line) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view m = line.substr(0, space);
  // - * + • – — · ◦ ▪ ■ ● and the Symbol font's bullet in its private-use slot.
  // clang-format off
  static constexpr std::string_view kBullets[] = {
      "-", "*", "+", "\xE2\x80\xA2", "\xE2\x80\x93", "\xE2\x80\x94", "\xC2\xB7",
      "\xE2\x97\xA6", "\xE2\x96\xAA", "\xE2\x96\xA0", "\xE2\x97\x8F", "\xEF\x82\xB7"};
  // clang-format on
  for (std::string_view b : kBullets) {
    if (m == b) return true;
  }
  if (m.size() >= 2 && m.size() <= 4 && (m.back() == '.' || m.back() == ')')) {
    const std::string_view body =
        m.substr(m.front() == '(' ? 1 : 0, m.size() - 1 - (m.front() == '(' ? 1 : 0));
    if (!body.empty() && std::all_of(body.begin(), body.end(), IsAsciiDigit)) return true;
    if (body.size() == 1 && IsAsciiLower(body[0]) && m.back() == ')') return true;
  }
  return false;
}

// Ends with a hyphen after a letter: the ASCII hyphen-minus, U+2010, or a soft hyphen.
size_t TrailingHyphenBytes(std::string_view line) {
  for (std::string_view h :
       {std::string_view("-"), std::string_view("\xE2\x80\x90"), kSoftHyphen}) {
    if (line.size() > h.size() && line.ends_with(h) &&
        IsLetterByte(line[line.size() - h.size() - 1])) {
      return h.size();
    }
  }
  return 0;
}

// The last word of s, looking back at most 64 bytes (text without spaces stays linear).
std::string_view LastWord(std::string_view s) {
  if (s.size() > 64) s = s.substr(s.size() - 64);
  const size_t space = s.rfind(' ');
  return space == std::string_view::npos ? s : s.substr(space + 1);
}

std::string_view FirstWord(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && IsLetterByte(s[end])) ++end;
  return s.substr(0, end);
}

// Replaces each run of four or more dots, with or without single spaces between them, by a
// space; true when there was one. An ellipsis ("...") stays.
bool RemoveDotLeaders(std::string* text) {
  if (text->find("....") == std::string::npos && text->find(". . . .") == std::string::npos) {
    return false;
  }
  std::string out;
  bool found = false;
  size_t i = 0;
  const std::string& t = *text;
  while (i < t.size()) {
    if (t[i] != '.') {
      out += t[i++];
      continue;
    }
    size_t j = i, dots = 0, last_dot = i;
    while (j < t.size() && (t[j] == '.' || (t[j] == ' ' && j + 1 < t.size() && t[j + 1] == '.'))) {
      if (t[j] == '.') {
        ++dots;
        last_dot = j;
      }
      ++j;
    }
    if (dots >= 4) {
      out += ' ';
      found = true;
      i = last_dot + 1;
    } else {
      out.append(t, i, last_dot + 1 - i);
      i = last_dot + 1;
    }
  }
  if (found) *text = std::move(out);
  return found;
}

}  // namespace

bool IsMonospaceFontName(std::string_view name) {
  const std::string lower = AsciiLower(name);
  for (std::string_view mark :
       {"mono", "courier", "consol", "menlo", "monaco", "typewriter", "code", "fixed"}) {
    if (lower.find(mark) != std::string::npos) return true;
  }
  // TeX's typewriter faces: cmtt10, sftt1000, ectt0900 (after a subset prefix "ABCDEF+").
  for (size_t tt = lower.find("tt"); tt != std::string::npos; tt = lower.find("tt", tt + 1)) {
    if (tt + 2 < lower.size() && lower[tt + 2] >= '0' && lower[tt + 2] <= '9') return true;
  }
  return false;
}

std::string NormalizePdfWordText(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7F; })) {
    return std::string(text);  // printable ASCII, most words: nothing to do
  }
  const std::string valid = IsValidUtf8(text) ? std::string(text) : ReplaceInvalidUtf8Bytes(text);
  std::string out;
  out.reserve(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if (c < 0x20 || c == 0x7F) continue;
    const std::string_view rest = std::string_view(valid).substr(i);
    if (rest.starts_with("\xEF\xAC") && rest.size() >= 3) {  // U+FB00..U+FB3F
      static constexpr std::string_view kLigatures[] = {"ff", "fi", "fl", "ffi", "ffl", "st", "st"};
      const unsigned idx = static_cast<unsigned char>(rest[2]) - 0x80;
      if (idx < 7) {
        out += kLigatures[idx];
        i += 2;
        continue;
      }
    }
    if (rest.starts_with("\xC2\xA0")) {  // no-break space
      out += ' ';
      ++i;
      continue;
    }
    if (rest.starts_with("\xE2\x80\x8B") || rest.starts_with("\xEF\xBB\xBF")) {  // ZWSP, BOM
      i += 2;
      continue;
    }
    if (rest.starts_with(kSoftHyphen)) {
      if (rest.size() == 2) out += kSoftHyphen;
      ++i;
      continue;
    }
    out += valid[i];
  }
  return out;
}

PdfPageLines GroupLines(const std::vector<PdfWord>& words) {
  PdfPageLines lines;
  bool space_pending = false;
  for (const PdfWord& w : words) {
    if (w.text.empty()) continue;
    const double h = std::max(w.bottom - w.top, 0.1);
    bool same_line = false;
    if (!lines.empty()) {
      const PdfLine& l = lines.back();
      const double overlap = std::min(l.bottom, w.bottom) - std::max(l.top, w.top);
      same_line = overlap >= 0.5 * std::min(h, l.height) && w.left >= l.right - 0.5 * h;
    }
    if (!same_line) {
      lines.push_back(PdfLine{w.text, w.left, w.top, w.right, w.bottom, h, false, w.monospace});
    } else {
      PdfLine& l = lines.back();
      // A gap wider than a third of the height is a space even where poppler saw none.
      if (space_pending || w.left - l.right > 0.3 * h) l.text += ' ';
      l.text += w.text;
      l.left = std::min(l.left, w.left);
      l.right = std::max(l.right, w.right);
      l.top = std::min(l.top, w.top);
      l.bottom = std::max(l.bottom, w.bottom);
      l.height = std::max(l.height, h);
      l.monospace = l.monospace && w.monospace;
    }
    space_pending = w.space_after;
  }
  for (PdfLine& l : lines) {
    l.leader = RemoveDotLeaders(&l.text);
    l.text = CollapseWhitespace(l.text);
  }
  std::erase_if(lines, [](const PdfLine& l) { return l.text.empty(); });
  return lines;
}

namespace {

enum class Break { kJoin, kLine, kParagraph };

// Where lines[i] starts a new block (font size change, a jump up or sideways to a new column or
// block, a vertical gap larger than the usual pitch), and each line's block extent.
struct Blocks {
  std::vector<bool> starts;
  std::vector<double> left, right;
};

Blocks FindBlocks(const PdfPageLines& lines) {
  // The usual line pitch: baseline-to-baseline steps down between lines of similar size.
  std::vector<double> steps, heights;
  for (size_t i = 0; i < lines.size(); ++i) {
    heights.push_back(lines[i].height);
    if (i == 0) continue;
    const PdfLine& a = lines[i - 1];
    const PdfLine& b = lines[i];
    const double dy = b.bottom - a.bottom;
    const double ratio = b.height / a.height;
    if (ratio > 0.8 && ratio < 1.25 && dy > 0.3 * a.height && dy < 3 * a.height) {
      steps.push_back(dy);
    }
  }
  // Pitch per unit of line height, so that a heading's lines, larger and further apart, are
  // measured against their own size.
  const double body_height = std::max(LowerMedian(heights), 0.1);
  const double pitch = (steps.empty() ? 1.2 * body_height : LowerMedian(steps)) / body_height;

  const size_t n = lines.size();
  Blocks blocks{std::vector<bool>(n, true), std::vector<double>(n), std::vector<double>(n)};
  for (size_t i = 1; i < n; ++i) {
    const PdfLine& prev = lines[i - 1];
    const PdfLine& cur = lines[i];
    const double h = std::max(prev.height, cur.height);
    const double dy = cur.bottom - prev.bottom;
    blocks.starts[i] = std::abs(cur.height - prev.height) > 0.2 * h || dy < 0.3 * h ||
                       dy > (1.4 * pitch + 0.1) * h || cur.left > prev.right;
  }
  for (size_t b = 0; b < n;) {
    size_t e = b + 1;
    while (e < n && !blocks.starts[e]) ++e;
    double left = lines[b].left, right = lines[b].right;
    for (size_t i = b; i < e; ++i) {
      left = std::min(left, lines[i].left);
      right = std::max(right, lines[i].right);
    }
    std::fill(blocks.left.begin() + b, blocks.left.begin() + e, left);
    std::fill(blocks.right.begin() + b, blocks.right.begin() + e, right);
    b = e;
  }
  return blocks;
}

// True when s starts with a lowercase ASCII letter or a non-ASCII byte (most often an accented
// lowercase letter): the line may continue a word or sentence.
bool StartsLower(std::string_view s) {
  return !s.empty() && (IsAsciiLower(s[0]) || static_cast<unsigned char>(s[0]) >= 0x80);
}

// The break between lines[i - 1] and lines[i].
Break BreakBefore(const PdfPageLines& lines, const Blocks& blocks, size_t i) {
  const PdfLine& prev = lines[i - 1];
  const PdfLine& cur = lines[i];
  const bool prev_ends = EndsSentence(prev.text);
  const bool next_lower = StartsLower(cur.text);
  if (blocks.starts[i]) {
    // A paragraph that goes on in the next column: the column's last line ends mid-sentence
    // and the next column starts in lowercase, in the same font size.
    const bool new_column = cur.bottom < prev.bottom;
    const bool same_size =
        std::abs(cur.height - prev.height) <= 0.2 * std::max(cur.height, prev.height);
    return new_column && same_size && next_lower && !prev_ends ? Break::kJoin : Break::kParagraph;
  }
  if (next_lower && TrailingHyphenBytes(prev.text) > 0) return Break::kJoin;  // "infor-" "mation"
  if (StartsWithListMarker(cur.text) || prev.leader || cur.leader || prev.monospace ||
      cur.monospace) {
    return Break::kLine;
  }
  const double h = std::max(prev.height, cur.height);
  const double width = blocks.right[i] - blocks.left[i];
  const bool prev_short = blocks.right[i] - prev.right > std::max(0.12 * width, 3 * h);
  const bool indented = cur.left > blocks.left[i] + 0.8 * h && cur.left < blocks.left[i] + 6 * h &&
                        std::abs(prev.left - blocks.left[i]) < 0.5 * h;
  if (prev_ends && (prev_short || indented)) return Break::kParagraph;
  if (prev_short) return Break::kLine;
  return Break::kJoin;
}

// Appends the next line of the same paragraph to `out`, across a space or a line-end hyphen.
void AppendJoined(const std::string& line, const std::unordered_set<std::string>& hyphenated_words,
                  std::string* out) {
  const size_t hyphen = TrailingHyphenBytes(*out);
  if (hyphen == 0) {
    *out += ' ';
  } else if (std::string_view(*out).ends_with(kSoftHyphen)) {
    out->resize(out->size() - hyphen);
  } else if (StartsLower(line)) {
    const std::string_view head = LastWord(std::string_view(*out).substr(0, out->size() - hyphen));
    const std::string joined = AsciiLower(std::string(head) + "-" + std::string(FirstWord(line)));
    if (hyphenated_words.count(joined) == 0) out->resize(out->size() - hyphen);
  }  // else a hyphen before a capital or digit ("Anglo-Saxon", "COVID-19") stays, no space
  *out += line;
}

// Consecutive lines on one row, the second starting just right of the first: pieces of one
// line that poppler read apart ("1.2" and its heading, with the running header that came
// between them removed).
PdfPageLines MergeSplitRows(const PdfPageLines& in) {
  PdfPageLines lines;
  for (const PdfLine& l : in) {
    if (!lines.empty()) {
      PdfLine& prev = lines.back();
      const double overlap = std::min(prev.bottom, l.bottom) - std::max(prev.top, l.top);
      const double h = std::min(prev.height, l.height);
      if (overlap >= 0.5 * h && l.left >= prev.right && l.left - prev.right < 2 * h) {
        prev.text += ' ' + l.text;
        prev.right = l.right;
        prev.top = std::min(prev.top, l.top);
        prev.bottom = std::max(prev.bottom, l.bottom);
        prev.height = std::max(prev.height, l.height);
        prev.leader = prev.leader || l.leader;
        prev.monospace = prev.monospace && l.monospace;
        continue;
      }
    }
    lines.push_back(l);
  }
  return lines;
}

}  // namespace

std::string AssemblePageText(const PdfPageLines& page_lines,
                             const std::unordered_set<std::string>& hyphenated_words) {
  std::string out;
  if (page_lines.empty()) return out;
  const PdfPageLines lines = MergeSplitRows(page_lines);
  const Blocks blocks = FindBlocks(lines);
  out = lines[0].text;
  for (size_t i = 1; i < lines.size(); ++i) {
    switch (BreakBefore(lines, blocks, i)) {
      case Break::kJoin:
        AppendJoined(lines[i].text, hyphenated_words, &out);
        continue;
      case Break::kLine:
        out += '\n';
        break;
      case Break::kParagraph:
        out += "\n\n";
        break;
    }
    out += lines[i].text;
  }
  // Soft hyphens inside lines are invisible break hints; the line-end ones are handled above.
  for (size_t pos = out.find(kSoftHyphen); pos != std::string::npos;
       pos = out.find(kSoftHyphen, pos)) {
    out.erase(pos, kSoftHyphen.size());
  }
  return out;
}

}  // namespace rag::ingest_internal
