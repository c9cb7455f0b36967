#include "engine/kv_block_manager.h"

#include "common/check.h"

namespace rag {

KvBlockManager::KvBlockManager(int num_blocks, int block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  RAG_CHECK(num_blocks > 0 && block_size > 0);
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int i = num_blocks - 1; i >= 0; --i) free_.push_back(i);
}

int KvBlockManager::Shortfall(int64_t seq, int tokens) const {
  auto it = tables_.find(seq);
  const int have = it == tables_.end() ? 0 : static_cast<int>(it->second.size());
  const int need = BlocksFor(tokens);
  return need > have ? need - have : 0;
}

bool KvBlockManager::Reserve(int64_t seq, int tokens) {
  const int extra = Shortfall(seq, tokens);
  if (extra > num_free()) return false;
  std::vector<int32_t>& table = tables_[seq];
  for (int i = 0; i < extra; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockManager::Release(int64_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (auto b = it->second.rbegin(); b != it->second.rend(); ++b) free_.push_back(*b);
  tables_.erase(it);
}

const std::vector<int32_t>& KvBlockManager::Table(int64_t seq) const {
  static const std::vector<int32_t> kEmpty;
  auto it = tables_.find(seq);
  return it == tables_.end() ? kEmpty : it->second;
}

}  // namespace rag
