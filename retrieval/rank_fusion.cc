#include "retrieval/rank_fusion.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace rag {

std::vector<std::pair<int64_t, double>> ReciprocalRankFusion(
    const std::vector<std::vector<int64_t>>& rankings, double k, const std::vector<double>& weights) {
  std::unordered_map<int64_t, size_t> slot;  // item -> index in fused
  std::vector<std::pair<int64_t, double>> fused;
  for (size_t i = 0; i < rankings.size(); ++i) {
    const std::vector<int64_t>& ranking = rankings[i];
    const double weight = i < weights.size() ? weights[i] : 1.0;
    std::unordered_set<int64_t> seen;
    for (size_t r = 0; r < ranking.size(); ++r) {
      const int64_t id = ranking[r];
      if (!seen.insert(id).second) continue;
      auto [it, inserted] = slot.try_emplace(id, fused.size());
      if (inserted) fused.emplace_back(id, 0.0);
      fused[it->second].second += weight / (k + static_cast<double>(r) + 1.0);
    }
  }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return fused;
}

}  // namespace rag
