#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "engine/kv_block_manager.h"

namespace rag {
namespace {

std::vector<int32_t> Prompt(int n, int base = 100) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(base + i);
  return p;
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
}

// Drives the scheduler like the engine: each sampling step appends token = 1000 + step count.
struct Driver {
  KvBlockManager blocks;
  Scheduler scheduler;
  std::map<int64_t, int> generated;
  std::map<int64_t, int> max_tokens;
  int steps = 0;

  Driver(int num_blocks, int block_size, SchedulerOptions opts)
      : blocks(num_blocks, block_size), scheduler(&blocks, opts) {}

  void Run() {
    while (!scheduler.empty()) {
      auto plan = scheduler.Schedule();
      ASSERT_FALSE(plan.empty()) << "stalled with work left";
      ++steps;
      int fed = 0;
      for (const auto& s : plan) {
        fed += static_cast<int>(s.tokens.size());
        // The block table covers every fed position.
        ASSERT_GE(static_cast<int>(blocks.Table(s.id).size()) * blocks.block_size(),
                  s.start_pos + static_cast<int>(s.tokens.size()));
        // The fed tokens are the sequence's own tokens at those positions.
        const auto& all = scheduler.Tokens(s.id);
        for (size_t k = 0; k < s.tokens.size(); ++k) ASSERT_EQ(s.tokens[k], all[s.start_pos + k]);
        if (!s.samples) continue;
        if (++generated[s.id] >= max_tokens[s.id]) {
          scheduler.Remove(s.id);
        } else {
          scheduler.Append(s.id, 1000 + generated[s.id]);
        }
      }
      ASSERT_LE(fed, 64);
    }
  }
};

TEST(Scheduler, ChunkedPrefillThenDecodeForSeveralSequences) {
  SchedulerOptions opts;
  opts.max_batch_tokens = 64;
  opts.prefill_chunk = 16;
  Driver d(64, 4, opts);
  for (int64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(d.scheduler.Add(id, Prompt(40)).ok());
    d.max_tokens[id] = 5;
  }
  auto first = d.scheduler.Schedule();
  ASSERT_EQ(first.size(), 3u);  // 16 + 16 + 16 tokens fit the budget of 64
  for (const auto& s : first) {
    EXPECT_EQ(s.start_pos, 0);
    EXPECT_EQ(s.tokens.size(), 16u);
    EXPECT_FALSE(s.samples);
  }
  d.Run();
  for (int64_t id = 1; id <= 3; ++id) EXPECT_EQ(d.generated[id], 5);
  EXPECT_EQ(d.blocks.num_free(), 64);
}

TEST(Scheduler, PreemptsAndRecomputesWhenBlocksRunOut) {
  SchedulerOptions opts;
  opts.max_batch_tokens = 64;
  opts.prefill_chunk = 64;
  // 6 blocks of 4 = 24 slots: two sequences of 10 tokens + 8 generated each cannot both fit.
  Driver d(6, 4, opts);
  for (int64_t id = 1; id <= 2; ++id) {
    ASSERT_TRUE(d.scheduler.Add(id, Prompt(10, 100 * static_cast<int>(id))).ok());
    d.max_tokens[id] = 8;
  }
  d.Run();
  EXPECT_EQ(d.generated[1], 8);
  EXPECT_EQ(d.generated[2], 8);
  EXPECT_GT(d.scheduler.preemptions(), 0);
  EXPECT_EQ(d.blocks.num_free(), 6);
}

TEST(Scheduler, RejectsWhatCanNeverFit) {
  KvBlockManager blocks(2, 4);
  Scheduler s(&blocks, {});
  EXPECT_FALSE(s.Add(1, {}).ok());
  EXPECT_EQ(s.Add(1, Prompt(8)).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(s.Add(2, Prompt(7)).ok());
  EXPECT_EQ(s.Add(2, Prompt(3)).code(), StatusCode::kAlreadyExists);
}

TEST(Scheduler, RemovingAWaitingSequenceFreesNothingTwice) {
  KvBlockManager blocks(4, 4);
  Scheduler s(&blocks, {});
  ASSERT_TRUE(s.Add(1, Prompt(5)).ok());
  ASSERT_TRUE(s.Add(2, Prompt(5)).ok());
  s.Remove(2);
  EXPECT_EQ(s.num_waiting(), 1u);
  auto plan = s.Schedule();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].id, 1);
  s.Remove(1);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(blocks.num_free(), 4);
}

}  // namespace
}  // namespace rag
