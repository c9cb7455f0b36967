// Fuzz target: the citation parser (engine/citations.h) on arbitrary model output. The first
// byte picks the number of passages (0-15); the rest is the tagged answer. Checks the header's
// contract: the answer valid UTF-8 (invalid input bytes become U+FFFD), spans in order,
// non-empty, inside the answer, sources valid, ascending and unique, and each citation's text
// equal to the answer between its offsets.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/citations.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// The bytes of `text` between code point offsets [start, end) (text is valid UTF-8).
std::string CodePointSlice(const std::string& text, size_t start, size_t end) {
  std::string out;
  size_t cp = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool lead = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (lead && i > 0) ++cp;
    if (cp >= start && cp < end) out += text[i];
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int num_passages = data[0] % 16;
  const std::string_view tagged(reinterpret_cast<const char*>(data) + 1, size - 1);
  const rag::ParsedAnswer a = rag::ParseCitations(tagged, num_passages);
  const size_t len = rag::Utf8Length(a.answer);
  FUZZ_CHECK(rag::fuzz::IsValidUtf8(a.answer));
  size_t prev_end = 0;
  for (const rag::Citation& c : a.citations) {
    FUZZ_CHECK(c.start < c.end);
    FUZZ_CHECK(c.end <= len);
    FUZZ_CHECK(c.start >= prev_end);
    prev_end = c.end;
    FUZZ_CHECK(!c.sources.empty());
    for (size_t i = 0; i < c.sources.size(); ++i) {
      FUZZ_CHECK(c.sources[i] >= 0 && c.sources[i] < num_passages);
      if (i > 0) FUZZ_CHECK(c.sources[i - 1] < c.sources[i]);
    }
    FUZZ_CHECK(CodePointSlice(a.answer, c.start, c.end) == c.text);
  }
  return 0;
}
