// Fuzz target: the Markdown parser (md4c, ingest/markdown_parser.cc), then the
// chunker, with the checks of ingest_fuzz.h.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ingest/parser.h"
#include "tests/fuzz/ingest_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rag::fuzz::FuzzParser(rag::ParseMarkdown, std::string_view(reinterpret_cast<const char*>(data), size),
                        "fuzz.md");
  return 0;
}
