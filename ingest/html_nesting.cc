#include "ingest/html_nesting.h"

#include <algorithm>
#include <array>
#include <vector>

namespace rag::ingest_internal {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsNameChar(char c) {
  return IsAlpha(c) || (c >= '0' && c <= '9') || c == '-' || c == ':' || c == '_';
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

template <size_t N>
bool IsOneOf(std::string_view name, const std::array<std::string_view, N>& names) {
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view n) { return EqualsIgnoreCase(name, n); });
}

// Elements that never hold children, or whose end tag may be left out (the parser closes them
// implicitly): they do not deepen the tree in a way we can track, so they are not counted.
constexpr std::array<std::string_view, 41> kUncounted = {
    "area",    "base",     "br",     "col",   "embed", "hr",       "img",     "input",    "link",
    "meta",    "param",    "source", "track", "wbr",   "keygen",   "frame",   "basefont", "bgsound",
    "command", "image",    "p",      "li",    "dt",    "dd",       "tr",      "td",       "th",
    "option",  "optgroup", "thead",  "tbody", "tfoot", "colgroup", "caption", "rb",       "rt",
    "rtc",     "rp",       "html",   "head",  "body"};

// Elements whose content is raw text up to their end tag.
constexpr std::array<std::string_view, 9> kRawText = {
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"};

constexpr std::array<std::string_view, 2> kForeign = {"svg", "math"};

// Position of the first "</name" at or after `from` (name compared without case), or npos.
size_t FindEndTag(std::string_view html, size_t from, std::string_view name) {
  while (true) {
    const size_t lt = html.find("</", from);
    if (lt == std::string_view::npos) return lt;
    const size_t b = lt + 2;
    if (b + name.size() <= html.size() && EqualsIgnoreCase(html.substr(b, name.size()), name) &&
        (b + name.size() == html.size() || !IsNameChar(html[b + name.size()]))) {
      return lt;
    }
    from = lt + 2;
  }
}

struct OpenElement {
  std::string_view name;
  bool kept;
};

}  // namespace

std::optional<std::string> LimitHtmlNesting(std::string_view html, size_t max_depth) {
  std::vector<OpenElement> open;
  size_t foreign_open = 0;
  std::optional<std::string> out;
  size_t copied = 0;  // html[0, copied) has been copied to *out (once out exists)
  const auto remove = [&](size_t begin, size_t end) {
    if (!out) {
      out.emplace();
      out->reserve(html.size());
    }
    out->append(html.substr(copied, begin - copied));
    copied = end;
  };

  const size_t n = html.size();
  size_t i = 0;
  while (i < n) {
    const size_t lt = html.find('<', i);
    if (lt == std::string_view::npos || lt + 1 >= n) break;
    i = lt + 1;
    if (html.compare(lt, 4, "<!--") == 0) {
      const size_t end = html.find("-->", lt + 4);
      i = end == std::string_view::npos ? n : end + 3;
      continue;
    }
    if (html[i] == '!' || html[i] == '?') {
      const size_t end = html.find('>', i);
      i = end == std::string_view::npos ? n : end + 1;
      continue;
    }
    const bool closing = html[i] == '/';
    const size_t name_begin = closing ? i + 1 : i;
    if (name_begin >= n || !IsAlpha(html[name_begin])) continue;  // a literal '<'
    size_t name_end = name_begin;
    while (name_end < n && IsNameChar(html[name_end])) ++name_end;
    const std::string_view name = html.substr(name_begin, name_end - name_begin);
    size_t j = name_end;
    char quote = 0;
    for (; j < n; ++j) {
      const char c = html[j];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>') {
        break;
      }
    }
    const size_t tag_end = j < n ? j + 1 : n;
    const bool self_closing = j < n && j > name_end && html[j - 1] == '/';
    i = tag_end;
    const bool counted = !IsOneOf(name, kUncounted);

    if (closing) {
      if (!counted) continue;
      // A stray or misnested end tag further down than this is left to gumbo.
      const size_t lowest = open.size() > 16 ? open.size() - 16 : 0;
      for (size_t k = open.size(); k-- > lowest;) {
        if (!EqualsIgnoreCase(open[k].name, name)) continue;
        const bool kept = open[k].kept;
        for (size_t m = k; m < open.size(); ++m) {
          if (IsOneOf(open[m].name, kForeign)) --foreign_open;
        }
        open.resize(k);
        if (!kept) remove(lt, tag_end);
        break;
      }
      continue;
    }
    if (IsOneOf(name, kRawText)) {
      const size_t end = FindEndTag(html, i, name);
      i = end == std::string_view::npos ? n : end;
      continue;
    }
    if (EqualsIgnoreCase(name, "plaintext")) break;
    if (!counted) continue;
    const bool foreign = IsOneOf(name, kForeign);
    if (self_closing && (foreign || foreign_open > 0)) continue;
    const bool kept = open.size() < max_depth;
    open.push_back(OpenElement{name, kept});
    if (foreign) ++foreign_open;
    if (!kept) remove(lt, tag_end);
  }
  if (out) out->append(html.substr(copied));
  return out;
}

}  // namespace rag::ingest_internal
