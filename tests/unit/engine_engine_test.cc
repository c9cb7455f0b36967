// The engine loop end to end on the real CPU backend and the golden models of
// tools/make_golden_llama.py: several requests at once through continuous batching must each
// get transformers' greedy tokens; cancellation and bad requests are reported, never lost.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/kv_block_manager.h"
#include "tests/testing/golden_json.h"

namespace rag {
namespace {

const std::string kGolden = std::string(RAG_TEST_DATA_DIR) + "/golden/gqa_untied_f32";

// Waits for the events of many requests.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, std::vector<int32_t>> tokens;
  std::map<int64_t, FinishReason> finished;

  TokenCallback Callback() {
    return [this](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (e.token >= 0) tokens[e.request_id].push_back(e.token);
      if (e.finished) finished[e.request_id] = e.reason;
      cv.notify_all();
      return true;
    };
  }
  bool WaitFinished(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished.size() >= n; });
  }
};

std::unique_ptr<Engine> MakeEngine(int num_blocks, SchedulerOptions sched = {}) {
  CpuBackendOptions options;
  options.num_threads = 2;
  options.block_size = 4;
  options.num_blocks = num_blocks;
  auto backend = CreateCpuBackend(kGolden, options);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  EngineOptions engine_options;
  engine_options.scheduler = sched;
  return std::make_unique<Engine>(std::move(*backend), engine_options);
}

TEST(Engine, ConcurrentRequestsGetTransformersGreedyTokens) {
  auto text = ReadFileToString(kGolden + "/golden.json");
  ASSERT_TRUE(text.ok());
  auto golden = ReadJson(*text, "golden.json");
  ASSERT_TRUE(golden.ok());
  const auto& prompts = golden->Find("prompts")->items();

  // A small cache and small chunks force chunked prefill, mixed batches and preemption.
  SchedulerOptions sched;
  sched.max_batch_tokens = 8;
  sched.prefill_chunk = 3;
  auto engine = MakeEngine(/*num_blocks=*/24, sched);
  Events events;
  std::map<int64_t, std::vector<int32_t>> expected;
  for (const auto& p : prompts) {
    GenerationRequest request;
    request.prompt = testing::JsonInts(*p.Find("ids"));
    request.max_tokens = 32;
    auto id = engine->Submit(request, events.Callback());
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    expected[*id] = testing::JsonInts(*p.Find("greedy"));
  }
  ASSERT_TRUE(events.WaitFinished(expected.size()));
  for (const auto& [id, want] : expected) {
    EXPECT_EQ(events.tokens[id], want) << "request " << id;
    EXPECT_EQ(events.finished[id], FinishReason::kLength);
  }
  EXPECT_GT(engine->preemptions(), 0) << "the small cache was to force preemptions";
}

TEST(Engine, StopTokensAndCancellationEndRequests) {
  auto engine = MakeEngine(64);
  auto text = ReadFileToString(kGolden + "/golden.json");
  auto golden = ReadJson(*text, "golden.json");
  const auto& p = golden->Find("prompts")->items()[0];
  const std::vector<int32_t> greedy = testing::JsonInts(*p.Find("greedy"));

  Events events;
  GenerationRequest stop_at_third;
  stop_at_third.prompt = testing::JsonInts(*p.Find("ids"));
  stop_at_third.max_tokens = 32;
  stop_at_third.stop_token_ids = {greedy[2]};
  auto a = engine->Submit(stop_at_third, events.Callback());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(events.WaitFinished(1));
  EXPECT_EQ(events.finished[*a], FinishReason::kStop);
  const std::vector<int32_t> first_three(greedy.begin(), greedy.begin() + 3);
  EXPECT_EQ(events.tokens[*a], first_three);

  // Benchmarks' requests ignore eos and stop ids: the same request runs to max_tokens.
  GenerationRequest ignoring = stop_at_third;
  ignoring.max_tokens = 8;
  ignoring.ignore_eos = true;
  auto c = engine->Submit(ignoring, events.Callback());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(events.WaitFinished(2));
  EXPECT_EQ(events.finished[*c], FinishReason::kLength);
  EXPECT_EQ(events.tokens[*c], std::vector<int32_t>(greedy.begin(), greedy.begin() + 8));

  GenerationRequest long_one;
  long_one.prompt = testing::JsonInts(*p.Find("ids"));
  long_one.max_tokens = 200;
  auto b = engine->Submit(long_one, events.Callback());
  ASSERT_TRUE(b.ok());
  engine->Cancel(*b);
  ASSERT_TRUE(events.WaitFinished(3));
  EXPECT_EQ(events.finished[*b], FinishReason::kCancelled);
  EXPECT_LT(events.tokens[*b].size(), 200u);
}

