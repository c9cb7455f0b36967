// ParseMarkdown: a Markdown file -> one page of plain text (no markup), through md4c's parser
// callbacks (CommonMark with the GitHub extensions: tables, strikethrough, task lists).
//
// - Headings become sections and stay in the text; the title is the front matter's `title:`,
//   else the first H1, else the first heading, else the first line.
// - Paragraphs, list items, block quotes and table rows end paragraphs or lines; table cells
//   are separated by tabs; code blocks are kept verbatim; link and image text is kept, their
//   URLs are not.
// - Raw HTML blocks go through the HTML extractor (so their <script> is dropped and their
//   headings become sections); inline HTML tags are dropped, and so is the content of an inline
//   <script> or <style>.
// - A YAML front matter block ("---" ... "---" at the very top) is not text.
#include <md4c.h>

#include <cctype>
#include <cstdint>
#include <limits>
#include <utility>

#include "common/utf8.h"
#include "ingest/html_text.h"
#include "ingest/parser.h"
#include "ingest/parser_guard.h"
#include "ingest/text_builder.h"
#include "ingest/text_util.h"

namespace rag {
namespace {

using ingest_internal::TextBuilder;

struct MarkdownState {
  TextBuilder out;
  std::string first_h1;
  std::string first_heading;
  unsigned heading_level = 0;
  int list_depth = 0;
  bool in_code_block = false;
  bool in_html_block = false;
  bool in_inline_script = false;  // between an inline <script>/<style> and its end tag
  std::string html_block;
  std::string error;  // set when a callback threw
};

void NoteHeading(const std::string& title, bool is_h1, MarkdownState& s) {
  if (title.empty()) return;
  if (s.first_heading.empty()) s.first_heading = title;
  if (is_h1 && s.first_h1.empty()) s.first_h1 = title;
}

void EnterBlock(MD_BLOCKTYPE type, void* detail, MarkdownState& s) {
  switch (type) {
    case MD_BLOCK_UL:
    case MD_BLOCK_OL:
      if (s.list_depth++ > 0)
        s.out.LineBreak();
      else
        s.out.ParagraphBreak();
      break;
    case MD_BLOCK_LI:
    case MD_BLOCK_TR:
      s.out.LineBreak();
      break;
    case MD_BLOCK_TH:
    case MD_BLOCK_TD:
      s.out.CellSeparator();
      break;
    case MD_BLOCK_H:
      s.out.ParagraphBreak();
      s.out.BeginHeading();
      s.heading_level = static_cast<MD_BLOCK_H_DETAIL*>(detail)->level;
      break;
    case MD_BLOCK_CODE:
      s.out.ParagraphBreak();
      s.in_code_block = true;
      break;
    case MD_BLOCK_HTML:
      s.out.ParagraphBreak();
      s.in_html_block = true;
      s.html_block.clear();
      break;
    case MD_BLOCK_QUOTE:
    case MD_BLOCK_HR:
    case MD_BLOCK_P:
    case MD_BLOCK_TABLE:
      s.out.ParagraphBreak();
      break;
    default:
      break;
  }
}

void LeaveBlock(MD_BLOCKTYPE type, MarkdownState& s) {
  s.in_inline_script = false;  // an unclosed inline <script> ends with its block
  switch (type) {
    case MD_BLOCK_UL:
    case MD_BLOCK_OL:
      if (--s.list_depth > 0)
        s.out.LineBreak();
      else
        s.out.ParagraphBreak();
      break;
    case MD_BLOCK_LI:
    case MD_BLOCK_TR:
      s.out.LineBreak();
      break;
    case MD_BLOCK_H:
      NoteHeading(s.out.EndHeading(), s.heading_level == 1, s);
      s.heading_level = 0;
      s.out.ParagraphBreak();
      break;
    case MD_BLOCK_CODE:
      s.in_code_block = false;
      s.out.ParagraphBreak();
      break;
    case MD_BLOCK_HTML: {
      s.in_html_block = false;
      const ingest_internal::HtmlTextResult found = AppendHtmlText(s.html_block, &s.out);
      NoteHeading(found.first_h1, true, s);
      NoteHeading(found.first_heading, false, s);
      s.html_block.clear();
      s.out.ParagraphBreak();
      break;
    }
    case MD_BLOCK_QUOTE:
    case MD_BLOCK_P:
    case MD_BLOCK_TABLE:
      s.out.ParagraphBreak();
      break;
    default:
      break;
  }
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

void AppendCodePoint(uint32_t cp, TextBuilder* out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  std::string utf8;
  AppendUtf8(cp, &utf8);
  out->AppendText(utf8);
}

// md4c hands entities over undecoded ("&amp;", "&#233;", "&#xE9;"); md4c has checked that a
// named one is in the HTML5 table, whose full decoding we leave to gumbo.
void AppendEntity(std::string_view entity, TextBuilder* out) {
  if (entity.size() >= 4 && entity[1] == '#') {
    const bool hex = entity[2] == 'x' || entity[2] == 'X';
    uint32_t cp = 0;
    for (size_t i = hex ? 3 : 2; i + 1 < entity.size(); ++i) {
      const char c = entity[i];
      const uint32_t digit = (c >= '0' && c <= '9')   ? c - '0'
                             : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                                      : c - 'A' + 10;
      cp = cp * (hex ? 16 : 10) + digit;
      if (cp > 0x10FFFF) cp = 0x110000;  // saturate: out of range
    }
    AppendCodePoint(cp, out);
    return;
  }
  static constexpr std::pair<std::string_view, std::string_view> kCommon[] = {
      {"&amp;", "&"},       {"&lt;", "<"},         {"&gt;", ">"},
      {"&quot;", "\""},     {"&apos;", "'"},       {"&nbsp;", " "},
      {"&copy;", "\u00A9"}, {"&mdash;", "\u2014"}, {"&ndash;", "\u2013"}};
  for (const auto& [name, value] : kCommon) {
    if (entity == name) {
      out->AppendText(value);
      return;
    }
  }
  ingest_internal::AppendHtmlText(entity, out);
}

void Text(MD_TEXTTYPE type, std::string_view text, MarkdownState& s) {
  switch (type) {
    case MD_TEXT_NORMAL:
    case MD_TEXT_LATEXMATH:
      if (!s.in_inline_script) s.out.AppendText(text);
      break;
    case MD_TEXT_NULLCHAR:
      s.out.AppendText("\xEF\xBF\xBD");
      break;
    case MD_TEXT_BR:
      s.out.LineBreak();
      break;
    case MD_TEXT_SOFTBR:
      s.out.AppendText(" ");
      break;
    case MD_TEXT_ENTITY:
      AppendEntity(text, &s.out);
      break;
    case MD_TEXT_CODE:
      if (s.in_code_block)
        s.out.AppendPreformatted(text);
      else
        s.out.AppendText(text);
      break;
    case MD_TEXT_HTML:
      if (s.in_html_block) {
        s.html_block.append(text);
      } else if (StartsWithIgnoreCase(text, "<script") || StartsWithIgnoreCase(text, "<style")) {
        s.in_inline_script = true;
      } else if (StartsWithIgnoreCase(text, "</script") || StartsWithIgnoreCase(text, "</style")) {
        s.in_inline_script = false;
      }
      break;
  }
}

// md4c is C: an exception must not unwind through it. A callback that throws stops the parse
// (a non-zero return) and leaves its message in the state.
template <typename F>
int Guarded(void* userdata, F&& f) {
  MarkdownState& s = *static_cast<MarkdownState*>(userdata);
  try {
    f(s);
    return 0;
  } catch (const std::exception& e) {
    s.error = e.what();
  } catch (...) {
    s.error = "unknown exception";
  }
  return 1;
}

int OnEnterBlock(MD_BLOCKTYPE type, void* detail, void* userdata) {
  return Guarded(userdata, [&](MarkdownState& s) { EnterBlock(type, detail, s); });
}
int OnLeaveBlock(MD_BLOCKTYPE type, void* /*detail*/, void* userdata) {
  return Guarded(userdata, [&](MarkdownState& s) { LeaveBlock(type, s); });
}
int OnSpan(MD_SPANTYPE, void*, void*) { return 0; }
int OnText(MD_TEXTTYPE type, const MD_CHAR* data, MD_SIZE size, void* userdata) {
  return Guarded(userdata, [&](MarkdownState& s) { Text(type, std::string_view(data, size), s); });
}

// Splits a YAML front matter block off the top of `text`; returns its `title:` value ("" when
// none). A block counts only when it is closed and every line in it looks like YAML.
std::string StripFrontMatter(std::string_view* text) {
  if (!text->starts_with("---\n")) return "";
  std::string title;
  size_t pos = 4;
  while (pos < text->size()) {
    const size_t nl = text->find('\n', pos);
    const std::string_view line =
        text->substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    const size_t next = nl == std::string_view::npos ? text->size() : nl + 1;
    if (line == "---" || line == "...") {
      text->remove_prefix(next);
      return title;
    }
    const bool yaml_like = line.empty() || line[0] == ' ' || line[0] == '-' || line[0] == '#' ||
                           line.find(':') != std::string_view::npos;
    if (!yaml_like) return "";
    if (line.starts_with("title:")) {
      std::string_view value = ingest_internal::TrimAscii(line.substr(6));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      title = ingest_internal::MakeTitle(value);
    }
    pos = next;
  }
  return "";  // never closed: not front matter
}

StatusOr<ParsedDocument> ParseMarkdownUnguarded(std::string_view bytes,
                                                const std::string& filename) {
  if (bytes.size() >= std::numeric_limits<MD_SIZE>::max()) {
    return ResourceExhausted(filename + ": file too large for the Markdown parser");
  }
  RAG_ASSIGN_OR_RETURN(const std::string decoded, ingest_internal::DecodeTextFile(bytes, filename));
  const std::string source = ingest_internal::NormalizeNewlines(decoded);
  std::string_view markdown = source;
  const std::string front_matter_title = StripFrontMatter(&markdown);

  MarkdownState state;
  MD_PARSER parser{};
  parser.abi_version = 0;
  parser.flags = MD_DIALECT_GITHUB;
  parser.enter_block = OnEnterBlock;
  parser.leave_block = OnLeaveBlock;
  parser.enter_span = OnSpan;
  parser.leave_span = OnSpan;
  parser.text = OnText;
  if (md_parse(markdown.data(), static_cast<MD_SIZE>(markdown.size()), &parser, &state) != 0) {
    return Internal(filename + ": the Markdown parser failed" +
                    (state.error.empty() ? std::string(" (out of memory?)") : ": " + state.error));
  }

  ParsedDocument doc;
  doc.format = "markdown";
  doc.sections = state.out.TakeSections();
  doc.pages.push_back(PageText{1, state.out.TakeText()});
  if (ingest_internal::HasNoText(doc)) return ingest_internal::NoTextError(filename);
  doc.title = !front_matter_title.empty()    ? front_matter_title
              : !state.first_h1.empty()      ? state.first_h1
              : !state.first_heading.empty() ? state.first_heading
                                             : ingest_internal::FirstLineTitle(doc);
  if (doc.title.empty()) doc.title = ingest_internal::FileNameTitle(filename);
  return doc;
}

}  // namespace

StatusOr<ParsedDocument> ParseMarkdown(std::string_view bytes, const std::string& filename) {
  return ingest_internal::CatchParserExceptions(
      filename, [&] { return ParseMarkdownUnguarded(bytes, filename); });
}

}  // namespace rag
