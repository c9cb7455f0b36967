#include "engine/scheduler.h"

#include <algorithm>

namespace rag {

Scheduler::Scheduler(KvBlockManager* blocks, SchedulerOptions options)
    : blocks_(blocks), options_(options) {}

Status Scheduler::Add(int64_t id, std::vector<int32_t> prompt, uint64_t cache_scope) {
  if (prompt.empty()) return InvalidArgument("the prompt has no tokens");
  if (blocks_->BlocksFor(static_cast<int>(prompt.size()) + 1) > blocks_->num_blocks()) {
    return ResourceExhausted("the prompt (" + std::to_string(prompt.size()) +
                             " tokens) does not fit in the KV cache");
  }
  if (sequences_.count(id)) return AlreadyExists("sequence " + std::to_string(id) + " exists");
  const int prompt_tokens = static_cast<int>(prompt.size());
  sequences_[id] = Sequence{std::move(prompt), 0, cache_scope, prompt_tokens};
  waiting_.push_back(id);
  return Status::Ok();
}

void Scheduler::Append(int64_t id, int32_t token) {
  auto it = sequences_.find(id);
  if (it != sequences_.end()) it->second.tokens.push_back(token);
}

void Scheduler::Remove(int64_t id) {
  blocks_->Release(id);
  sequences_.erase(id);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), id), waiting_.end());
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
  last_plan_.erase(std::remove(last_plan_.begin(), last_plan_.end(), id), last_plan_.end());
}

void Scheduler::StepDone() {
  if (options_.prefix_caching) {
    for (int64_t id : last_plan_) {
      const Sequence& s = sequences_.at(id);
      blocks_->MarkComputed(id, s.tokens, s.computed);
    }
  }
  last_plan_.clear();
}

void Scheduler::Preempt(int64_t id) {
  blocks_->Release(id);
  sequences_[id].computed = 0;
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
  waiting_.push_front(id);
  ++preemptions_;
}

std::vector<ScheduledSequence> Scheduler::Schedule() {
  std::vector<ScheduledSequence> plan;
  last_plan_.clear();  // a step never reported done failed: none of it is registered
  int budget = options_.max_batch_tokens;
  if (options_.mixed_step_tokens > 0) {
    int decoding = 0;
    for (int64_t id : running_) decoding += sequences_.at(id).decoding() ? 1 : 0;
    if (decoding > 0) budget = std::min(budget, std::max(options_.mixed_step_tokens, decoding));
  }

  auto feed = [&](int64_t id, Sequence& s, int max_tokens) -> bool {
    const int remaining = static_cast<int>(s.tokens.size()) - s.computed;
    const int n = std::min({remaining, max_tokens, budget});
    if (n <= 0) return false;
    if (!blocks_->Reserve(id, s.computed + n)) return false;
    ScheduledSequence step;
    step.id = id;
    step.start_pos = s.computed;
    step.tokens.assign(s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + n);
    s.computed += n;
    step.samples = s.computed == static_cast<int>(s.tokens.size());
    budget -= n;
    plan.push_back(std::move(step));
    return true;
  };

  // Running sequences first, oldest first; when one cannot get a block, preempt the newest
  // running sequence (not yet in this step's plan) and try again.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const int64_t id = running_[i];
    Sequence& s = sequences_[id];
    if (s.computed == static_cast<int>(s.tokens.size())) {  // waits for its sampled token
      ++i;
      continue;
    }
    if (feed(id, s, options_.prefill_chunk)) {
      ++i;
      continue;
    }
    if (budget <= 0) break;
    const int64_t victim = running_.back();
    Preempt(victim);
    if (victim == id) break;  // it was the newest: it waits now
  }
  // Then waiting sequences while the budget, the batch size and the blocks allow.
  while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < options_.max_running) {
    const int64_t id = waiting_.front();
    Sequence& s = sequences_[id];
    const int cached = options_.prefix_caching ? blocks_->MatchPrefix(id, s.tokens, s.cache_scope) : 0;
    s.computed = cached;
    if (!feed(id, s, options_.prefill_chunk)) {
      blocks_->Release(id);  // gives the matched blocks back; it waits with nothing computed
      s.computed = 0;
      break;
    }
    if (options_.prefix_caching) {
      prefix_cache_stats_.queries += static_cast<int64_t>(s.tokens.size());
      prefix_cache_stats_.hits += cached;
    }
    waiting_.pop_front();
    running_.push_back(id);
  }
  for (const ScheduledSequence& step : plan) last_plan_.push_back(step.id);
  return plan;
}

}  // namespace rag
