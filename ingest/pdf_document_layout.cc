// The document-level PDF heuristics of pdf_layout.h: running headers and footers, the words
// that keep their hyphen, the title.
#include <algorithm>
#include <cmath>
#include <regex>
#include <string_view>
#include <unordered_map>

#include "ingest/pdf_layout.h"
#include "ingest/text_util.h"

namespace rag::ingest_internal {
namespace {

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// A lower-case roman numeral (front matter page numbers: "iv", "xii").
bool IsRomanNumeral(const std::string& token) {
  static const std::regex kRoman("m{0,4}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})");
  return !token.empty() && token.size() <= 12 && std::regex_match(token, kRoman);
}

// What a running header or footer has in common from page to page: its words lower-cased,
// without digits (page numbers, dates), roman numerals and words without letters ("/", "-").
// "Guide iv" and "Guide 12 / 57" share "guide"; a bare page number has the key "".
std::string HeaderKey(std::string_view text) {
  std::string key;
  const std::string lower = AsciiLower(text);
  size_t pos = 0;
  while (pos < lower.size()) {
    size_t end = lower.find(' ', pos);
    if (end == std::string::npos) end = lower.size();
    const std::string token = lower.substr(pos, end - pos);
    pos = end + 1;
    if (IsRomanNumeral(token)) continue;
    std::string word;
    bool has_letter = false;
    for (char c : token) {
      if (IsAsciiDigit(c)) continue;
      has_letter |= IsLetterByte(c);
      word += c;
    }
    if (!has_letter) continue;
    if (!key.empty()) key += ' ';
    key += word;
  }
  return key;
}

// Lines that may be a running header or footer, and the key they would share with the other
// pages: each of the two topmost and two bottommost lines alone, and the whole top row and
// bottom row (poppler may cut "Guide ... 3 / 57" into two lines on one page but not another).
struct Candidate {
  std::vector<size_t> lines;
  std::string key;
};

std::vector<Candidate> Candidates(const PdfPageLines& lines) {
  std::vector<Candidate> out;
  if (lines.empty()) return out;
  std::vector<size_t> order(lines.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return lines[a].top < lines[b].top; });
  const size_t n = order.size();
  for (size_t k = 0; k < std::min<size_t>(2, n); ++k) {
    out.push_back({{order[k]}, HeaderKey(lines[order[k]].text)});
    out.push_back({{order[n - 1 - k]}, HeaderKey(lines[order[n - 1 - k]].text)});
  }
  const PdfLine& top = lines[order.front()];
  const PdfLine& bottom = lines[order.back()];
  Candidate top_row, bottom_row;
  for (size_t i : order) {
    if (lines[i].top <= top.top + 0.5 * top.height) top_row.lines.push_back(i);
    if (lines[i].bottom >= bottom.bottom - 0.5 * bottom.height) bottom_row.lines.push_back(i);
  }
  for (Candidate* row : {&top_row, &bottom_row}) {
    if (row->lines.size() < 2) continue;
    std::sort(row->lines.begin(), row->lines.end(),
              [&](size_t a, size_t b) { return lines[a].left < lines[b].left; });
    std::string text;
    for (size_t i : row->lines) text += lines[i].text + ' ';
    row->key = HeaderKey(text);
    out.push_back(std::move(*row));
  }
  return out;
}

}  // namespace

void RemoveRunningHeadersAndFooters(std::vector<PdfPageLines>* pages) {
  std::vector<std::vector<Candidate>> candidates(pages->size());
  std::unordered_map<std::string, int> page_count;
  int pages_with_text = 0;
  for (size_t p = 0; p < pages->size(); ++p) {
    if ((*pages)[p].empty()) continue;
    ++pages_with_text;
    candidates[p] = Candidates((*pages)[p]);
    std::vector<std::string> keys;
    for (const Candidate& c : candidates[p]) keys.push_back(c.key);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::string& k : keys) ++page_count[k];
  }
  const int needed = std::max(3, static_cast<int>(std::ceil(0.3 * pages_with_text)));
  for (size_t p = 0; p < pages->size(); ++p) {
    PdfPageLines& lines = (*pages)[p];
    std::vector<bool> remove(lines.size(), false);
    for (const Candidate& c : candidates[p]) {
      if (page_count[c.key] < needed) continue;
      for (size_t i : c.lines) remove[i] = true;
    }
    size_t kept = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (remove[i]) continue;
      if (kept != i) lines[kept] = std::move(lines[i]);
      ++kept;
    }
    lines.resize(kept);
  }
}

std::unordered_set<std::string> CollectHyphenatedWords(const std::vector<PdfPageLines>& pages) {
  std::unordered_set<std::string> words;
  for (const PdfPageLines& lines : pages) {
    for (const PdfLine& line : lines) {
      const std::string_view text = line.text;
      size_t done = 0;  // text[0, done) is behind us: each word is looked at once
      for (size_t dash = text.find('-'); dash != std::string_view::npos;
           dash = text.find('-', std::max(dash + 1, done))) {
        if (dash <= done || dash + 1 >= text.size() || !IsLetterByte(text[dash - 1]) ||
            !IsLetterByte(text[dash + 1])) {
          continue;
        }
        size_t b = dash, e = dash + 1;
        while (b > done && (IsLetterByte(text[b - 1]) || text[b - 1] == '-')) --b;
        while (e < text.size() && (IsLetterByte(text[e]) || text[e] == '-')) ++e;
        words.insert(AsciiLower(text.substr(b, e - b)));
        done = e;
      }
    }
  }
  return words;
}

std::string GuessTitle(const std::vector<PdfPageLines>& pages) {
  for (const PdfPageLines& lines : pages) {
    if (lines.empty()) continue;
    std::vector<double> heights;
    double tallest = 0;
    for (const PdfLine& l : lines) {
      heights.push_back(l.height);
      tallest = std::max(tallest, l.height);
    }
    if (tallest < 1.15 * LowerMedian(heights)) return MakeTitle(lines[0].text);
    size_t i = 0;
    while (lines[i].height < 0.95 * tallest) ++i;
    std::string title = lines[i].text;
    while (++i < lines.size() && lines[i].height >= 0.95 * tallest &&
           title.size() < kMaxTitleBytes) {
      title += ' ' + lines[i].text;
    }
    // A drop cap or an ornament in a huge font is no title.
    return MakeTitle(title.size() >= 3 ? title : lines[0].text);
  }
  return "";
}

}  // namespace rag::ingest_internal
