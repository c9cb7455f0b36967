#include "engine/engine.h"

#include <algorithm>

#include "common/logging.h"

namespace rag {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "";
}

EngineOptions EngineOptions::For(const BackendInfo& info) {
  EngineOptions options;
  if (info.max_batch_tokens > 0) {
    options.scheduler.max_batch_tokens = info.max_batch_tokens;
    options.scheduler.prefill_chunk = info.max_batch_tokens;
  }
  if (info.max_batch_seqs > 0) options.scheduler.max_running = info.max_batch_seqs;
  return options;
}

Engine::Engine(std::unique_ptr<Backend> backend, EngineOptions options)
    : backend_(std::move(backend)),
      blocks_(backend_->info().num_blocks, backend_->info().block_size),
      scheduler_(&blocks_, options.scheduler),
      thread_([this] { Loop(); }) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

StatusOr<int64_t> Engine::Submit(GenerationRequest request, TokenCallback callback) {
  const ModelConfig& cfg = backend_->config();
  if (request.prompt.empty()) return InvalidArgument("the prompt has no tokens");
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= cfg.vocab_size) {
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary of " +
                             std::to_string(cfg.vocab_size));
    }
  }
  if (request.max_tokens < 1) return InvalidArgument("max_tokens must be at least 1");
  if (static_cast<int64_t>(request.prompt.size()) + request.max_tokens > cfg.max_position_embeddings) {
    return InvalidArgument("prompt (" + std::to_string(request.prompt.size()) + " tokens) plus max_tokens (" +
                           std::to_string(request.max_tokens) + ") exceed the model's context of " +
                           std::to_string(cfg.max_position_embeddings));
  }
  RAG_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  Sampler sampler(request.sampling);
  auto active = std::make_unique<Active>(
      Active{std::move(request), std::move(callback), std::move(sampler), 0});
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("the engine is shutting down");
    id = next_id_++;
    incoming_.emplace_back(id, std::move(active));
  }
  cv_.notify_all();
  return id;
}

void Engine::Cancel(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.insert(id);
  }
  cv_.notify_all();
}

PrefixCacheStats Engine::prefix_cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prefix_cache_stats_;
}

int64_t Engine::preemptions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return preemptions_;
}

void Engine::Finish(int64_t id, TokenEvent event) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  event.request_id = id;
  event.finished = true;
  it->second->callback(event);
  scheduler_.Remove(id);
  active_.erase(it);
}

void Engine::Loop() {
  for (;;) {
    std::deque<std::pair<int64_t, std::unique_ptr<Active>>> incoming;
    std::unordered_set<int64_t> cancelled;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !incoming_.empty() || !cancelled_.empty() || !active_.empty();
      });
      incoming.swap(incoming_);
      cancelled.swap(cancelled_);
      stopping = stopping_;
    }
    for (auto& [id, active] : incoming) {
      Status st = scheduler_.Add(id, active->request.prompt, active->request.cache_scope);
      TokenEvent event;
      event.request_id = id;
      if (!st.ok()) {
        event.finished = true;
        event.reason = FinishReason::kError;
        event.error = st;
        active->callback(event);
        continue;
      }
      active_[id] = std::move(active);
    }
    for (int64_t id : cancelled) {
      TokenEvent event;
      event.reason = FinishReason::kCancelled;
      Finish(id, event);
    }
    if (stopping) {
      std::vector<int64_t> ids;
      for (const auto& [id, a] : active_) ids.push_back(id);
      for (int64_t id : ids) {
        TokenEvent event;
        event.reason = FinishReason::kCancelled;
        Finish(id, event);
      }
      return;
    }
    if (!active_.empty()) Step();
  }
}

