// Fuzz target: the HTML parser (gumbo, ingest/html_parser.cc), then the
// chunker, with the checks of ingest_fuzz.h.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ingest/parser.h"
#include "tests/fuzz/ingest_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rag::fuzz::FuzzParser(rag::ParseHtml, std::string_view(reinterpret_cast<const char*>(data), size),
                        "fuzz.html");
  return 0;
}
