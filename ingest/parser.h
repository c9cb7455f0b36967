// Document parsers: bytes of a file -> ParsedDocument. The format comes from the file name's
// extension (pdf, txt/text, md/markdown, html/htm), checked against the content (a ".pdf" that
// does not start with %PDF is an error).
//
// Every failure is a Status whose message starts with the file name, for example
//   "report.pdf: the PDF is encrypted (password protected)"
//   "notes.pdf: corrupt or unreadable PDF"
//   "empty.txt: the document has no text"
//   "photo.png: unsupported file type .png (supported: .pdf .txt .md .html)"
// Parsers never crash on hostile input: a parser that throws is caught here.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "ingest/document.h"

namespace rag {

// True when the extension of `filename` is one we parse.
bool IsSupportedFileName(std::string_view filename);

// Parses the bytes of a file named `filename` (only the name is used, for the format and the
// messages; nothing is read from disk).
StatusOr<ParsedDocument> ParseDocument(std::string_view bytes, const std::string& filename);

// The format-specific entry points, also used by tests and fuzzers.
StatusOr<ParsedDocument> ParsePdf(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParsePlainText(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParseMarkdown(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParseHtml(std::string_view bytes, const std::string& filename);

}  // namespace rag
