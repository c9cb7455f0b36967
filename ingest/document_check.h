// Checks of the contracts of document.h and chunker.h, for tests, fuzzers and debug builds of
// the pipeline. An error is Internal (a violation is our bug, not the user's) and says what is
// wrong where.
#pragma once

#include <vector>

#include "common/status.h"
#include "ingest/chunker.h"
#include "ingest/document.h"

namespace rag {

// A parser's output: a non-empty title of valid UTF-8; pages numbered 1, 2, ... in order, each
// of valid UTF-8 without "\r", without a run of three newlines, not starting with a newline
// and not ending with whitespace; sections ordered by (page, offset), on existing pages, within
// their page's text, with non-empty titles.
Status CheckParsedDocument(const ParsedDocument& doc);

// Chunks of `doc`: each on an existing page, with start < end <= the page's size,
// text == the page text's span and not blank, the section in effect at `start` and no section
// starting inside the span; in reading order ((page, start) increasing).
Status CheckChunks(const ParsedDocument& doc, const std::vector<Chunk>& chunks);

}  // namespace rag
