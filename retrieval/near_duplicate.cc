#include "retrieval/near_duplicate.h"

#include <algorithm>
#include <string>

#include "retrieval/text_terms.h"

namespace rag {
namespace {

constexpr size_t kShingleWords = 4;

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

TextShingles::TextShingles(std::string_view text) {
  const std::vector<std::string> words = WordTokens(text);
  const size_t n = words.size() < kShingleWords ? (words.empty() ? 0 : 1)
                                                 : words.size() - kShingleWords + 1;
  hashes_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t h = 1469598103934665603ull;
    for (size_t j = i; j < std::min(words.size(), i + kShingleWords); ++j) {
      h = Fnv1a(h, words[j]);
      h = Fnv1a(h, " ");  // word boundary: "ab c" differs from "a bc"
    }
    hashes_.push_back(h);
  }
  std::sort(hashes_.begin(), hashes_.end());
  hashes_.erase(std::unique(hashes_.begin(), hashes_.end()), hashes_.end());
}

double TextShingles::Jaccard(const TextShingles& other) const {
  if (hashes_.empty() || other.hashes_.empty()) return hashes_.empty() && other.hashes_.empty() ? 1.0 : 0.0;
  size_t common = 0;
  for (size_t i = 0, j = 0; i < hashes_.size() && j < other.hashes_.size();) {
    if (hashes_[i] == other.hashes_[j]) {
      ++common;
      ++i;
      ++j;
    } else if (hashes_[i] < other.hashes_[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return static_cast<double>(common) /
         static_cast<double>(hashes_.size() + other.hashes_.size() - common);
}

}  // namespace rag