void Engine::Step() {
  std::vector<ScheduledSequence> plan = scheduler_.Schedule();
  if (plan.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    prefix_cache_stats_ = scheduler_.prefix_cache_stats();
    preemptions_ = scheduler_.preemptions();
  }
  ForwardBatch batch;
  batch.sequences.reserve(plan.size());
  for (const auto& s : plan) {
    SequenceInput in;
    in.tokens = s.tokens;
    in.start_pos = s.start_pos;
    in.block_table = blocks_.Table(s.id);
    batch.sequences.push_back(std::move(in));
  }
  // When every sequence that samples this step is plain greedy, the backend may pick the
  // tokens where the logits are (no logits copied out); when every one's sampling is what the
  // backend can do on the device (temperature, top-k, top-p), it may draw them there; else
  // logits come back and the Sampler picks.
  bool device_argmax = backend_->HasForwardArgmax();
  bool device_sample = backend_->HasForwardSample();
  for (const auto& s : plan) {
    auto it = active_.find(s.id);
    if (!s.samples || it == active_.end()) continue;
    if (!it->second->sampler.IsPlainGreedy()) device_argmax = false;
    if (!it->second->sampler.SamplesOnDevice()) device_sample = false;
  }
  StatusOr<std::vector<float>> logits = std::vector<float>();
  StatusOr<std::vector<int32_t>> device_ids = std::vector<int32_t>();
  const bool on_device = device_argmax || device_sample;
  if (device_argmax) {
    device_ids = backend_->ForwardArgmax(batch);
  } else if (device_sample) {
    std::vector<DeviceSampling> rows(plan.size());  // rows that sample nothing: greedy, unused
    for (size_t i = 0; i < plan.size(); ++i) {
      auto it = active_.find(plan[i].id);
      if (!plan[i].samples || it == active_.end()) continue;
      Sampler& sampler = it->second->sampler;
      const SamplingParams& sp = sampler.params();
      rows[i] = {sp.temperature, sp.top_k, sp.top_p, sampler.NextUniform()};
    }
    device_ids = backend_->ForwardSample(batch, rows);
  } else {
    logits = backend_->Forward(batch);
  }
  if (!logits.ok() || !device_ids.ok()) {
    const Status error = !logits.ok() ? logits.status() : device_ids.status();
    RAG_LOG(ERROR) << "engine: forward failed: " << error.message();
    for (const auto& s : plan) {
      TokenEvent event;
      event.reason = FinishReason::kError;
      event.error = error;
      Finish(s.id, event);
    }
    return;
  }
  scheduler_.StepDone();  // before Remove below, so finished requests leave their prefix cached
  const ModelConfig& cfg = backend_->config();
  const int vocab = static_cast<int>(cfg.vocab_size);
  for (size_t i = 0; i < plan.size(); ++i) {
    const ScheduledSequence& s = plan[i];
    if (!s.samples) continue;
    auto it = active_.find(s.id);
    if (it == active_.end()) continue;
    Active& a = *it->second;
    const int32_t token =
        on_device ? (*device_ids)[i]
                  : a.sampler.Sample(logits->data() + i * static_cast<size_t>(vocab), vocab,
                                     scheduler_.Tokens(s.id));
    ++a.generated;
    TokenEvent event;
    event.request_id = s.id;
    event.token = token;
    const auto& stops = a.request.stop_token_ids;
    if (!a.request.ignore_eos && (std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(),
                                            token) != cfg.eos_token_ids.end() ||
                                  std::find(stops.begin(), stops.end(), token) != stops.end())) {
      event.finished = true;
      event.reason = FinishReason::kStop;
    } else if (a.generated >= a.request.max_tokens) {
      event.finished = true;
      event.reason = FinishReason::kLength;
    }
    const bool keep_going = a.callback(event);
    if (event.finished || !keep_going) {
      if (!event.finished) {
        // The caller ended it (a stop string): tell it so, once, with no token.
        TokenEvent end;
        end.request_id = s.id;
        end.finished = true;
        end.reason = FinishReason::kStop;
        a.callback(end);
      }
      scheduler_.Remove(s.id);
      active_.erase(it);
    } else {
      scheduler_.Append(s.id, token);
    }
  }
}

}  // namespace rag
