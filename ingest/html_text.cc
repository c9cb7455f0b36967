#include "ingest/html_text.h"

#include <gumbo.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/html_nesting.h"
#include "ingest/text_util.h"

namespace rag::ingest_internal {
namespace {

enum class Break { kNone, kLine, kParagraph };

// gumbo 0.10 accumulates a numeric character reference in an int without a bound, so a long one
// ("&#xD8aaaaaaad") overflows: it came out as a lone byte 0xAD (invalid UTF-8), as "&", or
// swallowed the text after it (found by tests/fuzz/markdown_fuzz). HTML says a reference beyond
// U+10FFFF is U+FFFD, so such references are rewritten to &#xFFFD before gumbo sees them. nullopt
// when there is none (the common case: no copy).
std::optional<std::string> ClampCharacterReferences(std::string_view html) {
  std::optional<std::string> out;
  size_t copied = 0;  // html[0, copied) is in *out
  for (size_t amp = html.find("&#"); amp != std::string_view::npos; amp = html.find("&#", amp + 2)) {
    size_t i = amp + 2;
    const bool hex = i < html.size() && (html[i] == 'x' || html[i] == 'X');
    if (hex) ++i;
    const size_t digits = i;
    uint32_t value = 0;
    for (; i < html.size(); ++i) {
      const char c = html[i];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (hex && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (hex && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) break;
      value = std::min<uint32_t>(value * (hex ? 16 : 10) + digit, 0x110000);
    }
    if (value <= 0x10FFFF) continue;
    if (!out) out.emplace().reserve(html.size());
    out->append(html.substr(copied, digits - copied));
    out->append(hex ? "FFFD" : "65533");
    copied = i;
  }
  if (out) out->append(html.substr(copied));
  return out;
}

bool IsSkipped(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_TITLE:
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_APPLET:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_DATALIST:
    case GUMBO_TAG_VIDEO:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_MAP:
    case GUMBO_TAG_NOFRAMES:
    case GUMBO_TAG_NOEMBED:
    case GUMBO_TAG_BASE:
    case GUMBO_TAG_LINK:
    case GUMBO_TAG_META:
      return true;
    default:
      return false;
  }
}

// The break an element makes before and after its content.
Break BreakOf(GumboTag tag, bool in_list) {
  switch (tag) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_XMP:
    case GUMBO_TAG_PLAINTEXT:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_HGROUP:
      return Break::kParagraph;
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_MENU:
    case GUMBO_TAG_DIR:
      return in_list ? Break::kLine : Break::kParagraph;  // a nested list stays with its item
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_OPTION:
    case GUMBO_TAG_BR:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_TFOOT:
      return Break::kLine;
    default:
      return Break::kNone;
  }
}

bool IsList(GumboTag tag) {
  return tag == GUMBO_TAG_UL || tag == GUMBO_TAG_OL || tag == GUMBO_TAG_DL ||
         tag == GUMBO_TAG_MENU || tag == GUMBO_TAG_DIR;
}

bool IsHeading(GumboTag tag) { return tag >= GUMBO_TAG_H1 && tag <= GUMBO_TAG_H6; }

bool IsPreformatted(GumboTag tag) {
  return tag == GUMBO_TAG_PRE || tag == GUMBO_TAG_LISTING || tag == GUMBO_TAG_XMP ||
         tag == GUMBO_TAG_PLAINTEXT;
}

bool IsHidden(const GumboElement& element) {
  if (gumbo_get_attribute(&element.attributes, "hidden") != nullptr) return true;
  const GumboAttribute* style = gumbo_get_attribute(&element.attributes, "style");
  if (style == nullptr) return false;
  std::string compact;
  for (const char* p = style->value; *p; ++p) {
    if (!IsAsciiSpace(*p))
      compact += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
  }
  return compact.find("display:none") != std::string::npos;
}

void Apply(Break b, TextBuilder* out) {
  if (b == Break::kLine) out->LineBreak();
  if (b == Break::kParagraph) out->ParagraphBreak();
}

std::string TitleOf(const GumboNode* root) {
  if (root == nullptr || root->type != GUMBO_NODE_ELEMENT) return "";
  for (unsigned i = 0; i < root->v.element.children.length; ++i) {
    const auto* head = static_cast<const GumboNode*>(root->v.element.children.data[i]);
    if (head->type != GUMBO_NODE_ELEMENT || head->v.element.tag != GUMBO_TAG_HEAD) continue;
    for (unsigned j = 0; j < head->v.element.children.length; ++j) {
      const auto* title = static_cast<const GumboNode*>(head->v.element.children.data[j]);
      if (title->type != GUMBO_NODE_ELEMENT || title->v.element.tag != GUMBO_TAG_TITLE) continue;
      std::string text;
      for (unsigned k = 0; k < title->v.element.children.length; ++k) {
        const auto* t = static_cast<const GumboNode*>(title->v.element.children.data[k]);
        if (t->type == GUMBO_NODE_TEXT || t->type == GUMBO_NODE_WHITESPACE) text += t->v.text.text;
      }
      return MakeTitle(text);
    }
  }
  return "";
}

// One step of the walk: entering a node, or leaving an element whose end needs an action.
struct Step {
  const GumboNode* node;
  bool leave;
};

}  // namespace

