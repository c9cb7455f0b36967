// The golden models of tools/make_golden_gpu_llama.py (tests/data/golden-gpu/) and what the
// one-GPU and the tensor-parallel tests do with them: the logit metric, and the Engine
// (scheduler, chunked prefill beside decoding, sampling) over a GPU backend on their prompts.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/engine.h"
#include "tests/testing/golden_json.h"

namespace rag {

inline std::string GoldenDir(const std::string& name) {
  return std::string(RAG_TEST_DATA_DIR) + "/golden-gpu/" + name;
}

// The tensor-parallel tests' GPU backend options: 256 KV blocks of 16 tokens, sequences and
// steps of up to 1024 tokens (the golden prompts with room to decode).
constexpr int kGoldenTpBlockSize = 16;
inline CudaBackendOptions GoldenTpOptions() {
  CudaBackendOptions o;
  o.block_size = kGoldenTpBlockSize;
  o.max_seq_len = 1024;
  o.num_blocks = 256;
  o.max_batch_tokens = 1024;
  return o;
}

// Blocks [first, first + ceil(tokens / 16)) as a block table.
inline std::vector<int32_t> ConsecutiveBlocks(int first, int tokens) {
  std::vector<int32_t> t(
      static_cast<size_t>((tokens + kGoldenTpBlockSize - 1) / kGoldenTpBlockSize));
  std::iota(t.begin(), t.end(), first);
  return t;
}

// GreedyDecode of `decode` (each sequence fed its golden prompt's first greedy token) gives the
// rest of each prompt's golden greedy tokens, `want[s]` for sequence s.
inline void ExpectGreedyContinuations(GpuBackend& backend, const ForwardBatch& decode,
                                      const std::vector<std::vector<int32_t>>& want) {
  const int steps = static_cast<int>(want[0].size()) - 1;
  auto got = backend.GreedyDecode(decode, steps);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (size_t s = 0; s < want.size(); ++s) {
    EXPECT_EQ((*got)[s], std::vector<int32_t>(want[s].begin() + 1, want[s].begin() + 1 + steps))
        << "prompt " << s;
  }
}

// Logits: max_i |a_i - b_i| / max_i |b_i| over a row of n.
inline double RelError(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

// Runs every golden prompt of `golden` through an Engine over a GPU backend (chunked prefill
// beside decoding) with `sampling`; returns the generated tokens and the golden greedy tokens,
// by prompt.
struct EngineRun {
  std::vector<std::vector<int32_t>> got, greedy;
};
inline EngineRun RunEngine(std::unique_ptr<Backend> backend, const JsonValue& golden,
                    const SamplingParams& sampling) {
  EngineOptions options;
  options.scheduler.max_batch_tokens = 64;
  options.scheduler.prefill_chunk = 48;
  Engine engine(std::move(backend), options);
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, std::vector<int32_t>> tokens;
  size_t finished = 0;
  std::vector<int64_t> ids;
  EngineRun run;
  for (const JsonValue& p : golden.Find("prompts")->items()) {
    GenerationRequest request;
    request.prompt = testing::JsonInts(*p.Find("ids"));
    request.max_tokens = 32;
    request.sampling = sampling;
    auto id = engine.Submit(request, [&](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (e.token >= 0) tokens[e.request_id].push_back(e.token);
      if (e.finished) ++finished;
      cv.notify_all();
      return true;
    });
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return run;
    ids.push_back(*id);
    run.greedy.push_back(testing::JsonInts(*p.Find("greedy")));
  }
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return finished == ids.size(); }));
  for (int64_t id : ids) run.got.push_back(tokens[id]);
  return run;
}

}  // namespace rag
