// The sentence splitter behind SplitSentences (chunker.h), on a byte range (internal to
// ingest/): the chunker splits each section of a page without copying it.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "ingest/chunker.h"

namespace rag::ingest_internal {

// Appends to `out` the sentences of text[begin, end), as offsets into `text`, in order.
//
// A sentence ends
// - after . ! ? or an ellipsis (and any closing quotes or brackets) followed by whitespace,
//   unless the next word starts with a lowercase letter, or the period ends an abbreviation
//   (Dr., e.g., i.e., U.S., an initial, "Fig." or "No." before a number); "3.14" and "a.b"
//   have no whitespace after the period and never end one;
// - after the CJK full stop, exclamation or question mark, whitespace or not;
// - at a blank line;
// - at a single line break when the next line starts a list item, or reads as a new start: not
//   with a lowercase letter, not after a line that ends in , ; - ( / & or a function word
//   ("and", "the", "of", ...), and not with a digit after a line that ends in a lowercase
//   letter (a wrapped "built in\n1887").
void SplitSentencesInRange(std::string_view text, size_t begin, size_t end,
                           std::vector<SentenceSpan>* out);

}  // namespace rag::ingest_internal
