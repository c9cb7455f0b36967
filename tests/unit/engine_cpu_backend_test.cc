// The CPU backend against Hugging Face transformers (tools/make_golden_llama.py wrote the
// models and golden.json under tests/data/golden/).
//
// Logit metric: for each row, max_i |ours_i - ref_i| / max_i |ref_i| <= 1e-4 (the error
// relative to the row's scale, so near-zero logits do not blow it up). Greedy: the 32 tokens of
// transformers' generate(do_sample=False), decoded here one token per Forward through the
// paged KV cache with a scattered block table; the script guarantees top-1/top-2 margins of at
// least 3e-4 of the row's scale along the path, so a tie cannot decide the outcome.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/rope.h"
#include "tests/testing/golden_json.h"

namespace rag {
namespace {

using testing::JsonFloats;
using testing::JsonInts;

constexpr double kTolerance = 1e-4;
constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;

std::string GoldenDir(const std::string& name) {
  return std::string(RAG_TEST_DATA_DIR) + "/golden/" + name;
}

JsonValue LoadGolden(const std::string& name) {
  return testing::LoadJsonFile(GoldenDir(name) + "/golden.json");
}

const std::vector<std::string>& ModelNames() {
  static const std::vector<std::string> names = {"gqa_untied_f32", "mha_tied_f16",
                                                 "llama31_rope_bf16", "llama3_vocab_bf16"};
  return names;
}

// max |a - b| / max |b| over one row.
double RelError(const float* a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

// Blocks of a sequence, scattered on purpose: sequence `slot` takes every other block counting
// down from the top, so neighbouring positions never sit in neighbouring blocks.
std::vector<int32_t> BlockTable(int slot, int tokens) {
  std::vector<int32_t> table;
  for (int b = 0; b * kBlockSize < tokens; ++b) table.push_back(kNumBlocks - 1 - 2 * b - slot);
  return table;
}

std::unique_ptr<Backend> MakeBackend(const std::string& dir) {
  CpuBackendOptions options;
  options.num_threads = 2;
  options.block_size = kBlockSize;
  options.num_blocks = kNumBlocks;
  auto backend = CreateCpuBackend(dir, options);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? std::move(backend).value() : nullptr;
}

SequenceInput Seq(std::vector<int32_t> tokens, int start_pos, int slot, int total_tokens,
                  bool all_logits = false) {
  SequenceInput s;
  s.tokens = std::move(tokens);
  s.start_pos = start_pos;
  s.block_table = BlockTable(slot, total_tokens);
  s.all_logits = all_logits;
  return s;
}

std::vector<float> Forward(Backend& b, std::vector<SequenceInput> seqs) {
  ForwardBatch batch;
  batch.sequences = std::move(seqs);
  auto logits = b.Forward(batch);
  EXPECT_TRUE(logits.ok()) << logits.status().ToString();
  return logits.ok() ? std::move(logits).value() : std::vector<float>();
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, LogitsAndGreedyTokensMatchTransformers) {
  const std::string name = GetParam();
  JsonValue golden = LoadGolden(name);
  auto backend = MakeBackend(GoldenDir(name));
  ASSERT_NE(backend, nullptr);
  const int64_t vocab = backend->config().vocab_size;
  double worst = 0;
  for (const JsonValue& prompt : golden.Find("prompts")->items()) {
    const std::vector<int32_t> ids = JsonInts(*prompt.Find("ids"));
    const std::vector<int32_t> want = JsonInts(*prompt.Find("greedy"));
    const int total = static_cast<int>(ids.size() + want.size());
    const JsonValue* all = prompt.Find("all_logits");

    std::vector<float> logits = Forward(*backend, {Seq(ids, 0, 0, total, all != nullptr)});
    ASSERT_EQ(logits.size(), static_cast<size_t>(vocab) * (all ? ids.size() : 1));
    const float* last = logits.data() + logits.size() - vocab;
    double err = RelError(last, JsonFloats(*prompt.Find("last_logits")));
    EXPECT_LE(err, kTolerance) << name << " prompt of " << ids.size() << " tokens";
    worst = std::max(worst, err);
    if (all != nullptr) {
      ASSERT_EQ(all->size(), ids.size());
      for (size_t t = 0; t < ids.size(); ++t) {
        double e = RelError(logits.data() + t * vocab, JsonFloats(all->items()[t]));
        EXPECT_LE(e, kTolerance) << name << " position " << t;
        worst = std::max(worst, e);
      }
    }

    // Greedy decode, one token per step through the cache the prefill filled.
    std::vector<int32_t> got;
    int32_t next = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
    for (size_t step = 0; step < want.size(); ++step) {
      got.push_back(next);
      if (step + 1 == want.size()) break;
      std::vector<float> row = Forward(*backend, {Seq({next}, static_cast<int>(ids.size() + step), 0, total)});
      ASSERT_EQ(row.size(), static_cast<size_t>(vocab));
      next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    }
    EXPECT_EQ(got, want) << name << " prompt of " << ids.size() << " tokens";
  }
  std::printf("%s: max relative logit error %.3g\n", name.c_str(), worst);
}

TEST_P(GoldenTest, ChunkedPrefillAndBatchingDoNotChangeLogits) {
  const std::string name = GetParam();
  JsonValue golden = LoadGolden(name);
  auto backend = MakeBackend(GoldenDir(name));
  ASSERT_NE(backend, nullptr);
  const int64_t vocab = backend->config().vocab_size;
  const auto& prompts = golden.Find("prompts")->items();
  // The longest prompt, in two chunks: 5 tokens, then the rest.
  const JsonValue& longest = *std::max_element(prompts.begin(), prompts.end(),
      [](const JsonValue& a, const JsonValue& b) { return a.Find("ids")->size() < b.Find("ids")->size(); });
  const std::vector<int32_t> ids = JsonInts(*longest.Find("ids"));
  ASSERT_GT(ids.size(), 5u);
  const int n = static_cast<int>(ids.size());
  std::vector<float> whole = Forward(*backend, {Seq(ids, 0, 0, n)});
  Forward(*backend, {Seq({ids.begin(), ids.begin() + 5}, 0, 1, n)});
  std::vector<float> chunked = Forward(*backend, {Seq({ids.begin() + 5, ids.end()}, 5, 1, n)});
  ASSERT_EQ(chunked.size(), static_cast<size_t>(vocab));
  EXPECT_LE(RelError(chunked.data(), whole), 1e-6);
  EXPECT_LE(RelError(chunked.data(), JsonFloats(*longest.Find("last_logits"))), kTolerance);

  // Two sequences in one batch give what each gives alone.
  const std::vector<int32_t> other = JsonInts(*prompts[0].Find("ids"));
  std::vector<float> alone = Forward(*backend, {Seq(other, 0, 0, static_cast<int>(other.size()))});
  std::vector<float> both = Forward(*backend, {Seq(ids, 0, 1, n),
                                           Seq(other, 0, 0, static_cast<int>(other.size()))});
  ASSERT_EQ(both.size(), 2u * vocab);
  EXPECT_LE(RelError(both.data(), whole), 1e-6);
  EXPECT_LE(RelError(both.data() + vocab, alone), 1e-6);
}

TEST_P(GoldenTest, RopeInverseFrequenciesMatchTransformers) {
  const std::string name = GetParam();
  JsonValue golden = LoadGolden(name);
  auto backend = MakeBackend(GoldenDir(name));
  ASSERT_NE(backend, nullptr);
  std::vector<float> got = ComputeRopeInvFreq(backend->config());
  std::vector<float> want = JsonFloats(*golden.Find("inv_freq"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 2e-7 * std::abs(want[i])) << name << " frequency " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenTest, ::testing::ValuesIn(ModelNames()),
                         [](const auto& info) { return info.param; });

// The same weights with config.json in the older form (rope_theta + rope_scaling) give the
// same logits; transformers loads both forms to identical logits (checked by the script).
TEST(CpuBackend, LegacyRopeConfigFormGivesTheSameLogits) {
  namespace fs = std::filesystem;
  const std::string src = GoldenDir("llama31_rope_bf16");
  const fs::path dir = fs::temp_directory_path() / ("rag_legacy_rope_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(src + "/legacy_config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  fs::create_symlink(fs::absolute(src + "/model.safetensors"), dir / "model.safetensors");
  auto backend = MakeBackend(dir.string());
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->config().rope_scaling.type, "llama3");
  JsonValue golden = LoadGolden("llama31_rope_bf16");
  const JsonValue& prompt = golden.Find("prompts")->items().back();
  std::vector<int32_t> ids = JsonInts(*prompt.Find("ids"));
  std::vector<float> logits = Forward(*backend, {Seq(ids, 0, 0, static_cast<int>(ids.size()))});
  EXPECT_LE(RelError(logits.data(), JsonFloats(*prompt.Find("last_logits"))), kTolerance);
  fs::remove_all(dir);
}

TEST(CpuBackend, RejectsBadInputs) {
  auto backend = MakeBackend(GoldenDir("gqa_untied_f32"));
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->info().block_size, kBlockSize);
  EXPECT_EQ(backend->info().num_blocks, kNumBlocks);
  auto forward = [&](SequenceInput s) {
    ForwardBatch batch;
    batch.sequences.push_back(std::move(s));
    return backend->Forward(batch).status();
  };
  Status st = forward(Seq({1, 600}, 0, 0, 2));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("token id 600"), std::string::npos) << st.message();
  SequenceInput short_table = Seq({1, 2}, 15, 0, 16);  // positions 15, 16 need 2 blocks
  st = forward(short_table);
  EXPECT_NE(st.message().find("block table"), std::string::npos) << st.message();
  st = forward(Seq({1}, 512, 0, 513));
  EXPECT_NE(st.message().find("max_position_embeddings"), std::string::npos) << st.message();
  SequenceInput bad_block = Seq({1}, 0, 0, 1);
  bad_block.block_table = {kNumBlocks};
  EXPECT_EQ(forward(bad_block).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(forward(Seq({}, 0, 0, 1)).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rag
