// The BERT embedder against Hugging Face transformers on the real all-MiniLM-L6-v2
// (tests/data/embedder/minilm_golden.json, from tools/make_embedder_golden.py): token ids exactly,
// embeddings within 1e-4. Skips when scripts/setup.sh has not fetched the model. Also the errors
// of a missing or incomplete model directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/bert/embedder.h"
#include "engine/bert/wordpiece.h"

namespace rag {
namespace {

namespace fs = std::filesystem;

const std::string kModelDir = std::string(RAG_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<float> embedding;
};

std::vector<GoldenCase> ReadGolden(int* max_len) {
  auto text = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/embedder/minilm_golden.json");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return {};
  auto root = ReadJson(*text, "minilm_golden.json");
  EXPECT_TRUE(root.ok()) << root.status().ToString();
  if (!root.ok()) return {};
  *max_len = static_cast<int>(root->Find("max_seq_length")->as_int());
  std::vector<GoldenCase> cases;
  for (const JsonValue& c : root->Find("cases")->items()) {
    GoldenCase g;
    g.text = c.Find("text")->as_string();
    for (const JsonValue& id : c.Find("ids")->items())
      g.ids.push_back(static_cast<int32_t>(id.as_int()));
    for (const JsonValue& v : c.Find("embedding")->items())
      g.embedding.push_back(static_cast<float>(v.as_double()));
    cases.push_back(std::move(g));
  }
  return cases;
}

TEST(BertEmbedderGoldenTest, TokenIdsMatchHuggingFace) {
  if (!fs::exists(kModelDir)) GTEST_SKIP() << kModelDir << " is missing: run scripts/setup.sh";
  auto tok = WordPieceTokenizer::Load(kModelDir + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  int max_len = 0;
  auto cases = ReadGolden(&max_len);
  ASSERT_GE(cases.size(), 40u);
  for (const GoldenCase& g : cases) {
    auto ids = (*tok)->Encode(g.text, max_len);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, g.ids) << "text: " << g.text;
  }
}

TEST(BertEmbedderGoldenTest, EmbeddingsMatchHuggingFace) {
  if (!fs::exists(kModelDir)) GTEST_SKIP() << kModelDir << " is missing: run scripts/setup.sh";
  auto embedder = LoadBertEmbedder(kModelDir, 2);
  ASSERT_TRUE(embedder.ok()) << embedder.status().ToString();
  EXPECT_EQ((*embedder)->name(), "all-MiniLM-L6-v2");
  EXPECT_EQ((*embedder)->dim(), 384);
  int max_len = 0;
  auto cases = ReadGolden(&max_len);
  std::vector<std::string> texts;
  for (const GoldenCase& g : cases) texts.push_back(g.text);
  auto out = (*embedder)->Embed(texts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ((*out)[i].size(), 384u);
    float worst = 0;
    for (size_t j = 0; j < 384; ++j)
      worst = std::max(worst, std::fabs((*out)[i][j] - cases[i].embedding[j]));
    EXPECT_LE(worst, 1e-4f) << "text: " << cases[i].text;
  }
  // One at a time gives the same vectors as the batch (packing does not leak across texts).
  auto single = (*embedder)->Embed({texts[3]});
  ASSERT_TRUE(single.ok());
  for (size_t j = 0; j < 384; ++j) EXPECT_NEAR((*single)[0][j], (*out)[3][j], 1e-5f);
  auto none = (*embedder)->Embed({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(BertEmbedderTest, InvalidUtf8TextIsAnError) {
  if (!fs::exists(kModelDir)) GTEST_SKIP() << kModelDir << " is missing: run scripts/setup.sh";
  auto embedder = LoadBertEmbedder(kModelDir, 1);
  ASSERT_TRUE(embedder.ok()) << embedder.status().ToString();
  auto out = (*embedder)->Embed({"fine", "bad \xFF"});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("text 1"), std::string::npos) << out.status().message();
}

class BertEmbedderDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("rag_bert_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name, text).ok());
  }
  std::string dir_;
};

TEST_F(BertEmbedderDirTest, MissingDirectoryNamesSetup) {
  auto e = LoadBertEmbedder(dir_ + "/nope", 1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("scripts/setup.sh"), std::string::npos)
      << e.status().message();
}

TEST_F(BertEmbedderDirTest, MissingFilesAreNamed) {
  auto e = LoadBertEmbedder(dir_, 1);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("config.json"), std::string::npos) << e.status().message();
  Write("config.json",
        R"({"vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,
      "intermediate_size":8,"max_position_embeddings":16,"type_vocab_size":2,"hidden_act":"gelu"})");
  e = LoadBertEmbedder(dir_, 1);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("tokenizer.json"), std::string::npos) << e.status().message();
  Write("tokenizer.json", "{}");
  e = LoadBertEmbedder(dir_, 1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("model.safetensors"), std::string::npos)
      << e.status().message();
}

TEST_F(BertEmbedderDirTest, PytorchOnlyWeightsNameTheConverter) {
  Write("config.json",
        R"({"vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,
      "intermediate_size":8,"max_position_embeddings":16,"type_vocab_size":2,"hidden_act":"gelu"})");
  Write("tokenizer.json", "{}");
  Write("pytorch_model.bin", "PK");  // never opened: only its presence matters
  auto e = LoadBertEmbedder(dir_, 1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  const std::string& m = e.status().message();
  EXPECT_NE(m.find(dir_ + "/model.safetensors: no such file"), std::string::npos) << m;
  EXPECT_NE(m.find("python3 tools/convert_bert_weights.py " + dir_), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST_F(BertEmbedderDirTest, UnsupportedActivationIsRefused) {
  Write("config.json",
        R"({"vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,
      "intermediate_size":8,"max_position_embeddings":16,"type_vocab_size":2,"hidden_act":"relu"})");
  Write("tokenizer.json", "{}");
  auto e = LoadBertEmbedder(dir_, 1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(e.status().message().find("hidden_act"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace rag
