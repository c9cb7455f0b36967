// `rag bench --load N --load-engine STEP,CHUNK`: the RAG-shaped load served as `rag serve`
// serves it, through the Engine (engine/engine.h: continuous batching, prompt chunks and decode
// tokens sharing steps, the first token of each request as soon as its prompt is in), instead of
// the bench's own loop (every prompt prefilled alone, then all answers decoded together).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/scheduler.h"

namespace rag {

struct EngineLoadResult {
  int requests = 0;
  int64_t output_tokens = 0;
  double seconds = 0, output_tok_s = 0;
  double mean_first_token_s = 0, max_first_token_s = 0;  // from each request's submission
  // The time between two tokens of one answer, over every answer: what a reader sees of the
  // steps that other requests' prompt chunks lengthen (--step-tokens trades it against prompts).
  double token_gap_p50_ms = 0, token_gap_p99_ms = 0, token_gap_max_ms = 0;
  // The middle half of all output tokens over the time between its first and last: the rate
  // once the start (prompts, no answers yet) and the end (answers, no prompts left) are cut
  // off, which a load of many more requests than seats approaches (TensorRT-LLM's published
  // throughputs run 1500 requests of 5000 + 500 tokens). 0 unless requests outnumber the
  // scheduler's max_running.
  double steady_output_tok_s = 0, steady_seconds = 0;
  int64_t preemptions = 0;  // requests set back to recompute, the KV cache being full
};

// Submits `requests` prompts, the i-th at i x interval_s after the first (0: all at once), each
// answered with exactly new_tokens greedy tokens (end of sequence ignored), and waits for all.
// The Engine takes the backend and returns it to nobody: run this last.
StatusOr<EngineLoadResult> RunEngineLoad(
    std::unique_ptr<Backend> backend, SchedulerOptions scheduler, int requests, int new_tokens,
    double interval_s, const std::function<std::vector<int32_t>()>& random_prompt);

}  // namespace rag
