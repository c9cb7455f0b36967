// Keeps exceptions inside the ingest module (internal to ingest/): a parser body that throws
// (bad_alloc on a hostile file, a library failure) becomes an Internal status naming the file.
#pragma once

#include <exception>
#include <string>

#include "common/status.h"
#include "ingest/document.h"

namespace rag::ingest_internal {

template <typename Body>
StatusOr<ParsedDocument> CatchParserExceptions(const std::string& filename, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return Internal(filename + ": the parser failed: " + e.what());
  } catch (...) {
    return Internal(filename + ": the parser failed");
  }
}

}  // namespace rag::ingest_internal
