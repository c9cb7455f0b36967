#include "ingest/text_builder.h"

#include <algorithm>

#include "ingest/text_util.h"

namespace rag::ingest_internal {
namespace {

bool IsNbspAt(std::string_view s, size_t i) {
  return s[i] == '\xC2' && i + 1 < s.size() && s[i + 1] == '\xA0';
}

}  // namespace

void TextBuilder::Flush() {
  if (!text_.empty()) {
    text_.append(static_cast<size_t>(pending_newlines_), '\n');
    text_ += pending_space_;
  }
  pending_newlines_ = 0;
  pending_space_.clear();
  if (in_heading_ && heading_start_ == std::string::npos) heading_start_ = text_.size();
}

void TextBuilder::AppendText(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const bool nbsp = IsNbspAt(s, i);
    if (nbsp || IsAsciiSpace(s[i])) {
      if (pending_newlines_ == 0 && pending_space_.empty() && !text_.empty()) pending_space_ = " ";
      i += nbsp ? 2 : 1;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && !IsAsciiSpace(s[j]) && !IsNbspAt(s, j)) ++j;
    Flush();
    text_.append(s.data() + i, j - i);
    i = j;
  }
}

void TextBuilder::AppendPreformatted(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') {
      if (!text_.empty()) pending_newlines_ = std::min(2, pending_newlines_ + 1);
      pending_space_.clear();  // trailing spaces of the line
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t') {
      pending_space_ += c;
      ++i;
      continue;
    }
    if (IsAsciiSpace(c)) {  // \r, \v, \f
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && !IsAsciiSpace(s[j])) ++j;
    Flush();
    text_.append(s.data() + i, j - i);
    i = j;
  }
}

void TextBuilder::CellSeparator() {
  if (!text_.empty() && pending_newlines_ == 0) pending_space_ = "\t";
}

void TextBuilder::LineBreak() {
  if (!text_.empty()) pending_newlines_ = std::max(pending_newlines_, 1);
  pending_space_.clear();
}

void TextBuilder::ParagraphBreak() {
  if (!text_.empty()) pending_newlines_ = 2;
  pending_space_.clear();
}

void TextBuilder::BeginHeading() {
  if (in_heading_) return;
  in_heading_ = true;
  heading_start_ = std::string::npos;
}

std::string TextBuilder::EndHeading() {
  if (!in_heading_) return "";
  in_heading_ = false;
  if (heading_start_ == std::string::npos) return "";
  std::string title = MakeTitle(std::string_view(text_).substr(heading_start_));
  if (!title.empty()) sections_.push_back(SectionStart{1, heading_start_, title});
  heading_start_ = std::string::npos;
  return title;
}

}  // namespace rag::ingest_internal