TEST(Engine, OptionsForABackendTakeItsStepLimits) {
  // A GPU backend names its limits: steps as large as it takes, all of one prompt if need be.
  const EngineOptions gpu = EngineOptions::For({"cuda", 16, 1000, 4096, 48});
  EXPECT_EQ(gpu.scheduler.max_batch_tokens, 4096);
  EXPECT_EQ(gpu.scheduler.prefill_chunk, 4096);
  EXPECT_EQ(gpu.scheduler.max_running, 48);
  // The CPU backend names none: the scheduler's defaults.
  const EngineOptions cpu = EngineOptions::For({"cpu", 16, 1000});
  const SchedulerOptions defaults;
  EXPECT_EQ(cpu.scheduler.max_batch_tokens, defaults.max_batch_tokens);
  EXPECT_EQ(cpu.scheduler.prefill_chunk, defaults.prefill_chunk);
  EXPECT_EQ(cpu.scheduler.max_running, defaults.max_running);
}

TEST(Engine, BadRequestsAreRefusedAtSubmit) {
  auto engine = MakeEngine(16);
  Events events;
  GenerationRequest empty;
  EXPECT_EQ(engine->Submit(empty, events.Callback()).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest out_of_vocab;
  out_of_vocab.prompt = {1, static_cast<int32_t>(engine->config().vocab_size)};
  EXPECT_EQ(engine->Submit(out_of_vocab, events.Callback()).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest bad_sampling;
  bad_sampling.prompt = {1, 2};
  bad_sampling.sampling.top_p = 0;
  EXPECT_EQ(engine->Submit(bad_sampling, events.Callback()).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest too_long;
  too_long.prompt = {1, 2};
  too_long.max_tokens = static_cast<int>(engine->config().max_position_embeddings);
  EXPECT_EQ(engine->Submit(too_long, events.Callback()).status().code(), StatusCode::kInvalidArgument);
}

TEST(Engine, DestructionCancelsWhatIsInFlight) {
  Events events;
  {
    auto engine = MakeEngine(64);
    GenerationRequest r;
    r.prompt = {1, 2, 3};
    r.max_tokens = 100;
    ASSERT_TRUE(engine->Submit(r, events.Callback()).ok());
  }
  std::lock_guard<std::mutex> lock(events.mu);
  ASSERT_EQ(events.finished.size(), 1u);
  const FinishReason reason = events.finished.begin()->second;
  EXPECT_TRUE(reason == FinishReason::kCancelled || reason == FinishReason::kLength);
}

JsonValue LoadGolden() {
  auto text = ReadFileToString(kGolden + "/golden.json");
  EXPECT_TRUE(text.ok());
  auto golden = ReadJson(*text, "golden.json");
  EXPECT_TRUE(golden.ok());
  return std::move(golden).value();
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The backends need no change for prefix caching: positions below start_pos are read through
// the block table, whoever wrote them. A prompt run after a cached prefix must give the logits of
// the same prompt run from its first token.
TEST(EnginePrefixCache, ACachedPrefixGivesTheLogitsOfRecomputingIt) {
  JsonValue golden = LoadGolden();
  const auto& prompts = golden.Find("prompts")->items();
  const std::vector<int32_t> shared = Concat(testing::JsonInts(*prompts[2].Find("ids")), testing::JsonInts(*prompts[0].Find("ids")));
  const std::vector<int32_t> first = Concat(shared, {11, 12, 13});
  const std::vector<int32_t> second = Concat(shared, {21, 22, 23, 24, 25});
  CpuBackendOptions options;
  options.num_threads = 2;
  options.block_size = 4;
  options.num_blocks = 64;
  auto backend = CreateCpuBackend(kGolden, options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  KvBlockManager blocks(options.num_blocks, options.block_size);
  auto run = [&](int64_t seq, const std::vector<int32_t>& tokens, int start) {
    EXPECT_TRUE(blocks.Reserve(seq, static_cast<int>(tokens.size())));
    ForwardBatch batch;
    SequenceInput in;
    in.tokens.assign(tokens.begin() + start, tokens.end());
    in.start_pos = start;
    in.block_table = blocks.Table(seq);
    batch.sequences.push_back(in);
    auto logits = (*backend)->Forward(batch);
    EXPECT_TRUE(logits.ok()) << logits.status().ToString();
    return logits.ok() ? *logits : std::vector<float>();
  };
  run(1, first, 0);
  blocks.MarkComputed(1, first, static_cast<int>(first.size()));
  const int cached = blocks.MatchPrefix(2, second);
  ASSERT_EQ(cached, 28);
  const std::vector<float> reused = run(2, second, cached);
  const std::vector<float> recomputed = run(3, second, 0);  // sequence 3 matched nothing
  ASSERT_EQ(reused.size(), recomputed.size());
  ASSERT_FALSE(reused.empty());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < reused.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(reused[i]) - recomputed[i]));
    scale = std::max(scale, std::abs(static_cast<double>(recomputed[i])));
  }
  EXPECT_LE(diff, 1e-6 * scale);
}

// Two requests sharing a 30-token prefix, one after the other: the same greedy tokens with the
// cache on and off, and with it on the second reuses the 28 tokens of the prefix's full blocks.
TEST(EnginePrefixCache, ALaterRequestReusesTheSharedPrefixAndGetsTheSameTokens) {
  JsonValue golden = LoadGolden();
  const auto& prompts = golden.Find("prompts")->items();
  const std::vector<int32_t> shared = Concat(testing::JsonInts(*prompts[2].Find("ids")), testing::JsonInts(*prompts[0].Find("ids")));
  ASSERT_EQ(shared.size(), 30u);
  const std::vector<std::vector<int32_t>> requests = {
      Concat(shared, {11, 12, 13}), Concat(shared, {21, 22, 23, 24, 25}), Concat(shared, {11, 12, 13})};

  std::map<bool, std::vector<std::vector<int32_t>>> outputs;
  for (bool caching : {false, true}) {
    SchedulerOptions sched;
    sched.prefix_caching = caching;
    sched.prefill_chunk = 8;  // the first request fills the cache over several steps
    auto engine = MakeEngine(/*num_blocks=*/64, sched);
    Events events;
    std::vector<int64_t> hits;
    for (size_t r = 0; r < requests.size(); ++r) {
      GenerationRequest request;
      request.prompt = requests[r];
      request.max_tokens = 12;
      auto id = engine->Submit(request, events.Callback());
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      ASSERT_TRUE(events.WaitFinished(r + 1));
      std::lock_guard<std::mutex> lock(events.mu);
      EXPECT_EQ(events.finished[*id], FinishReason::kLength);
      outputs[caching].push_back(events.tokens[*id]);
      hits.push_back(engine->prefix_cache_stats().hits);
    }
    const PrefixCacheStats stats = engine->prefix_cache_stats();
    EXPECT_EQ(stats.queries, caching ? 33 + 35 + 33 : 0);
    if (caching) {
      EXPECT_EQ(hits, (std::vector<int64_t>{0, 28, 28 + 32}));  // the third repeats the first
    } else {
      EXPECT_EQ(hits, (std::vector<int64_t>{0, 0, 0}));
    }
  }
  EXPECT_EQ(outputs[true], outputs[false]);
  EXPECT_EQ(outputs[true][2], outputs[true][0]);
}

}  // namespace
}  // namespace rag

