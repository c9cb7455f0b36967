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
  double mean_first_token_s = 0, max_first_token_s = 0;  // from the submission of all requests
};

// Submits `requests` prompts at once, each answered with exactly new_tokens greedy tokens (end
// of sequence ignored), and waits for all. The Engine takes the backend and returns it to
// nobody: run this last.
StatusOr<EngineLoadResult> RunEngineLoad(
    std::unique_ptr<Backend> backend, SchedulerOptions scheduler, int requests, int new_tokens,
    const std::function<std::vector<int32_t>()>& random_prompt);

}  // namespace rag
