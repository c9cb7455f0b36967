// The visible text of HTML, through gumbo (internal to ingest/); used by the HTML parser and by
// the Markdown parser for raw HTML blocks.
#pragma once

#include <string>
#include <string_view>

#include "ingest/text_builder.h"

namespace rag::ingest_internal {

struct HtmlTextResult {
  std::string title;          // text of <title> in <head>, whitespace collapsed; "" when none
  std::string first_h1;       // "" when there is no <h1> with text
  std::string first_heading;  // first <h1>..<h6> with text
};

// Parses `html` (valid UTF-8; see LimitHtmlNesting, which this applies first) and appends its
// visible text to `out`:
// - script, style, noscript, template, head (and so title), svg, canvas, iframe, object, select,
//   textarea, comments, elements with the `hidden` attribute or an inline display:none are left
//   out;
// - block elements (p, div, li, h1-h6, br, tr, section, article, pre, blockquote, table, ...)
//   end lines or paragraphs; table cells are separated by tabs; pre keeps its layout;
// - h1..h6 become sections of `out`.
// Character references are decoded by gumbo (numeric ones beyond U+10FFFF become U+FFFD first:
// gumbo would overflow on them). The tree is walked with an explicit stack, never
// by recursion.
HtmlTextResult AppendHtmlText(std::string_view html, TextBuilder* out);

}  // namespace rag::ingest_internal
