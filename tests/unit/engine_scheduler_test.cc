#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine/kv_block_manager.h"

namespace rag {
namespace {

std::vector<int32_t> Prompt(int n, int base = 100) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(base + i);
  return p;
}

// Drives the scheduler like the engine: each sampling step appends token = 1000 + step count.
// A shadow KV cache stands in for the backend: every slot records the token prefix whose key
// and value it holds, so reading a slot another prefix wrote (false sharing) or writing into a
// shared block fails the test.
struct Driver {
  KvBlockManager blocks;
  Scheduler scheduler;
  std::map<int64_t, int> generated;
  std::map<int64_t, int> max_tokens;
  std::map<int64_t, int> first_start;  // start_pos of each sequence's first step
  std::vector<std::vector<std::vector<int32_t>>> cache;  // [block][slot] -> prefix it holds
  int steps = 0;

  Driver(int num_blocks, int block_size, SchedulerOptions opts)
      : blocks(num_blocks, block_size),
        scheduler(&blocks, opts),
        cache(static_cast<size_t>(num_blocks), std::vector<std::vector<int32_t>>(static_cast<size_t>(block_size))) {}

  void Add(int64_t id, std::vector<int32_t> prompt, int max) {
    ASSERT_TRUE(scheduler.Add(id, std::move(prompt)).ok());
    max_tokens[id] = max;
  }

  // Checks and runs one planned sequence on the shadow cache.
  void Forward(const ScheduledSequence& s) {
    const auto& table = blocks.Table(s.id);
    const int bs = blocks.block_size();
    // The block table covers every fed position.
    ASSERT_GE(static_cast<int>(table.size()) * bs, s.start_pos + static_cast<int>(s.tokens.size()));
    // The fed tokens are the sequence's own tokens at those positions.
    const auto& all = scheduler.Tokens(s.id);
    for (size_t k = 0; k < s.tokens.size(); ++k) ASSERT_EQ(s.tokens[k], all[s.start_pos + k]);
    if (!first_start.count(s.id)) first_start[s.id] = s.start_pos;
    for (int p = 0; p < s.start_pos + static_cast<int>(s.tokens.size()); ++p) {
      const std::vector<int32_t> prefix(all.begin(), all.begin() + p + 1);
      auto& slot = cache[static_cast<size_t>(table[static_cast<size_t>(p / bs)])][static_cast<size_t>(p % bs)];
      if (p < s.start_pos) {
        ASSERT_EQ(slot, prefix) << "sequence " << s.id << " reads a wrong key/value at " << p;
      } else {
        ASSERT_EQ(blocks.RefCount(table[static_cast<size_t>(p / bs)]), 1) << "writes a shared block";
        slot = prefix;
      }
    }
  }

