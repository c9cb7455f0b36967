// Near-duplicate passages by their words: the same paragraph stored twice (two copies of a file
// in different collections, a document and its revised version, boilerplate repeated in every
// report) should fill one slot of the answer's passages, not several.
//
// A passage is reduced to the set of hashes of its word 4-grams (WordTokens' lower-cased words);
// two passages are near-duplicates when the Jaccard similarity of those sets reaches a threshold.
// Neighbouring chunks of one text, which share their overlap (50 of 200 words), stay well below
// it (about 0.15).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace rag {

class TextShingles {
 public:
  explicit TextShingles(std::string_view text);
  // |A & B| / |A | B| (1 for two texts of fewer than four words with the same words, 0 when
  // only one of them has words).
  double Jaccard(const TextShingles& other) const;

 private:
  std::vector<uint64_t> hashes_;  // sorted, unique
};

// The threshold Retrieve uses: at least this share of the two passages' 4-grams in common.
inline constexpr double kNearDuplicateJaccard = 0.8;

}  // namespace rag