HtmlTextResult AppendHtmlText(std::string_view html, TextBuilder* out) {
  const std::optional<std::string> clamped = ClampCharacterReferences(html);
  if (clamped) html = *clamped;
  const std::optional<std::string> flattened = LimitHtmlNesting(html);
  if (flattened) html = *flattened;
  GumboOptions options = kGumboDefaultOptions;
  options.max_errors = 0;  // we never read parse errors; recording them costs time and memory
  const auto destroy = [&options](GumboOutput* o) { gumbo_destroy_output(&options, o); };
  std::unique_ptr<GumboOutput, decltype(destroy)> parsed(
      gumbo_parse_with_options(&options, html.data(), html.size()), destroy);

  HtmlTextResult result;
  if (!parsed) return result;
  result.title = TitleOf(parsed->root);

  int list_depth = 0;
  int pre_depth = 0;
  int heading_depth = 0;
  std::vector<Step> stack = {{parsed->document, false}};
  while (!stack.empty()) {
    const Step step = stack.back();
    stack.pop_back();
    const GumboNode* node = step.node;
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
      case GUMBO_NODE_CDATA: {
        const std::string_view text = node->v.text.text;
        if (pre_depth > 0)
          out->AppendPreformatted(text);
        else
          out->AppendText(text);
        continue;
      }
      case GUMBO_NODE_COMMENT:
        continue;
      case GUMBO_NODE_DOCUMENT: {
        const GumboVector& children = node->v.document.children;
        for (unsigned i = children.length; i-- > 0;) {
          stack.push_back({static_cast<const GumboNode*>(children.data[i]), false});
        }
        continue;
      }
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE:
        break;
    }
    const GumboElement& element = node->v.element;
    const GumboTag tag = element.tag;
    if (step.leave) {
      if (IsList(tag)) --list_depth;
      if (IsPreformatted(tag)) --pre_depth;
      if (IsHeading(tag) && --heading_depth == 0) {
        const std::string title = out->EndHeading();
        if (!title.empty() && result.first_heading.empty()) result.first_heading = title;
        if (!title.empty() && tag == GUMBO_TAG_H1 && result.first_h1.empty()) {
          result.first_h1 = title;
        }
      }
      Apply(BreakOf(tag, list_depth > 0), out);
      continue;
    }
    if (node->type == GUMBO_NODE_TEMPLATE || IsSkipped(tag) || IsHidden(element)) continue;
    if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) out->CellSeparator();
    const Break brk = BreakOf(tag, list_depth > 0);
    Apply(brk, out);
    if (tag == GUMBO_TAG_BR || tag == GUMBO_TAG_HR) continue;
    if (IsHeading(tag) && heading_depth++ == 0) out->BeginHeading();
    if (IsPreformatted(tag)) ++pre_depth;
    if (IsList(tag)) ++list_depth;
    if (brk != Break::kNone || IsHeading(tag) || IsPreformatted(tag)) stack.push_back({node, true});
    for (unsigned i = element.children.length; i-- > 0;) {
      stack.push_back({static_cast<const GumboNode*>(element.children.data[i]), false});
    }
  }
  return result;
}

}  // namespace rag::ingest_internal