  void Run() {
    while (!scheduler.empty()) {
      auto plan = scheduler.Schedule();
      ASSERT_FALSE(plan.empty()) << "stalled with work left";
      ++steps;
      int fed = 0;
      for (const auto& s : plan) {
        fed += static_cast<int>(s.tokens.size());
        Forward(s);
        if (::testing::Test::HasFatalFailure()) return;
      }
      scheduler.StepDone();
      for (const auto& s : plan) {
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
    d.Forward(s);
  }
  d.scheduler.StepDone();
  // The three identical prompts were computed side by side; now they share one copy.
  EXPECT_EQ(d.blocks.Table(2), d.blocks.Table(1));
  EXPECT_EQ(d.blocks.Table(3), d.blocks.Table(1));
  EXPECT_EQ(d.blocks.num_free(), 60);
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

// Tokens of each sequence in a plan, by id.
std::map<int64_t, int> Fed(const std::vector<ScheduledSequence>& plan) {
  std::map<int64_t, int> fed;
  for (const auto& s : plan) fed[s.id] = static_cast<int>(s.tokens.size());
  return fed;
}

TEST(Scheduler, StepsWithDecodingSequencesKeepToMixedStepTokens) {
  SchedulerOptions opts;
  opts.max_batch_tokens = 64;
  opts.prefill_chunk = 64;
  opts.mixed_step_tokens = 20;
  Driver d(64, 4, opts);
  d.Add(1, Prompt(10, 100), 4);
  d.Add(2, Prompt(100, 200), 1);
  // Nothing decodes yet: the whole budget goes to the prompts.
  auto plan = d.scheduler.Schedule();
  EXPECT_EQ(Fed(plan), (std::map<int64_t, int>{{1, 10}, {2, 54}}));
  for (const auto& s : plan) d.Forward(s);
  d.scheduler.StepDone();
  d.scheduler.Append(1, 1001);
  // Sequence 1 decodes now: its token and 19 of the prompt, not the 63 the budget would allow.
  plan = d.scheduler.Schedule();
  EXPECT_EQ(Fed(plan), (std::map<int64_t, int>{{1, 1}, {2, 19}}));
  for (const auto& s : plan) d.Forward(s);
  d.scheduler.StepDone();
  d.scheduler.Append(1, 1002);
  d.generated[1] = 2;
  d.Run();  // and the rest runs to the end under the same rule
  EXPECT_EQ(d.generated[1], 4);
  EXPECT_EQ(d.generated[2], 1);
}

TEST(Scheduler, MixedStepTokensNeverLeavesADecodingSequenceOut) {
  SchedulerOptions opts;
  opts.max_batch_tokens = 64;
  opts.prefill_chunk = 64;
  opts.mixed_step_tokens = 2;  // fewer than the three answers being written
  Driver d(64, 4, opts);
  for (int64_t id = 1; id <= 3; ++id) d.Add(id, Prompt(8, 100 * static_cast<int>(id)), 3);
  auto plan = d.scheduler.Schedule();
  ASSERT_EQ(plan.size(), 3u);
  for (const auto& s : plan) d.Forward(s);
  d.scheduler.StepDone();
  for (int64_t id = 1; id <= 3; ++id) d.scheduler.Append(id, 1001);
  d.Add(4, Prompt(30, 400), 1);
  // Three decoding sequences, each with its token; no room left for the waiting prompt.
  plan = d.scheduler.Schedule();
  EXPECT_EQ(Fed(plan), (std::map<int64_t, int>{{1, 1}, {2, 1}, {3, 1}}));
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

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(SchedulerPrefixCache, ALaterPromptStartsAfterItsCachedPrefix) {
  SchedulerOptions opts;
  opts.prefill_chunk = 64;
  Driver d(16, 4, opts);
  d.Add(1, Prompt(10), 3);
  d.Run();
  EXPECT_EQ(d.scheduler.prefix_cache_stats().queries, 10);
  EXPECT_EQ(d.scheduler.prefix_cache_stats().hits, 0);

  d.Add(2, Concat(Prompt(9), {7, 7}), 3);  // shares 9 tokens: 2 full blocks
  auto plan = d.scheduler.Schedule();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].start_pos, 8);
  EXPECT_EQ(plan[0].tokens, (std::vector<int32_t>{108, 7, 7}));
  EXPECT_TRUE(plan[0].samples);
  EXPECT_EQ(d.scheduler.prefix_cache_stats().queries, 21);
  EXPECT_EQ(d.scheduler.prefix_cache_stats().hits, 8);
  EXPECT_DOUBLE_EQ(d.scheduler.prefix_cache_stats().hit_rate(), 8.0 / 21);
  d.scheduler.Remove(2);
  EXPECT_EQ(d.blocks.num_free(), 16);
}

TEST(SchedulerPrefixCache, AFullyCachedPromptRecomputesItsLastBlock) {
  Driver d(16, 4, {});
  d.Add(1, Prompt(8), 2);
  d.Run();
  d.Add(2, Prompt(8), 2);  // the same prompt, ending on a block boundary
  d.Add(3, Prompt(9), 2);  // one token longer: both blocks are reused
  d.Run();
  EXPECT_EQ(d.first_start[2], 4);
  EXPECT_EQ(d.first_start[3], 8);
  EXPECT_EQ(d.scheduler.prefix_cache_stats().hits, 12);
  EXPECT_EQ(d.blocks.num_free(), 16);
}

TEST(SchedulerPrefixCache, OffComputesEveryPromptFromItsFirstToken) {
  SchedulerOptions opts;
  opts.prefix_caching = false;
  Driver d(16, 4, opts);
  d.Add(1, Prompt(10), 3);
  d.Run();
  d.Add(2, Prompt(10), 3);
  d.Run();
  EXPECT_EQ(d.first_start[2], 0);
  EXPECT_EQ(d.scheduler.prefix_cache_stats().hits, 0);
  EXPECT_EQ(d.blocks.num_cached(), 0);
  EXPECT_EQ(d.blocks.num_free(), 16);
}

TEST(SchedulerPrefixCache, AStepNeverReportedDoneSharesNothing) {
  KvBlockManager blocks(8, 4);
  Scheduler s(&blocks, {});
  ASSERT_TRUE(s.Add(1, Prompt(9)).ok());
  ASSERT_EQ(s.Schedule().size(), 1u);
  s.Remove(1);  // the forward pass failed: no StepDone
  EXPECT_EQ(blocks.num_cached(), 0);
  EXPECT_EQ(blocks.num_free(), 8);
  ASSERT_TRUE(s.Add(2, Prompt(9)).ok());
  auto plan = s.Schedule();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].start_pos, 0);
}

TEST(SchedulerPrefixCache, PreemptionWithSharedBlocksLosesNothingAndLeaksNothing) {
  SchedulerOptions opts;
  opts.max_batch_tokens = 64;
  opts.prefill_chunk = 8;
  // 12 blocks of 4: four sequences sharing a 16-token prefix (4 blocks) and generating 12 tokens
  // each cannot all fit, so the newest are preempted and recomputed, partly from the cache.
  Driver d(12, 4, opts);
  const std::vector<int32_t> prefix = Prompt(16);
  d.Add(1, Concat(prefix, {1, 2, 3}), 12);
  d.Run();  // the first one alone leaves the prefix cached
  for (int64_t id = 2; id <= 5; ++id) d.Add(id, Concat(prefix, {static_cast<int32_t>(id), 9}), 12);
  d.Run();
  for (int64_t id = 1; id <= 5; ++id) EXPECT_EQ(d.generated[id], 12) << id;
  EXPECT_GT(d.scheduler.preemptions(), 0);
  EXPECT_GE(d.scheduler.prefix_cache_stats().hits, 4 * 16);
  EXPECT_EQ(d.blocks.num_free(), 12);
  d.blocks.ResetPrefixCache();
  EXPECT_EQ(d.blocks.num_free(), 12);
  EXPECT_EQ(d.blocks.num_evictable(), 0);
  EXPECT_EQ(d.blocks.num_cached(), 0);
}

// Many sequences from a few shared prefixes, arriving over time into a small cache: the shadow
// cache of the Driver checks every read and write; all blocks come back at the end.
TEST(SchedulerPrefixCache, RandomTrafficReadsOnlyItsOwnPrefix) {
  std::mt19937 rng(7);
  int64_t hits = 0, preemptions = 0;
  for (int round = 0; round < 200; ++round) {
    SchedulerOptions opts;
    opts.max_batch_tokens = 64;
    opts.prefill_chunk = 1 + static_cast<int>(rng() % 12);
    opts.max_running = 1 + static_cast<int>(rng() % 6);
    const int block_size = 1 + static_cast<int>(rng() % 5);
    Driver d(48 / block_size + 4, block_size, opts);
    std::vector<std::vector<int32_t>> prefixes;
    for (int i = 0; i < 3; ++i) prefixes.push_back(Prompt(static_cast<int>(rng() % 20), 100 * (i + 1)));
    int64_t id = 0;
    for (int wave = 0; wave < 3; ++wave) {
      for (int k = 0; k < 4; ++k) {
        std::vector<int32_t> prompt = prefixes[rng() % prefixes.size()];
        for (int n = static_cast<int>(rng() % 6); n >= 0; --n) prompt.push_back(static_cast<int32_t>(rng() % 4));
        d.Add(++id, prompt, 1 + static_cast<int>(rng() % 10));
      }
      d.Run();
      ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "round " << round;
      ASSERT_EQ(d.blocks.num_free(), d.blocks.num_blocks());
    }
    for (int64_t i = 1; i <= id; ++i) EXPECT_EQ(d.generated[i], d.max_tokens[i]);
    hits += d.scheduler.prefix_cache_stats().hits;
    preemptions += d.scheduler.preemptions();
    d.blocks.ResetPrefixCache();
    EXPECT_EQ(d.blocks.num_evictable(), 0);
    EXPECT_EQ(d.blocks.num_free(), d.blocks.num_blocks());
  }
  EXPECT_GT(hits, 0);  // the traffic did share prefixes ...
  EXPECT_GT(preemptions, 0);  // ... and did run out of blocks
}

}  // namespace
}  // namespace rag
