// Parses a grounded answer with Hermes 3 citation tags into plain text plus citations.
//
// Accepted (DESIGN.md section 4): `<co:N>`, `<co: N>`, `<co: N, M>` open a cited span, which
// closes on `</co>` or `</co: N>` (any number). The trailing "Cited Documents: ..." line is
// dropped. Anything else that looks like a tag (unknown names, malformed numbers such as
// `<co:x>`) is kept as text; a stray closing `</co>` is dropped (it is markup, never content);
// an unclosed `<co:N>` cites the text up to the end of its line (or the next opening tag). Source ids outside [0, num_passages) are dropped; a span left with no valid
// source is plain text. Never fails and never crashes, whatever the input.
//
// Offsets are in Unicode code points of `answer` (what a browser's Array.from(answer) indexes),
// half-open [start, end), and trimmed of surrounding whitespace. Bytes of `tagged` that are not
// valid UTF-8 become U+FFFD in the answer, so the answer is always valid UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rag {

struct Citation {
  size_t start = 0;          // code point offset in ParsedAnswer::answer
  size_t end = 0;            // one past the last code point
  std::string text;          // answer text of the span (UTF-8)
  std::vector<int> sources;  // passage indices (Document:N), ascending, unique
};

struct ParsedAnswer {
  std::string answer;  // the answer with tags removed, whitespace tidied
  std::vector<Citation> citations;
};

ParsedAnswer ParseCitations(std::string_view tagged, int num_passages);

// Number of code points in UTF-8 text (each byte that is not part of a valid character counts
// one, stray continuation bytes included).
size_t Utf8Length(std::string_view text);

}  // namespace rag
