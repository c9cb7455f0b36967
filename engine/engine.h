// The generation engine: a step loop on its own thread that batches every active request
// (continuous batching through the Scheduler), runs the Backend, samples, and reports tokens.
// HTTP and CLI threads only Submit and Cancel; they never run model code (DESIGN.md section 8).
//
// Thread-safety: Submit, Cancel and the destructor may be called from any thread. Callbacks
// run on the engine thread, one at a time: they must be quick (copy the token, hand it on).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/kv_block_manager.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"

namespace rag {

struct GenerationRequest {
  std::vector<int32_t> prompt;           // token ids, BOS included when the model wants one
  SamplingParams sampling;
  int max_tokens = 256;                  // generated tokens at most
  std::vector<int32_t> stop_token_ids;   // besides the model's eos ids (e.g. <|im_end|>)
  bool ignore_eos = false;  // benchmarks: neither eos nor stop ids end it, only max_tokens
  // Prefix-cache scope: cached prompt blocks are shared only among requests of one scope (the
  // server gives each API key its own, so a cache hit's speed says nothing about other keys'
  // prompts). 0: the shared scope.
  uint64_t cache_scope = 0;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason reason);  // "", "stop", "length", "cancelled", "error"

struct TokenEvent {
  int64_t request_id = 0;
  int32_t token = -1;        // -1 for an event without a token (cancelled, error)
  bool finished = false;
  FinishReason reason = FinishReason::kNone;  // set when finished
  Status error;              // when reason == kError
};

// Returns false to end the request now (e.g. the caller saw a stop string); it then finishes
// with reason kStop and gets no further events.
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct EngineOptions {
  SchedulerOptions scheduler;
  // The options for this backend: a backend that names its step limits (a GPU) gets steps of up
  // to its max_batch_tokens, all of them for one prompt if need be, and up to its
  // max_batch_seqs sequences; one without (the CPU) keeps SchedulerOptions' defaults. On a GPU a
  // step reads the weights once whatever its size and its GEMMs want many rows: 64 RAG prompts
  // (5000 tokens, 500-token answers) through the Engine on one H200, 70B FP8, took 109.7 s in
  // steps of 2048 tokens (512 of a prompt) and 92.8 s in steps of 4096 (docs/BENCHMARKS.md).
  static EngineOptions For(const BackendInfo& info);
};

class Engine {
 public:
  // The backend's cache geometry (info()) sizes the block manager.
  Engine(std::unique_ptr<Backend> backend, EngineOptions options);
  // Cancels every request (each gets a cancelled event) and joins the engine thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelConfig& config() const { return backend_->config(); }

  // Queues a request; its events arrive on `callback`. InvalidArgument for an empty prompt,
  // token ids outside the vocabulary, bad sampling parameters, or a prompt longer than the
  // model's context.
  StatusOr<int64_t> Submit(GenerationRequest request, TokenCallback callback);
  // Ends a request early (a cancelled event follows, unless it already finished). Unknown or
  // finished ids are ignored.
  void Cancel(int64_t id);
  // Prefix cache lookups and hits of the requests admitted so far (for /metrics).
  PrefixCacheStats prefix_cache_stats() const;
  // Running requests set back to recompute their tokens later, the KV cache being full.
  int64_t preemptions() const;

 private:
  struct Active {
    GenerationRequest request;
    TokenCallback callback;
    Sampler sampler;
    int generated = 0;
  };

  void Loop();
  void Step();
  void Finish(int64_t id, TokenEvent event);

  std::unique_ptr<Backend> backend_;
  KvBlockManager blocks_;
  Scheduler scheduler_;  // engine thread only
  std::unordered_map<int64_t, std::unique_ptr<Active>> active_;  // engine thread only

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<std::pair<int64_t, std::unique_ptr<Active>>> incoming_;
  std::unordered_set<int64_t> cancelled_;
  int64_t next_id_ = 1;
  bool stopping_ = false;
  PrefixCacheStats prefix_cache_stats_;  // copies of the scheduler's figures, for other threads
  int64_t preemptions_ = 0;
  std::thread thread_;
};

}  // namespace rag
