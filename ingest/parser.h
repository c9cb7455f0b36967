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

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ingest/document.h"

namespace rag {

// True when the extension of `filename` is one we parse.
bool IsSupportedFileName(std::string_view filename);

// Bounds on reading one PDF, so that no file can make ingestion run for ever, eat the memory or
// crash the process (docs/RELIABILITY.md). ParseDocument reads a PDF in a child process (the
// reader program rag-pdf-reader running ParsePdf; poppler never runs in the server's own
// process), which is killed when it runs longer than max_seconds or needs more than
// max_memory_bytes; a crash of poppler there is a failed document, not a dead server. A reader
// that sleeps max_stall_seconds without using the CPU is stuck (ingest/pdf_sandbox.h); it is
// killed and the PDF read again in a fresh child, up to three times. Inside, ParsePdf
// refuses a PDF with more than max_pages pages or whose streams decode to more than
// max_decoded_bytes (a decompression bomb: ingest/pdf_streams.h) before poppler reads it. Every
// refusal is an error naming the file and the limit (ResourceExhausted, or InvalidArgument for a
// crash).
struct PdfReadLimits {
  int max_pages = 10000;
  uint64_t max_decoded_bytes = 512ull << 20;
  double max_seconds = 300;
  double max_stall_seconds = 5;
  uint64_t max_memory_bytes = 2ull << 30;
  bool isolate = true;  // false: ParseDocument calls ParsePdf in this process, unbounded
};
// Process-wide; set before ingestion starts (tests and tools lower them). Thread-safe.
void SetPdfReadLimits(const PdfReadLimits& limits);
PdfReadLimits GetPdfReadLimits();

// Parses the bytes of a file named `filename` (only the name is used, for the format and the
// messages; nothing is read from disk). PDFs within PdfReadLimits, in a child process.
StatusOr<ParsedDocument> ParseDocument(std::string_view bytes, const std::string& filename);

// The format-specific entry points, also used by tests and fuzzers. ParsePdf runs poppler in
// this process: only max_pages and max_decoded_bytes of PdfReadLimits apply.
StatusOr<ParsedDocument> ParsePdf(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParsePlainText(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParseMarkdown(std::string_view bytes, const std::string& filename);
StatusOr<ParsedDocument> ParseHtml(std::string_view bytes, const std::string& filename);

}  // namespace rag
