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
  Status Add(int64_t id, std::vector<int32_t> prompt);
  // Plans one step; empty when there is nothing to run. Reserves the blocks it needs and marks
  // the fed tokens computed.
  std::vector<ScheduledSequence> Schedule();
  // Appends a sampled token to a running sequence.
  void Append(int64_t id, int32_t token);
  // Removes a sequence (finished or cancelled) and frees its blocks.
  void Remove(int64_t id);

  bool empty() const { return sequences_.empty(); }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  const std::vector<int32_t>& Tokens(int64_t id) const { return sequences_.at(id).tokens; }
  int64_t preemptions() const { return preemptions_; }

 private:
  struct Sequence {
    std::vector<int32_t> tokens;
    int computed = 0;
  };
  void Preempt(int64_t id);

  KvBlockManager* blocks_;
  SchedulerOptions options_;
  std::unordered_map<int64_t, Sequence> sequences_;
  std::deque<int64_t> waiting_;   // FIFO; preempted sequences go to the front
  std::vector<int64_t> running_;  // admission order
  int64_t preemptions_ = 0;
};

}  // namespace rag
