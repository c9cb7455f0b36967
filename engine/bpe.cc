#include "engine/bpe.h"

#include <algorithm>
#include <queue>

namespace rag {
namespace {

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer: spreads the pair keys over the table
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

BpeModel::BpeModel(BpeModel&& other) noexcept
    : token_bytes_(std::move(other.token_bytes_)),
      merge_table_(std::move(other.merge_table_)),
      merge_mask_(other.merge_mask_),
      ignore_merges_(other.ignore_merges_) {
  // Views into the moved strings stay valid: std::vector's move keeps the elements in place.
  bytes_to_id_ = std::move(other.bytes_to_id_);
  std::copy(std::begin(other.byte_ids_), std::end(other.byte_ids_), byte_ids_);
}

StatusOr<BpeModel> BpeModel::Create(std::vector<std::string> token_bytes,
                                    const std::vector<std::pair<int32_t, int32_t>>& merges,
                                    bool ignore_merges, const std::string& what,
                                   bool allow_missing_bytes) {
  BpeModel m;
  m.token_bytes_ = std::move(token_bytes);
  m.ignore_merges_ = ignore_merges;
  m.bytes_to_id_.reserve(m.token_bytes_.size());
  for (size_t id = 0; id < m.token_bytes_.size(); ++id) {
    if (m.token_bytes_[id].empty()) continue;
    m.bytes_to_id_.emplace(m.token_bytes_[id], static_cast<int32_t>(id));  // first id wins
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const int32_t id = m.TokenId(std::string_view(&c, 1));
    if (id < 0 && !allow_missing_bytes) {
      return Unsupported(what + ": model.vocab has no token for byte " + std::to_string(b) +
                         " (not a byte-level BPE vocabulary)");
    }
    m.byte_ids_[b] = id;
  }
  size_t cap = 16;
  while (cap < merges.size() * 2) cap <<= 1;
  m.merge_table_.assign(cap, MergeEntry{kEmptyKey, 0, 0});
  m.merge_mask_ = cap - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [left, right] = merges[rank];
    const int32_t merged = m.TokenId(m.token_bytes_[left] + m.token_bytes_[right]);
    if (merged < 0) {
      return InvalidArgument(what + ": model.merges[" + std::to_string(rank) +
                             "]: the merged token is not in model.vocab");
    }
    const uint64_t key = PairKey(left, right);
    for (uint64_t slot = Mix(key) & m.merge_mask_;; slot = (slot + 1) & m.merge_mask_) {
      MergeEntry& e = m.merge_table_[slot];
      if (e.key == key) break;  // repeated merge: the first (lowest) rank counts
      if (e.key == kEmptyKey) {
        e = MergeEntry{key, static_cast<int32_t>(rank), merged};
        break;
      }
    }
  }
  return m;
}

int32_t BpeModel::TokenId(std::string_view bytes) const {
  const auto it = bytes_to_id_.find(bytes);
  return it == bytes_to_id_.end() ? -1 : it->second;
}

const BpeModel::MergeEntry* BpeModel::FindMerge(int32_t left, int32_t right) const {
  const uint64_t key = PairKey(left, right);
  for (uint64_t slot = Mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    const MergeEntry& e = merge_table_[slot];
    if (e.key == key) return &e;
    if (e.key == kEmptyKey) return nullptr;
  }
}

void BpeModel::EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const int32_t id = TokenId(piece);
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  if (piece.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(piece[0])];
    if (id >= 0) ids->push_back(id);
    return;
  }
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(piece);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = ids->size();
  MergeSymbols(piece, ids);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(piece), std::vector<int32_t>(ids->begin() + start, ids->end()));
    }
  }
}

// Hugging Face's Word::merge_all: repeatedly apply the lowest-rank merge among adjacent symbols,
// the leftmost one on ties. A min-heap of candidate pairs with lazy invalidation, over a doubly
// linked list of symbols: O(n log n) in the piece length.
void BpeModel::MergeSymbols(std::string_view piece, std::vector<int32_t>* ids) const {
  // Bytes without a token (allow_missing_bytes) are dropped before merging, as Hugging Face's
  // BPE drops characters it has no symbol for when there is no unk_token.
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  for (char ch : piece) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(ch)];
    if (id >= 0) sym.push_back(id);
  }
  const int n = static_cast<int>(sym.size());
  if (n == 0) return;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                               std::move(storage));
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const MergeEntry* e = FindMerge(sym[pos], sym[next[pos]])) {
      heap.push(Candidate{e->rank, pos, sym[pos], sym[next[pos]], e->merged});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale when either symbol changed since the candidate was pushed (sym = -1: merged away).
    if (sym[c.pos] != c.left || next[c.pos] < 0 || sym[next[c.pos]] != c.right) continue;
    const int right = next[c.pos];
    sym[c.pos] = c.merged;
    sym[right] = -1;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) ids->push_back(sym[i]);
}

}  // namespace rag
