// `rag generate` through the binary: --raw on a random-weight model written by transformers
// gives transformers' greedy tokens (tools/make_generate_golden.py), and a wrong model
// directory is one clear error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using Json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kModel = std::string(RAG_TEST_DATA_DIR) + "/golden/llama3_vocab_bf16";
const std::string kTokenizer = std::string(RAG_TEST_DATA_DIR) + "/llama3-tokenizer/tokenizer.json";

// A model directory as users have it: the weights and configs plus tokenizer.json.
std::string MakeModelDir(const testing::TempDir& dir) {
  const std::string model = dir.file("model");
  fs::create_directories(model);
  for (const auto& e : fs::directory_iterator(kModel)) {
    fs::create_symlink(e.path(), model + "/" + e.path().filename().string());
  }
  fs::create_symlink(kTokenizer, model + "/tokenizer.json");
  return model;
}

TEST(CliGenerate, RawGreedyTokensEqualTransformers) {
  testing::TempDir dir;
  const std::string model = MakeModelDir(dir);
  std::ifstream in(kModel + "/generate_golden.json");
  const Json golden = Json::parse(in);
  ASSERT_GE(golden.size(), 3u);
  for (const auto& g : golden) {
    const std::string text = g["text"];
    const auto r = RunCommand(ShellQuote(RAG_BINARY) + " generate --raw --json --threads 2 --max-tokens " +
                                  std::to_string(g["ids"].size()) + " --model " + ShellQuote(model),
                              text);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const Json out = Json::parse(r.out);
    EXPECT_EQ(out["prompt_ids"], g["prompt_ids"]) << text;
    EXPECT_EQ(out["ids"], g["ids"]) << text;
  }
}

TEST(CliGenerate, StopStringEndsTheTextBeforeIt) {
  testing::TempDir dir;
  const std::string model = MakeModelDir(dir);
  const std::string cmd = ShellQuote(RAG_BINARY) + " generate --raw --json --threads 2 --max-tokens 16 --model " +
                          ShellQuote(model);
  const auto full = RunCommand(cmd, "The quick brown fox");
  ASSERT_EQ(full.exit_code, 0) << full.out;
  const Json all = Json::parse(full.out);
  const std::string text = all["text"];
  ASSERT_GT(text.size(), 12u);
  // Stop at 4 ASCII letters past the first few bytes (a random model's text also holds half
  // characters, which JSON shows as U+FFFD; a stop string must be real text).
  size_t at = std::string::npos;
  for (size_t i = 4; i + 4 <= text.size() && at == std::string::npos; ++i) {
    bool letters = true;
    for (size_t k = 0; k < 4; ++k) letters = letters && std::isalpha(static_cast<unsigned char>(text[i + k]));
    if (letters) at = i;
  }
  ASSERT_NE(at, std::string::npos) << text;
  const std::string stop = text.substr(at, 4);
  const size_t cut = text.find(stop);
  const auto stopped = RunCommand(cmd + " --stop " + ShellQuote(stop), "The quick brown fox");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.out;
  const Json part = Json::parse(stopped.out);
  EXPECT_EQ(part["finish_reason"], "stop");
  EXPECT_EQ(part["text"], text.substr(0, cut));
  EXPECT_LT(part["ids"].size(), all["ids"].size());
}

TEST(CliGenerate, WrongModelDirectoriesAreClearErrors) {
  testing::TempDir dir;
  auto missing = RunCommand(ShellQuote(RAG_BINARY) + " generate --model " + ShellQuote(dir.file("nope")) +
                                " 2>&1",
                            "hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("tokenizer.json"), std::string::npos) << missing.out;

  // Tokenizer present, weights missing: the error names what is missing.
  const std::string partial = dir.file("partial");
  fs::create_directories(partial);
  fs::copy_file(kTokenizer, partial + "/tokenizer.json");
  fs::copy_file(kModel + "/config.json", partial + "/config.json");
  auto no_weights = RunCommand(ShellQuote(RAG_BINARY) + " generate --raw --model " + ShellQuote(partial) + " 2>&1",
                               "hi");
  EXPECT_EQ(no_weights.exit_code, 1);
  EXPECT_NE(no_weights.out.find("safetensors"), std::string::npos) << no_weights.out;
  EXPECT_EQ(std::count(no_weights.out.begin(), no_weights.out.end(), '\n'), 1) << no_weights.out;

  // The Llama 3 base tokenizer has no ChatML tokens: chat mode says so instead of guessing.
  const std::string model = MakeModelDir(dir);
  auto chat = RunCommand(ShellQuote(RAG_BINARY) + " generate --model " + ShellQuote(model) + " 2>&1", "hi");
  EXPECT_EQ(chat.exit_code, 1);
  EXPECT_NE(chat.out.find("<|im_start|>"), std::string::npos) << chat.out;
}

}  // namespace
}  // namespace rag
