// rag-pdf-reader FILENAME MAX_PAGES MAX_DECODED_BYTES: the PDF reader process of
// ingest/pdf_sandbox.h, not a command for people. Reads a PDF's bytes from stdin, parses them
// (ParsePdf through ParseDocument, within the page and decoded-byte limits of the server that
// started it) and writes the answer (ingest/pdf_reader_protocol.h) to file descriptor 3. The server
// starts it with fork and exec, so that none of the server's threads' locks come along (a plain
// fork's child could wait for ever on one); the server also watches its time, memory and sleep.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/logging.h"
#include "ingest/parser.h"
#include "ingest/pdf_reader_protocol.h"

namespace {

bool ReadAll(int fd, std::string* out) {
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  rag::SetLogLevel(rag::LogLevel::kError);  // the answer is all the server wants of it
  rag::PdfReadLimits limits = rag::GetPdfReadLimits();
  limits.max_pages = std::atoi(argv[2]);
  limits.max_decoded_bytes = std::strtoull(argv[3], nullptr, 10);
  limits.isolate = false;
  rag::SetPdfReadLimits(limits);
  const std::string filename = argv[1];
  std::string bytes;
  if (!ReadAll(0, &bytes)) return 3;
  // ParseDocument with isolate off: ParsePdf here, behind its guard against exceptions (bad_alloc
  // past the address-space limit, among others).
  const rag::StatusOr<rag::ParsedDocument> result = rag::ParseDocument(bytes, filename);
  const bool written = rag::ingest_internal::WriteReaderAnswer(3, result);
  _exit(written ? 0 : 5);  // no exit-time work (leak checks of sanitizer builds)
}
