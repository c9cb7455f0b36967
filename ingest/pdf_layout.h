// From the positioned words of PDF pages to PageText layout (internal to ingest/). No poppler
// types here, so the heuristics are unit-tested on synthetic words.
//
// Coordinates are in points in the reading frame of the text: x grows along a line, y grows
// from one line to the next (for ordinary pages: x right, y down).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace rag::ingest_internal {

struct PdfWord {
  std::string text;  // UTF-8, normalised by NormalizePdfWordText
  double left = 0, top = 0, right = 0, bottom = 0;
  bool space_after = false;  // poppler saw a space between this word and the next
  bool monospace = false;    // set in a monospace font (code)
};

struct PdfLine {
  std::string text;  // words joined by single spaces
  double left = 0, top = 0, right = 0, bottom = 0;
  double height = 0;       // the tallest word's height: a proxy for the font size
  bool leader = false;     // had dot leaders ("Contents . . . . 3"), now a single space
  bool monospace = false;  // every word in a monospace font: code, whose lines stay lines
};

using PdfPageLines = std::vector<PdfLine>;

// True for the names of monospace fonts (Courier, DejaVu Sans Mono, Consolas, LaTeX's cmtt).
bool IsMonospaceFontName(std::string_view name);

// Word text as we keep it: ligatures (U+FB00..U+FB06) spelled out, U+00A0 a space, control
// characters and zero-width characters dropped, a soft hyphen kept only at the end (where it
// marks a line-end break). Invalid UTF-8 becomes U+FFFD.
std::string NormalizePdfWordText(std::string_view text);

// Groups words, given in poppler's reading order, into lines: a word starts a new line when it
// does not overlap the current line vertically by half its height or lies left of it. Dot
// leaders (four or more dots, spaced or not) become one space.
PdfPageLines GroupLines(const std::vector<PdfWord>& words);

// Removes running headers and footers: among the two top and two bottom lines of each page
// (alone, and the top and bottom rows as a whole), those whose text (digits and roman numerals
// ignored, case folded) recurs on at least 3 pages and 30% of the pages. Page numbers alone
// ("12", "Page 3 of 9", "iv") are caught by the same rule.
void RemoveRunningHeadersAndFooters(std::vector<PdfPageLines>* pages);

// Lower-cased words of all pages that have a hyphen inside ("well-known"): a hyphen at a line
// end that rejoins one of these is kept; any other is a syllable break and goes.
std::unordered_set<std::string> CollectHyphenatedWords(const std::vector<PdfPageLines>& pages);

// A title for a document without one in its metadata: on the first page with text, the run of
// lines in the largest font when that font is clearly larger than the body's (titles often
// take two lines), else the first line. "" when no page has text.
std::string GuessTitle(const std::vector<PdfPageLines>& pages);

// The page's text in PageText layout. Pieces of one row that poppler read apart are joined
// first. Paragraph breaks ("\n\n") come from vertical gaps larger than the page's usual line
// pitch, font size changes (headings), jumps to a new column or block, first-line indents and
// short lines that end a sentence; line breaks ("\n") keep list items, table of contents
// entries, lines of code (monospace) and short unpunctuated lines (headings, addresses, table rows)
// apart; other lines are joined with a space, or without one across a removed line-end hyphen.
std::string AssemblePageText(const PdfPageLines& lines,
                             const std::unordered_set<std::string>& hyphenated_words);

// Helpers shared by pdf_layout.cc (page level) and pdf_document_layout.cc (document level).

// A letter, counting any non-ASCII byte as one (accented letters; close enough here).
inline bool IsLetterByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) >= 0x80;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The lower median: with few samples (a line pitch and a paragraph gap) it picks the smaller.
inline double LowerMedian(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = (v.size() - 1) / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  return v[mid];
}

}  // namespace rag::ingest_internal
