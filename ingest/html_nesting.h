// A guard in front of gumbo (internal to ingest/). Gumbo's tree builder scans the stack of open
// elements for every start tag, so deeply nested HTML costs time quadratic in the depth (100000
// nested <div>s took 23 s on the development machine) and its recursive node destructor uses
// stack in proportion to the depth. Like Blink, which stops nesting at 512 levels, we flatten
// what lies deeper: the text stays, only the excess start tags and their end tags go.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rag::ingest_internal {

inline constexpr size_t kMaxHtmlDepth = 512;

// Returns `html` without the start tags that would open an element deeper than `max_depth`
// (and without their end tags), or nullopt when nothing is that deep (the input can be used as
// is). The depth is estimated by a light tokenizer: comments, doctype, quoted attributes and
// raw-text elements (script, style, textarea, title, ...) are understood; void elements and
// elements whose end tag is optional (p, li, td, ...) do not count; self-closing tags count
// only inside svg and math. Linear in the size of the input.
std::optional<std::string> LimitHtmlNesting(std::string_view html,
                                            size_t max_depth = kMaxHtmlDepth);

}  // namespace rag::ingest_internal
