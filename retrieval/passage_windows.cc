#include "retrieval/passage_windows.h"

#include <algorithm>
#include <sstream>

namespace rag {

std::vector<std::string> PassageWindows(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(std::move(w));
  const int64_t n = static_cast<int64_t>(words.size());
  if (n == 0) return {};
  int64_t stride = kWindowStride;
  // Windows start at 0, stride, ... while the previous one ends before the last word.
  auto count = [&](int64_t s) { return n <= kWindowWords ? 1 : (n - kWindowWords + s - 1) / s + 1; };
  if (count(stride) > kWindowSlots) stride = (n - kWindowWords + kWindowSlots - 2) / (kWindowSlots - 1);
  const int64_t width = std::max<int64_t>(kWindowWords, stride);  // no gaps on huge texts
  std::vector<std::string> windows;
  for (int64_t start = 0;; start += stride) {
    const int64_t end = std::min(n, start + width);
    std::string w;
    for (int64_t i = start; i < end; ++i) {
      if (i > start) w += ' ';
      w += words[static_cast<size_t>(i)];
    }
    windows.push_back(std::move(w));
    if (end == n) break;
  }
  return windows;
}

}  // namespace rag
