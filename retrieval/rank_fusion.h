// Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each ranking gives an item
// at 0-based rank r the score 1 / (k + r + 1); an item's fused score is the sum over the rankings
// it appears in. Scores and ranks only: BM25 scores and cosine similarities are not comparable,
// ranks are. k = 60 is the paper's constant (it damps the weight of the very first ranks).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace rag {

inline constexpr double kRrfK = 60.0;

// The items of all rankings, best first, with their fused scores; ties keep the order of first
// appearance (ranking 0 first). Duplicates within one ranking count once (their best rank).
// weights[i], when given, multiplies ranking i's contributions (weighted RRF; missing: 1).
std::vector<std::pair<int64_t, double>> ReciprocalRankFusion(
    const std::vector<std::vector<int64_t>>& rankings, double k = kRrfK,
    const std::vector<double>& weights = {});

}  // namespace rag
