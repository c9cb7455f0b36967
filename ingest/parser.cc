// ParseDocument: picks the parser from the file name's extension and guards against any
// exception escaping a parser (bad_alloc on a hostile file, a bug in a library).
#include "ingest/parser.h"

#include <mutex>

#include "common/file_util.h"
#include "ingest/pdf_sandbox.h"

namespace rag {
namespace {

using Parser = StatusOr<ParsedDocument> (*)(std::string_view, const std::string&);

// The parser for a lower-cased extension, or nullptr.
Parser ParserFor(const std::string& ext) {
  if (ext == "pdf") return ParsePdf;
  if (ext == "txt" || ext == "text") return ParsePlainText;
  if (ext == "md" || ext == "markdown") return ParseMarkdown;
  if (ext == "html" || ext == "htm") return ParseHtml;
  return nullptr;
}

}  // namespace

namespace {
std::mutex limits_mu;
PdfReadLimits limits;
}  // namespace

void SetPdfReadLimits(const PdfReadLimits& l) {
  std::lock_guard<std::mutex> lock(limits_mu);
  limits = l;
}

PdfReadLimits GetPdfReadLimits() {
  std::lock_guard<std::mutex> lock(limits_mu);
  return limits;
}

bool IsSupportedFileName(std::string_view filename) {
  return ParserFor(FileExtension(filename)) != nullptr;
}

StatusOr<ParsedDocument> ParseDocument(std::string_view bytes, const std::string& filename) {
  const std::string ext = FileExtension(filename);
  const Parser parser = ParserFor(ext);
  if (parser == nullptr) {
    const std::string what =
        ext.empty() ? "unsupported file type (no extension)" : "unsupported file type ." + ext;
    return Unsupported(filename + ": " + what + " (supported: .pdf .txt .md .html)");
  }
  if (bytes.empty()) return InvalidArgument(filename + ": the document has no text");
  if (parser == ParsePdf && GetPdfReadLimits().isolate && ingest_internal::PdfChildProcessesAreSafe()) {
    return ingest_internal::ParsePdfInChildProcess(bytes, filename, GetPdfReadLimits());
  }
  try {
    return parser(bytes, filename);
  } catch (const std::exception& e) {
    return Internal(filename + ": the parser failed: " + e.what());
  } catch (...) {
    return Internal(filename + ": the parser failed");
  }
}

}  // namespace rag
