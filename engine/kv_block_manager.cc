#include "engine/kv_block_manager.h"

#include <algorithm>

#include "common/check.h"

namespace rag {
namespace {

constexpr uint64_t kRootHash = 0x6a09e667f3bcc908ULL;  // the "parent" of a sequence's first block

// splitmix64's finalizer: a bijection in which every input bit flips about half the output bits.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The "parent" hash of a scope's first blocks.
uint64_t RootHash(uint64_t scope) { return scope == 0 ? kRootHash : Mix(kRootHash ^ Mix(scope)); }

// The chain hash of a block: depends on every token before it through `parent`.
uint64_t HashBlock(uint64_t parent, const int32_t* tokens, int n) {
  uint64_t h = Mix(parent);
  for (int i = 0; i < n; ++i) h = Mix(h + 0x9e3779b97f4a7c15ULL + static_cast<uint32_t>(tokens[i]));
  return h;
}

}  // namespace

KvBlockManager::KvBlockManager(int num_blocks, int block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  RAG_CHECK(num_blocks > 0 && block_size > 0);
  blocks_.resize(static_cast<size_t>(num_blocks));
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int i = num_blocks - 1; i >= 0; --i) free_.push_back(i);
}

int KvBlockManager::Shortfall(int64_t seq, int tokens) const {
  const int have = static_cast<int>(Table(seq).size());
  const int need = BlocksFor(tokens);
  return need > have ? need - have : 0;
}

int32_t KvBlockManager::Allocate() {
  if (free_.empty()) {
    RAG_CHECK(!evictable_.empty());
    Unregister(evictable_.front());  // moves it to free_
  }
  const int32_t b = free_.back();
  free_.pop_back();
  Block& block = blocks_[static_cast<size_t>(b)];
  RAG_CHECK(block.ref == 0 && !block.registered);
  ++block.generation;  // children registered under its previous contents no longer match
  block.ref = 1;
  return b;
}

void KvBlockManager::Unref(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  RAG_CHECK(block.ref > 0);
  if (--block.ref > 0) return;
  if (block.registered) {
    block.lru = evictable_.insert(evictable_.end(), b);
  } else {
    free_.push_back(b);
  }
}

void KvBlockManager::Unregister(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (!block.registered) return;
  index_.erase(block.hash);
  block.registered = false;
  block.tokens.clear();
  if (block.ref == 0) {
    evictable_.erase(block.lru);
    free_.push_back(b);
  }
}

bool KvBlockManager::Holds(int32_t candidate, int32_t parent, const int32_t* tokens,
                           uint64_t scope) const {
  const Block& c = blocks_[static_cast<size_t>(candidate)];
  if (c.parent != parent) return false;
  if (parent < 0 && c.scope != scope) return false;
  if (parent >= 0 && c.parent_generation != blocks_[static_cast<size_t>(parent)].generation) return false;
  return std::equal(c.tokens.begin(), c.tokens.end(), tokens);
}

bool KvBlockManager::Reserve(int64_t seq, int tokens) {
  const int extra = Shortfall(seq, tokens);
  if (extra > num_free()) return false;
  std::vector<int32_t>& table = sequences_[seq].table;
  for (int i = 0; i < extra; ++i) table.push_back(Allocate());
  return true;
}

int KvBlockManager::MatchPrefix(int64_t seq, const std::vector<int32_t>& tokens, uint64_t scope) {
  RAG_CHECK(!tokens.empty());
  RAG_CHECK(Table(seq).empty());
  const int max_blocks = (static_cast<int>(tokens.size()) - 1) / block_size_;  // last-token rule
  SequenceBlocks s;
  s.scope = scope;
  uint64_t hash = RootHash(scope);
  for (int i = 0; i < max_blocks; ++i) {
    const int32_t* span = tokens.data() + static_cast<size_t>(i) * block_size_;
    hash = HashBlock(hash, span, block_size_);
    auto found = index_.find(hash);
    if (found == index_.end()) break;
    if (!Holds(found->second, s.table.empty() ? -1 : s.table.back(), span, scope)) break;
    s.table.push_back(found->second);
    s.hashes.push_back(hash);
  }
  if (s.table.empty()) {
    sequences_[seq].scope = scope;  // its blocks, computed later, are registered in its scope
    return 0;
  }
  for (int32_t b : s.table) {
    Block& block = blocks_[static_cast<size_t>(b)];
    if (block.ref++ == 0) evictable_.erase(block.lru);
  }
  const int matched = static_cast<int>(s.table.size()) * block_size_;
  sequences_[seq] = std::move(s);
  return matched;
}

void KvBlockManager::MarkComputed(int64_t seq, const std::vector<int32_t>& tokens, int computed) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  SequenceBlocks& s = it->second;
  RAG_CHECK(computed >= 0 && static_cast<size_t>(computed) <= tokens.size());
  RAG_CHECK(BlocksFor(computed) <= static_cast<int>(s.table.size()));
  const size_t full = static_cast<size_t>(computed / block_size_);
  for (size_t i = s.hashes.size(); i < full; ++i) {
    const int32_t* span = tokens.data() + i * static_cast<size_t>(block_size_);
    const uint64_t hash = HashBlock(i == 0 ? RootHash(s.scope) : s.hashes[i - 1], span, block_size_);
    s.hashes.push_back(hash);
    const int32_t parent = i == 0 ? -1 : s.table[i - 1];
    int32_t& mine = s.table[i];
    RAG_CHECK(!blocks_[static_cast<size_t>(mine)].registered);
    auto found = index_.find(hash);
    if (found != index_.end()) {
      const int32_t other = found->second;
      if (Holds(other, parent, span, s.scope)) {
        Block& o = blocks_[static_cast<size_t>(other)];
        if (o.ref++ == 0) evictable_.erase(o.lru);
        Unref(mine);  // its only holder was seq: back to the free list
        mine = other;
        continue;
      }
      // A stale entry (its parent was evicted and reused) or a hash collision: the newest wins.
      Unregister(other);
    }
    Block& block = blocks_[static_cast<size_t>(mine)];
    block.registered = true;
    block.hash = hash;
    block.parent = parent;
    block.parent_generation = parent < 0 ? 0 : blocks_[static_cast<size_t>(parent)].generation;
    block.tokens.assign(span, span + block_size_);
    block.scope = s.scope;
    index_[hash] = mine;
  }
}

void KvBlockManager::Release(int64_t seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  // Last block first: of one sequence's blocks the deepest is evicted first and the shared
  // roots last; on the free list the first block ends on top and is reused first.
  for (auto b = it->second.table.rbegin(); b != it->second.table.rend(); ++b) Unref(*b);
  sequences_.erase(it);
}

void KvBlockManager::ResetPrefixCache() {
  for (int32_t b = 0; b < num_blocks_; ++b) Unregister(b);
}

const std::vector<int32_t>& KvBlockManager::Table(int64_t seq) const {
  static const std::vector<int32_t> kEmpty;
  auto it = sequences_.find(seq);
  return it == sequences_.end() ? kEmpty : it->second.table;
}

}  // namespace rag
