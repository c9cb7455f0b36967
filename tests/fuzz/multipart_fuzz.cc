// Fuzz target: the multipart/form-data parser of uploads (server/multipart.h). The input is the
// Content-Type header value up to the first "\n", then the body. Checks the header's contract on
// success: at most max_parts parts, unique non-empty names, every part's data a view inside the
// body, file names already sanitized (no path separators, not "." or "..", no control bytes).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "server/multipart.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  if (newline == std::string_view::npos) {
    (void)rag::MultipartBoundary(input);
    (void)rag::SanitizeFilename(input);
    return 0;
  }
  const std::string_view content_type = input.substr(0, newline);
  const std::string_view body = input.substr(newline + 1);
  rag::MultipartLimits limits;
  limits.max_parts = 8;
  limits.max_header_bytes = 1024;
  limits.max_filename_bytes = 64;
  rag::StatusOr<std::vector<rag::MultipartPart>> parts =
      rag::ParseMultipart(content_type, body, limits);
  if (!parts.ok()) return 0;
  FUZZ_CHECK(parts->size() <= limits.max_parts);
  std::set<std::string> names;
  for (const rag::MultipartPart& part : *parts) {
    FUZZ_CHECK(!part.name.empty());
    FUZZ_CHECK(names.insert(part.name).second);
    FUZZ_CHECK(rag::FindPart(*parts, part.name) == &part);
    FUZZ_CHECK(part.data.data() >= body.data());
    FUZZ_CHECK(part.data.data() + part.data.size() <= body.data() + body.size());
    if (part.filename) {
      const std::string& f = *part.filename;
      FUZZ_CHECK(!f.empty() && f != "." && f != "..");
      FUZZ_CHECK(f.size() <= limits.max_filename_bytes);
      FUZZ_CHECK(f.find('/') == std::string::npos && f.find('\\') == std::string::npos);
      for (char c : f) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    }
  }
  return 0;
}