namespace rag {
namespace {

// The engine's greedy fast path (Backend::ForwardArgmax, which the CUDA backend runs on the
// device) over the real CPU backend: this wrapper's ForwardArgmax takes the argmax of the CPU
// backend's logits and counts its calls. Greedy requests go through it and still get
// transformers' tokens; a step with a sampled request falls back to Forward and the Sampler.
class ArgmaxCountingBackend : public Backend {
 public:
  explicit ArgmaxCountingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  const ModelConfig& config() const override { return inner_->config(); }
  BackendInfo info() const override { return inner_->info(); }
  StatusOr<std::vector<float>> Forward(const ForwardBatch& batch) override {
    ++forward_calls;
    return inner_->Forward(batch);
  }
  bool HasForwardArgmax() const override { return true; }
  StatusOr<std::vector<int32_t>> ForwardArgmax(const ForwardBatch& batch) override {
    ++argmax_calls;
    RAG_ASSIGN_OR_RETURN(std::vector<float> logits, inner_->Forward(batch));
    const size_t vocab = static_cast<size_t>(config().vocab_size);
    std::vector<int32_t> ids;
    for (size_t r = 0; r * vocab < logits.size(); ++r) {
      const float* row = logits.data() + r * vocab;
      ids.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
    }
    return ids;
  }
  std::atomic<int> forward_calls{0}, argmax_calls{0};

 private:
  std::unique_ptr<Backend> inner_;
};

TEST(Engine, GreedyStepsUseTheBackendsArgmaxAndSampledStepsDoNot) {
  CpuBackendOptions options;
  options.num_threads = 2;
  options.block_size = 4;
  options.num_blocks = 64;
  auto cpu = CreateCpuBackend(kGolden, options);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto counting = std::make_unique<ArgmaxCountingBackend>(std::move(*cpu));
  ArgmaxCountingBackend* backend = counting.get();
  auto engine = std::make_unique<Engine>(std::move(counting), EngineOptions{});
  auto text = ReadFileToString(kGolden + "/golden.json");
  ASSERT_TRUE(text.ok());
  auto golden = ReadJson(*text, "golden.json");
  ASSERT_TRUE(golden.ok());
  const auto& p = golden->Find("prompts")->items()[0];

  Events events;
  GenerationRequest greedy;
  greedy.prompt = testing::JsonInts(*p.Find("ids"));
  greedy.max_tokens = 32;
  auto id = engine->Submit(greedy, events.Callback());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(events.WaitFinished(1));
  EXPECT_EQ(events.tokens[*id], testing::JsonInts(*p.Find("greedy")));
  EXPECT_GT(backend->argmax_calls.load(), 0);
  EXPECT_EQ(backend->forward_calls.load(), 0);

  GenerationRequest sampled = greedy;
  sampled.sampling.temperature = 0.8f;
  sampled.sampling.seed = 7;
  sampled.max_tokens = 4;
  const int argmax_before = backend->argmax_calls.load();
  ASSERT_TRUE(engine->Submit(sampled, events.Callback()).ok());
  ASSERT_TRUE(events.WaitFinished(2));
  EXPECT_GT(backend->forward_calls.load(), 0);
  EXPECT_EQ(backend->argmax_calls.load(), argmax_before);
}

}  // namespace
}  // namespace rag
