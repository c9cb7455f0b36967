// ParsePlainText: a text file -> pages of text.
//
// Bytes are decoded by DecodeTextFile: invalid UTF-8 is repaired, not rejected (each bad byte
// becomes U+FFFD, or the whole file is read as Windows-1252 when it has no UTF-8 at all), since
// losing a few characters is better than losing the document. A BOM is dropped, CRLF and CR
// become LF. A form feed starts a new page (pdftotext and some text documents mark pages so); a
// form feed at the very end does not make an empty last page. Lines keep their text and
// indentation but lose trailing whitespace and control characters; blank lines between
// paragraphs collapse to one. The title is the first non-blank line.
#include "ingest/parser.h"
#include "ingest/parser_guard.h"
#include "ingest/text_util.h"

namespace rag {
namespace {

using ingest_internal::IsAsciiSpace;

// One page of the layout of PageText: lines joined by "\n", paragraphs by "\n\n", no
// leading or trailing blank lines.
std::string NormalizePage(std::string_view page) {
  std::string out;
  out.reserve(page.size());
  std::string line;
  int blank_lines = 0;
  size_t pos = 0;
  while (pos <= page.size()) {
    size_t nl = page.find_first_of("\n\v", pos);
    if (nl == std::string_view::npos) nl = page.size();
    line.clear();
    for (char c : page.substr(pos, nl - pos)) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) continue;  // other C0 controls and DEL
      line.push_back(c);
    }
    pos = nl + 1;
    while (!line.empty() && IsAsciiSpace(line.back())) line.pop_back();
    if (line.empty()) {
      ++blank_lines;
      continue;
    }
    if (!out.empty()) out.append(blank_lines > 0 ? "\n\n" : "\n");
    blank_lines = 0;
    out += line;
  }
  return out;
}

StatusOr<ParsedDocument> ParsePlainTextUnguarded(std::string_view bytes,
                                                 const std::string& filename) {
  RAG_ASSIGN_OR_RETURN(const std::string decoded, ingest_internal::DecodeTextFile(bytes, filename));
  const std::string text = ingest_internal::NormalizeNewlines(decoded);

  ParsedDocument doc;
  doc.format = "text";
  size_t pos = 0;
  while (true) {
    const size_t ff = text.find('\f', pos);
    const std::string_view part =
        std::string_view(text).substr(pos, ff == std::string::npos ? std::string::npos : ff - pos);
    const bool last = ff == std::string::npos;
    if (!(last && !doc.pages.empty() && ingest_internal::IsBlank(part))) {
      doc.pages.push_back(PageText{static_cast<int>(doc.pages.size()) + 1, NormalizePage(part)});
    }
    if (last) break;
    pos = ff + 1;
  }
  if (ingest_internal::HasNoText(doc)) return ingest_internal::NoTextError(filename);
  doc.title = ingest_internal::FirstLineTitle(doc);
  if (doc.title.empty()) doc.title = ingest_internal::FileNameTitle(filename);
  return doc;
}

}  // namespace

StatusOr<ParsedDocument> ParsePlainText(std::string_view bytes, const std::string& filename) {
  return ingest_internal::CatchParserExceptions(
      filename, [&] { return ParsePlainTextUnguarded(bytes, filename); });
}

}  // namespace rag
