// Fuzz target: the PDF entry point (poppler-cpp, ingest/pdf_parser.cc) on the
// bytes of a file, then the chunker, with the checks of ingest_fuzz.h.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ingest/parser.h"
#include "tests/fuzz/ingest_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rag::fuzz::FuzzParser(rag::ParsePdf, std::string_view(reinterpret_cast<const char*>(data), size),
                        "fuzz.pdf");
  return 0;
}
