// What a parser produces and what the chunker consumes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rag {

// The text of one page. Formats without pages (text, Markdown, HTML) have a single page 1.
struct PageText {
  int number = 1;    // 1-based page number, as a reader of the document would say it
  std::string text;  // UTF-8; paragraphs separated by "\n\n", lines within them by "\n"
};

// A section heading: from `offset` in page `page` on, text belongs to the section `title` (until
// the next SectionStart). Markdown and HTML headings make these; PDFs and plain text have none.
struct SectionStart {
  int page = 1;       // 1-based, as PageText::number
  size_t offset = 0;  // byte offset into that page's text where the heading starts
  std::string title;  // heading text, whitespace collapsed
};

struct ParsedDocument {
  std::string title;   // metadata title, first heading, or first line; never empty
  std::string format;  // "pdf", "text", "markdown", "html"
  std::vector<PageText> pages;         // in reading order; numbers ascending
  std::vector<SectionStart> sections;  // ordered by (page, offset)
};

}  // namespace rag
