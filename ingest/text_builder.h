// TextBuilder: assembles the text of one page from the pieces a structured parser (Markdown,
// HTML) walks through, in the layout of PageText: paragraphs separated by "\n\n", lines by "\n",
// no leading or trailing whitespace, no runs of spaces outside preformatted text. Headings are
// recorded as SectionStarts at the offset where their text starts. Internal to ingest/.
//
// Breaks and spaces are pending until the next visible text arrives, so a break requested at the
// end (or twice) costs nothing, and the larger of two pending breaks wins.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/document.h"

namespace rag::ingest_internal {

class TextBuilder {
 public:
  // Inline text: runs of whitespace (ASCII and U+00A0) become one space.
  void AppendText(std::string_view s);
  // Preformatted text (code blocks, <pre>): spaces, tabs and indentation are kept; newlines
  // become line breaks (at most one blank line in a row); trailing spaces of a line go.
  void AppendPreformatted(std::string_view s);
  // A tab between table cells, when the current line already has text.
  void CellSeparator();
  void LineBreak();
  void ParagraphBreak();

  // Between BeginHeading and EndHeading the appended text is a heading: EndHeading returns its
  // title (whitespace collapsed, capped like MakeTitle) and, when that is not empty, records a
  // SectionStart on page 1 at the offset of the heading's first byte. Headings do not nest (a
  // Begin while one is open is ignored, as is an End without a Begin).
  void BeginHeading();
  std::string EndHeading();
  bool in_heading() const { return in_heading_; }

  const std::string& text() const { return text_; }
  const std::vector<SectionStart>& sections() const { return sections_; }
  std::string TakeText() { return std::move(text_); }
  std::vector<SectionStart> TakeSections() { return std::move(sections_); }

 private:
  // Emits the pending break or whitespace before visible text.
  void Flush();

  std::string text_;
  std::vector<SectionStart> sections_;
  int pending_newlines_ = 0;   // 0, 1 or 2
  std::string pending_space_;  // " ", "\t", or indentation in preformatted text
  bool in_heading_ = false;
  size_t heading_start_ = std::string::npos;  // npos until the heading's first visible byte
};

}  // namespace rag::ingest_internal
