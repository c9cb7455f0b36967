// Continuous batching (CPU code, no tensors; unit-tested without a model).
//
// A sequence is its token ids (prompt, then generated) and how many of them already have keys
// and values in the KV cache (`computed`). Every step feeds each scheduled sequence the next
// uncomputed tokens: a prompt chunk (chunked prefill) or, once the prompt is in, the one token
// sampled last step. When a step computes a sequence's last token, its logits give the next
// token (`samples` is true). Decoding sequences go first, then waiting prompts while the token
// budget and free KV blocks allow. When a running sequence cannot get a block, the newest
// running sequence is preempted: its blocks are freed and it waits to be recomputed from its
// tokens (no tokens are lost; the caller sees only a delay).
//
// Prefix caching: a waiting sequence is admitted with the cached blocks of its longest computed
// prefix (KvBlockManager::MatchPrefix), so its first step starts at start_pos = the matched tokens.
// A step's full blocks become shareable only when the caller reports, through StepDone, that its
// forward pass wrote them; a preempted sequence finds its own blocks again unless they were
// evicted meanwhile.
//
// Not thread-safe: the engine's step loop is its only user.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/kv_block_manager.h"

namespace rag {

struct SchedulerOptions {
  int max_batch_tokens = 2048;  // tokens fed in one step, all sequences together
  int max_running = 64;         // sequences in one step
  int prefill_chunk = 512;      // prompt tokens of one sequence in one step
  // A step that feeds decoding sequences feeds at most this many tokens in all (always at least
  // every decoding sequence's one token); 0: max_batch_tokens. Every answer being written waits
  // for the whole step; and in a full server (prompts waiting for seats) prompts spread thin
  // over many steps let each step carry the answers' tokens, where big prompt steps leave the
  // answers to steps of decoding alone, which read all the weights for a few dozen tokens. On
  // 70B FP8 with 5000-token prompts that gained ~3% once the server was full and shortened the
  // longest pauses, but thin slices read prompts more slowly: whole runs came out level
  // (docs/BENCHMARKS.md), so no backend turns it on by default; `rag bench --mixed-step-tokens`.
  int mixed_step_tokens = 0;
  bool prefix_caching = true;   // reuse the computed KV blocks of identical prompt prefixes
};

// Counted at each admission of a waiting sequence (a preempted one is counted again when it is
// readmitted): every token it brings is looked up, and the ones whose blocks it reuses are hits.
struct PrefixCacheStats {
  int64_t queries = 0;  // tokens looked up
  int64_t hits = 0;     // tokens whose keys and values were reused, not computed
  double hit_rate() const { return queries > 0 ? static_cast<double>(hits) / queries : 0.0; }
};

struct ScheduledSequence {
  int64_t id = 0;
  int32_t start_pos = 0;          // position of the first fed token
  std::vector<int32_t> tokens;    // the tokens fed this step
  bool samples = false;           // this step reaches the sequence's end: sample from its logits
};

class Scheduler {
 public:
  Scheduler(KvBlockManager* blocks, SchedulerOptions options);

  // Queues a sequence. InvalidArgument when it is empty or could never fit in the cache.
  // cache_scope: it shares cached prefix blocks only with sequences of the same scope
  // (KvBlockManager::MatchPrefix).
  Status Add(int64_t id, std::vector<int32_t> prompt, uint64_t cache_scope = 0);
  // Plans one step; empty when there is nothing to run. Reserves the blocks it needs and marks
  // the fed tokens computed (they are not fed again).
  std::vector<ScheduledSequence> Schedule();
  // Reports that the last plan's forward pass ran and wrote its keys and values: the full blocks
  // of its sequences become shareable. Call it before removing the sequences that finished in
  // that step, else their last blocks are not cached. A plan never reported (its step failed)
  // shares nothing; its sequences must then be removed, their cache contents being unknown.
  void StepDone();
  // Appends a sampled token to a running sequence.
  void Append(int64_t id, int32_t token);
  // Removes a sequence (finished or cancelled) and frees its blocks.
  void Remove(int64_t id);

  bool empty() const { return sequences_.empty(); }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  const std::vector<int32_t>& Tokens(int64_t id) const { return sequences_.at(id).tokens; }
  int64_t preemptions() const { return preemptions_; }
  const PrefixCacheStats& prefix_cache_stats() const { return prefix_cache_stats_; }

 private:
  struct Sequence {
    std::vector<int32_t> tokens;
    int computed = 0;
    uint64_t cache_scope = 0;
    int prompt_tokens = 0;  // as added; a preempted sequence recomputes its answer's too
    // Its prompt is in and it waits to feed its last sampled token.
    bool decoding() const {
      return computed >= prompt_tokens && computed + 1 == static_cast<int>(tokens.size());
    }
  };
  void Preempt(int64_t id);

  KvBlockManager* blocks_;
  SchedulerOptions options_;
  std::unordered_map<int64_t, Sequence> sequences_;
  std::deque<int64_t> waiting_;   // FIFO; preempted sequences go to the front
  std::vector<int64_t> running_;  // admission order
  std::vector<int64_t> last_plan_;  // sequences of the last plan, until StepDone
  int64_t preemptions_ = 0;
  PrefixCacheStats prefix_cache_stats_;
};

}  // namespace rag
