#include "ingest/document_check.h"

#include <string>

#include "common/utf8.h"
#include "ingest/text_util.h"

namespace rag {
namespace {

using ingest_internal::IsAsciiSpace;
using ingest_internal::IsBlank;

std::string Where(int page, size_t offset) {
  return "page " + std::to_string(page) + " offset " + std::to_string(offset);
}

bool Before(int page_a, size_t offset_a, int page_b, size_t offset_b) {
  return page_a != page_b ? page_a < page_b : offset_a < offset_b;
}

}  // namespace

Status CheckParsedDocument(const ParsedDocument& doc) {
  if (doc.title.empty()) return Internal("document has an empty title");
  if (!IsValidUtf8(doc.title)) return Internal("title is not valid UTF-8");
  if (doc.pages.empty()) return Internal("document has no pages");
  for (size_t i = 0; i < doc.pages.size(); ++i) {
    const PageText& page = doc.pages[i];
    const std::string where = "page " + std::to_string(i + 1);
    if (page.number != static_cast<int>(i) + 1) {
      return Internal(where + " is numbered " + std::to_string(page.number));
    }
    const std::string& t = page.text;
    if (!IsValidUtf8(t)) return Internal(where + ": text is not valid UTF-8");
    if (t.find('\r') != std::string::npos) return Internal(where + ": text has \\r");
    if (t.find("\n\n\n") != std::string::npos) return Internal(where + ": three newlines in a row");
    if (!t.empty() && t.front() == '\n') return Internal(where + ": text starts with a newline");
    if (!t.empty() && IsAsciiSpace(t.back()))
      return Internal(where + ": text ends with whitespace");
  }
  for (size_t i = 0; i < doc.sections.size(); ++i) {
    const SectionStart& s = doc.sections[i];
    const std::string where = "section " + std::to_string(i) + " (" + Where(s.page, s.offset) + ")";
    if (s.page < 1 || s.page > static_cast<int>(doc.pages.size())) {
      return Internal(where + ": no such page");
    }
    if (s.offset > doc.pages[s.page - 1].text.size()) return Internal(where + ": beyond the text");
    if (s.title.empty()) return Internal(where + ": empty title");
    if (i > 0 && Before(s.page, s.offset, doc.sections[i - 1].page, doc.sections[i - 1].offset)) {
      return Internal(where + ": out of order");
    }
  }
  return Status::Ok();
}

Status CheckChunks(const ParsedDocument& doc, const std::vector<Chunk>& chunks) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    const std::string where = "chunk " + std::to_string(i) + " (" + Where(c.page, c.start) + ")";
    if (c.page < 1 || c.page > static_cast<int>(doc.pages.size())) {
      return Internal(where + ": no such page");
    }
    const std::string& text = doc.pages[c.page - 1].text;
    if (!(c.start < c.end && c.end <= text.size())) return Internal(where + ": bad span");
    if (text.compare(c.start, c.end - c.start, c.text) != 0 || c.text.size() != c.end - c.start) {
      return Internal(where + ": text differs from the page's span");
    }
    if (IsBlank(c.text)) return Internal(where + ": blank text");
    if (i > 0 && !Before(chunks[i - 1].page, chunks[i - 1].start, c.page, c.start)) {
      return Internal(where + ": not in reading order");
    }
    std::string section;
    for (const SectionStart& s : doc.sections) {
      if (!Before(c.page, c.start, s.page, s.offset)) section = s.title;  // s at or before start
      if (s.page == c.page && s.offset > c.start && s.offset < c.end) {
        return Internal(where + ": crosses the start of section '" + s.title + "'");
      }
    }
    if (section != c.section) {
      return Internal(where + ": section '" + c.section + "', expected '" + section + "'");
    }
  }
  return Status::Ok();
}

}  // namespace rag
