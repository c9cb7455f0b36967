// What the PDF reader process (ingest/pdf_sandbox.h, ingest/pdf_reader_main.cc) answers on its
// pipe: a tag byte, then the Status ('E': code, message) or the ParsedDocument ('D': title,
// format, pages, sections), integers as 8 host-order bytes, strings length-prefixed. Reader and
// server are the same build, so no version is carried.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "ingest/document.h"

namespace rag::ingest_internal {

std::string EncodeReaderAnswer(const StatusOr<ParsedDocument>& result);
// Encodes and writes it all to `fd` (retrying short writes); false when the write fails.
bool WriteReaderAnswer(int fd, const StatusOr<ParsedDocument>& result);
// Internal error naming `filename` when the answer is cut short or malformed ("garbled").
StatusOr<ParsedDocument> DecodeReaderAnswer(std::string_view data, const std::string& filename);

}  // namespace rag::ingest_internal
