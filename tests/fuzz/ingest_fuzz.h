// Shared by the parser fuzz targets (html_fuzz.cc, markdown_fuzz.cc, pdf_fuzz.cc): runs one
// ingest entry point on the input and checks what ingest/document_check.h states. A parse
// error must name the file and must not be Internal (Internal means a parser threw or broke its
// own contract); a parsed document must pass CheckParsedDocument, and its chunks CheckChunks.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/chunker.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace rag::fuzz {

template <typename Parse>
void FuzzParser(Parse parse, std::string_view bytes, const std::string& filename) {
  StatusOr<ParsedDocument> doc = parse(bytes, filename);
  if (!doc.ok()) {
    if (doc.status().code() == StatusCode::kInternal ||
        doc.status().message().rfind(filename, 0) != 0) {
      std::fprintf(stderr, "unexpected error: %s\n", doc.status().ToString().c_str());
      FUZZ_CHECK(false);
    }
    return;
  }
  if (Status s = CheckParsedDocument(*doc); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    FUZZ_CHECK(false);
  }
  // Small chunks, so that short inputs still make several and cross section starts.
  const std::vector<Chunk> chunks =
      ChunkDocument(*doc, ChunkOptions{.target_words = 12, .overlap_words = 3, .max_words = 20});
  if (Status s = CheckChunks(*doc, chunks); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    FUZZ_CHECK(false);
  }
}

}  // namespace rag::fuzz
