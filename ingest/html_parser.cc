// ParseHtml: an HTML file -> one page of visible text, with its headings as sections.
#include "ingest/html_text.h"
#include "ingest/parser.h"
#include "ingest/parser_guard.h"
#include "ingest/text_builder.h"
#include "ingest/text_util.h"

namespace rag {

using ingest_internal::AppendHtmlText;
using ingest_internal::DecodeTextFile;
using ingest_internal::TextBuilder;

namespace {

StatusOr<ParsedDocument> ParseHtmlUnguarded(std::string_view bytes, const std::string& filename) {
  // Gumbo reads UTF-8 only: legacy encodings are converted first (a <meta charset> is not
  // consulted; DecodeTextFile's guess covers the common Windows-1252 case).
  RAG_ASSIGN_OR_RETURN(const std::string html, DecodeTextFile(bytes, filename));
  TextBuilder builder;
  const ingest_internal::HtmlTextResult found = AppendHtmlText(html, &builder);

  ParsedDocument doc;
  doc.format = "html";
  doc.sections = builder.TakeSections();
  doc.pages.push_back(PageText{1, builder.TakeText()});
  if (ingest_internal::HasNoText(doc)) return ingest_internal::NoTextError(filename);
  doc.title = !found.title.empty()           ? found.title
              : !found.first_h1.empty()      ? found.first_h1
              : !found.first_heading.empty() ? found.first_heading
                                             : ingest_internal::FirstLineTitle(doc);
  if (doc.title.empty()) doc.title = ingest_internal::FileNameTitle(filename);
  return doc;
}

}  // namespace

StatusOr<ParsedDocument> ParseHtml(std::string_view bytes, const std::string& filename) {
  return ingest_internal::CatchParserExceptions(
      filename, [&] { return ParseHtmlUnguarded(bytes, filename); });
}

}  // namespace rag
