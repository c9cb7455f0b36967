// The KV block manager: allocation, and prefix caching (hash chains verified by tokens and
// parent block, reference counts, LRU eviction, the last-token rule). Block size 4 throughout.
#include "engine/kv_block_manager.h"

#include <gtest/gtest.h>

#include <set>

namespace rag {
namespace {

std::vector<int32_t> Range(int n, int base) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(base + i);
  return p;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Gives seq blocks for all of `tokens` and registers them as computed, like one finished step.
void Compute(KvBlockManager& m, int64_t seq, const std::vector<int32_t>& tokens) {
  ASSERT_TRUE(m.Reserve(seq, static_cast<int>(tokens.size())));
  m.MarkComputed(seq, tokens, static_cast<int>(tokens.size()));
}

std::vector<int32_t> Head(const std::vector<int32_t>& table, size_t n) {
  return std::vector<int32_t>(table.begin(), table.begin() + static_cast<long>(n));
}

TEST(KvBlockManager, ReservesGrowsAndReleases) {
  KvBlockManager m(8, 4);
  EXPECT_TRUE(m.Reserve(1, 5));  // 2 blocks
  EXPECT_EQ(m.Table(1).size(), 2u);
  EXPECT_EQ(m.num_free(), 6);
  EXPECT_TRUE(m.Reserve(1, 8));  // still 2 blocks
  EXPECT_EQ(m.num_free(), 6);
  EXPECT_TRUE(m.Reserve(1, 9));  // 3 blocks
  EXPECT_FALSE(m.Reserve(2, 100));  // needs 25: refused, nothing taken
  EXPECT_EQ(m.num_free(), 5);
  EXPECT_TRUE(m.Table(2).empty());
  std::set<int32_t> ids(m.Table(1).begin(), m.Table(1).end());
  EXPECT_EQ(ids.size(), 3u);  // distinct blocks
  m.Release(1);
  EXPECT_EQ(m.num_free(), 8);
  m.Release(1);  // no-op
  EXPECT_EQ(m.num_free(), 8);
  EXPECT_EQ(m.num_cached(), 0);  // nothing was marked computed
}

TEST(KvBlockManager, SharesComputedFullBlocksWithReferenceCounts) {
  KvBlockManager m(8, 4);
  const std::vector<int32_t> a = Range(10, 100);  // 2 full blocks + 2 tokens
  Compute(m, 1, a);
  EXPECT_EQ(m.num_cached(), 2);  // the partial third block is not registered

  const std::vector<int32_t> b = Concat(Range(8, 100), {7, 7, 7});
  EXPECT_EQ(m.MatchPrefix(2, b), 8);
  EXPECT_EQ(m.Table(2), Head(m.Table(1), 2));
  for (int32_t block : m.Table(2)) EXPECT_EQ(m.RefCount(block), 2);
  EXPECT_EQ(m.num_free(), 5);  // sharing took no block
  ASSERT_TRUE(m.Reserve(2, 11));
  EXPECT_NE(m.Table(2)[2], m.Table(1)[2]);  // the block it writes into is its own
  EXPECT_EQ(m.num_free(), 4);

  const std::vector<int32_t> shared = Head(m.Table(1), 2);
  m.Release(1);  // the shared blocks stay with seq 2; seq 1's partial block is free
  for (int32_t block : shared) EXPECT_EQ(m.RefCount(block), 1);
  EXPECT_EQ(m.num_free(), 5);
  EXPECT_EQ(m.num_evictable(), 0);
  m.Release(2);
  EXPECT_EQ(m.num_free(), 8);
  EXPECT_EQ(m.num_evictable(), 2);  // the computed prefix stays findable
  EXPECT_EQ(m.MatchPrefix(3, a), 8);
}

TEST(KvBlockManager, OnlyComputedFullBlocksAreFound) {
  KvBlockManager m(8, 4);
  const std::vector<int32_t> a = Range(12, 100);
  ASSERT_TRUE(m.Reserve(1, 12));
  EXPECT_EQ(m.MatchPrefix(2, a), 0);  // reserved, not computed
  m.MarkComputed(1, a, 7);            // 1 full block + 3 tokens of the second
  EXPECT_EQ(m.num_cached(), 1);
  EXPECT_EQ(m.MatchPrefix(2, a), 4);
  m.Release(2);
  m.MarkComputed(1, a, 12);
  EXPECT_EQ(m.num_cached(), 3);
  EXPECT_EQ(m.MatchPrefix(3, Concat(a, {1})), 12);
}

TEST(KvBlockManager, LastTokenRuleKeepsTheWrittenBlockPrivate) {
  KvBlockManager m(8, 4);
  const std::vector<int32_t> a = Range(8, 100);
  Compute(m, 1, a);
  // The whole prompt is cached, but its last token must be computed: the last block is not
  // shared (recomputed whole), so nothing the sequence writes is shared.
  EXPECT_EQ(m.MatchPrefix(2, a), 4);
  EXPECT_EQ(m.MatchPrefix(3, Concat(a, {5})), 8);
  EXPECT_EQ(m.MatchPrefix(4, Range(4, 100)), 0);
  EXPECT_EQ(m.MatchPrefix(5, Range(5, 100)), 4);
  EXPECT_EQ(m.MatchPrefix(6, {100}), 0);
}

// Scopes (one per API key in the server): a prefix computed in one scope is found only in that
// scope, and the scope a sequence matched in is the one its own blocks are registered in.
TEST(KvBlockManager, PrefixesAreSharedOnlyWithinAScope) {
  KvBlockManager m(32, 4);
  const std::vector<int32_t> a = Range(9, 10);  // two full blocks and one token
  EXPECT_EQ(m.MatchPrefix(1, a, /*scope=*/7), 0);
  Compute(m, 1, a);                              // registered in scope 7
  EXPECT_EQ(m.MatchPrefix(2, a, 7), 8);
  EXPECT_EQ(m.MatchPrefix(3, a, 8), 0);          // another key: nothing, though the tokens match
  EXPECT_EQ(m.MatchPrefix(4, a), 0);             // nor the shared scope 0
  Compute(m, 3, a);                              // scope 8 computes its own copy
  EXPECT_EQ(m.MatchPrefix(5, a, 8), 8);
  EXPECT_NE(m.Table(5)[0], m.Table(2)[0]);       // ... in blocks of its own
  EXPECT_EQ(m.Table(5)[0], m.Table(3)[0]);
  EXPECT_EQ(m.Table(2)[0], m.Table(1)[0]);
}

TEST(KvBlockManager, TheSameBlockAfterADifferentPrefixDoesNotMatch) {
  KvBlockManager m(16, 4);
  const std::vector<int32_t> x = Range(4, 100), y = Range(4, 200), z = Range(4, 300);
  Compute(m, 1, Concat(x, z));  // registers x, then z after x
  Compute(m, 2, Concat(y, x));  // registers y, then x after y (same tokens as the root x)
  m.Release(1);
  m.Release(2);
  EXPECT_EQ(m.num_cached(), 4);
  EXPECT_EQ(m.MatchPrefix(3, Concat(Concat(y, z), {1})), 4);  // z was computed after x, not y
  EXPECT_EQ(m.MatchPrefix(4, Concat(Concat(x, z), {1})), 8);
  EXPECT_EQ(m.MatchPrefix(5, Concat(Concat(y, x), {1})), 8);
  EXPECT_NE(m.Table(4)[0], m.Table(5)[1]);  // x as a root and x after y are different blocks
  EXPECT_EQ(m.MatchPrefix(6, Concat(z, {1})), 0);
  EXPECT_EQ(m.MatchPrefix(7, Concat(Range(4, 101), {1})), 0);
}

TEST(KvBlockManager, EvictsTheLeastRecentlyUsedBlocksDeepestFirst) {
  KvBlockManager m(6, 4);
  const std::vector<int32_t> p = Range(8, 100), q = Range(8, 200);
  Compute(m, 1, p);
  m.Release(1);
  Compute(m, 2, q);
  m.Release(2);
  EXPECT_EQ(m.num_evictable(), 4);
  EXPECT_EQ(m.num_free(), 6);
  // Touch p: it becomes the most recently used, so q goes first.
  EXPECT_EQ(m.MatchPrefix(3, Concat(p, {1})), 8);
  m.Release(3);
  // 3 blocks: 2 wiped ones, then the LRU evictable one, q's second (its first outlives it).
  ASSERT_TRUE(m.Reserve(4, 12));
  EXPECT_EQ(m.num_evictable(), 3);
  EXPECT_EQ(m.MatchPrefix(5, Concat(q, {1})), 4);
  EXPECT_EQ(m.MatchPrefix(6, Concat(p, {1})), 8);
  m.Release(5);
  m.Release(6);
  ASSERT_TRUE(m.Reserve(4, 16));  // evicts q's first block
  EXPECT_EQ(m.MatchPrefix(7, Concat(q, {1})), 0);
  EXPECT_EQ(m.MatchPrefix(8, Concat(p, {1})), 8);
  EXPECT_FALSE(m.Reserve(9, 12));  // the blocks in use cannot be evicted
  EXPECT_TRUE(m.Table(9).empty());
  EXPECT_EQ(m.MatchPrefix(10, Concat(p, {1})), 8);
}

TEST(KvBlockManager, IdenticalPrefixesComputedAtOnceConvergeOnOneChain) {
  KvBlockManager m(8, 4);
  const std::vector<int32_t> a = Range(10, 100);
  ASSERT_TRUE(m.Reserve(1, 10));
  ASSERT_TRUE(m.Reserve(2, 10));
  EXPECT_EQ(m.num_free(), 2);
  m.MarkComputed(1, a, 10);
  m.MarkComputed(2, a, 10);
  EXPECT_EQ(Head(m.Table(2), 2), Head(m.Table(1), 2));  // seq 2 took seq 1's blocks ...
  EXPECT_NE(m.Table(2)[2], m.Table(1)[2]);             // ... but not the partial one
  EXPECT_EQ(m.num_free(), 4);                           // and its copies were freed
  EXPECT_EQ(m.RefCount(m.Table(1)[1]), 2);
  // A block computed after the converged chain extends it.
  const std::vector<int32_t> longer = Concat(a, {1, 2, 3});
  ASSERT_TRUE(m.Reserve(2, 13));
  m.MarkComputed(2, longer, 13);
  m.Release(1);
  m.Release(2);
  EXPECT_EQ(m.MatchPrefix(3, Concat(longer, {4})), 12);
}

TEST(KvBlockManager, ResetForgetsEveryPrefixAndAllBlocksComeBack) {
  KvBlockManager m(8, 4);
  Compute(m, 1, Range(9, 100));
  Compute(m, 2, Range(8, 200));
  m.Release(2);
  EXPECT_EQ(m.num_cached(), 4);
  m.ResetPrefixCache();
  EXPECT_EQ(m.num_cached(), 0);
  EXPECT_EQ(m.num_evictable(), 0);
  EXPECT_EQ(m.num_free(), 5);  // seq 1 keeps its 3 blocks
  EXPECT_EQ(m.MatchPrefix(3, Range(9, 100)), 0);
  m.Release(1);
  EXPECT_EQ(m.num_free(), 8);
  EXPECT_EQ(m.num_evictable(), 0);  // unregistered blocks go straight to the free list
  // And the cache fills again.
  Compute(m, 4, Range(9, 100));
  EXPECT_EQ(m.MatchPrefix(5, Range(9, 100)), 8);
}

}  // namespace
}  // namespace rag
