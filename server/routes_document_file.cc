// GET /v1/documents/{id}/file: the original file of a document, as uploaded (or as ingested
// from disk), so that a citation can open the PDF at its page.
//
// Security: uploaded files are untrusted and this route is served from the page's own origin.
// Only a real PDF goes out as application/pdf (browsers show it in their PDF viewer, which runs
// no script of the document in our origin). Everything else goes out as text/plain with
// `Content-Security-Policy: sandbox`, so an uploaded .html is shown as its source and, even if
// a browser rendered it, would run in an opaque origin without access to the page or its key.
// `X-Content-Type-Options: nosniff` on both stops browsers from guessing another type.
#include <cstdio>

#include "common/file_util.h"
#include "server/assistant.h"
#include "server/http_internal.h"

namespace rag {
namespace {

// Content-Disposition for a stored file name: an ASCII fallback (quotes, controls and non-ASCII
// replaced by '_') and RFC 5987's UTF-8 form for clients that read it.
std::string ContentDisposition(const std::string& filename) {
  std::string ascii, encoded;
  for (unsigned char c : filename) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_';
    ascii += plain || c == ' ' ? static_cast<char>(c) : '_';
    if (plain) {
      encoded += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      encoded += hex;
    }
  }
  return "inline; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

// A PDF starts with "%PDF-" within its first 1024 bytes (ISO 32000-1, 7.5.2).
bool LooksLikePdf(std::string_view bytes) {
  const size_t at = bytes.substr(0, 1024).find("%PDF-");
  return at != std::string_view::npos;
}

}  // namespace

HttpReply HandleDocumentFile(ServerContext& ctx, std::string_view id_text, const Access& access) {
  StatusOr<int64_t> id = ParsePathId(id_text, "document");
  if (!id.ok()) return ErrorReply(id.status());
  StatusOr<DocumentRecord> doc = VisibleDocument(ctx, *id, access);
  if (!doc.ok()) return ErrorReply(doc.status());
  StatusOr<std::string> bytes = ctx.assistant.ReadOriginal(*doc);
  if (!bytes.ok()) return ErrorReply(bytes.status());

  HttpReply reply;
  const bool pdf = FileExtension(doc->filename) == "pdf" && LooksLikePdf(*bytes);
  reply.content_type = pdf ? "application/pdf" : "text/plain; charset=utf-8";
  reply.body = std::move(*bytes);
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Chrome's PDF viewer does not run inside a sandboxed document, so PDFs go without it.
  if (!pdf) reply.headers.emplace_back("Content-Security-Policy", "sandbox");
  reply.headers.emplace_back("Content-Disposition", ContentDisposition(doc->filename));
  // With keys the file is one caller's; shared caches must not keep it.
  reply.headers.emplace_back("Cache-Control", "private, no-cache");
  return reply;
}

}  // namespace rag
