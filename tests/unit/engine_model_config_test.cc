// LoadModelConfig: both rope forms, eos merging, defaults, and errors that name file and field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "engine/model_config.h"

namespace rag {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBase = R"("architectures": ["LlamaForCausalLM"], "vocab_size": 1000,
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096)";

class ModelConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("rag_model_config_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  StatusOr<ModelConfig> Load(const std::string& config_body, const std::string& generation = "") {
    EXPECT_TRUE(WriteFileAtomic(dir_ + "/config.json", "{" + config_body + "}").ok());
    if (!generation.empty()) {
      EXPECT_TRUE(WriteFileAtomic(dir_ + "/generation_config.json", generation).ok());
    }
    return LoadModelConfig(dir_);
  }
  // The error message of a config that must fail; checks that it names the config file.
  std::string Error(const std::string& body) {
    auto c = Load(body);
    EXPECT_FALSE(c.ok()) << body;
    if (c.ok()) return "";
    EXPECT_NE(c.status().message().find("config.json"), std::string::npos) << c.status().message();
    return c.status().message();
  }

  std::string dir_;
};

TEST_F(ModelConfigTest, ReadsFieldsAndDefaults) {
  auto c = Load(std::string(kBase) + R"(, "eos_token_id": 2, "bos_token_id": 1,
      "tie_word_embeddings": true, "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16")");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->vocab_size, 1000);
  EXPECT_EQ(c->head_dim, 16);  // 64 / 4
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->rope_scaling.type, "");
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_ids, std::vector<int32_t>({2}));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST_F(ModelConfigTest, ExplicitHeadDimAndKvHeadsDefault) {
  std::string body = R"("architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 48,
      "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "head_dim": 32,
      "max_position_embeddings": 64)";
  auto c = Load(body);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->num_key_value_heads, 4);
}

TEST_F(ModelConfigTest, MergesEosIdsOfBothFiles) {
  auto c = Load(std::string(kBase) + R"(, "eos_token_id": [5, 7])",
                R"({"eos_token_id": [7, 9], "bos_token_id": 3})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->eos_token_ids, std::vector<int32_t>({5, 7, 9}));
  EXPECT_EQ(c->bos_token_id, 3);  // config.json had none
  auto d = Load(std::string(kBase) + R"(, "eos_token_id": null)", R"({"eos_token_id": 8})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->eos_token_ids, std::vector<int32_t>({8}));
  auto bad = Load(kBase, R"({"eos_token_id": "x"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("generation_config.json"), std::string::npos);
  EXPECT_NE(bad.status().message().find("eos_token_id"), std::string::npos);
}

TEST_F(ModelConfigTest, ReadsBothRopeForms) {
  const std::string fields = R"("factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192)";
  auto legacy = Load(std::string(kBase) + R"(, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", )" + fields + "}");
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString();
  auto older_key = Load(std::string(kBase) + R"(, "rope_theta": 500000.0,
      "rope_scaling": {"type": "llama3", )" + fields + "}");
  ASSERT_TRUE(older_key.ok()) << older_key.status().ToString();
  auto newer = Load(std::string(kBase) + R"(, "rope_parameters": {"rope_theta": 500000.0,
      "rope_type": "llama3", )" + fields + "}");
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  for (const ModelConfig* c : {&*legacy, &*older_key, &*newer}) {
    EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
    EXPECT_EQ(c->rope_scaling.type, "llama3");
    EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
    EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
    EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
    EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  }
  auto plain = Load(std::string(kBase) + R"(, "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"})");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_DOUBLE_EQ(plain->rope_theta, 1e6);
  EXPECT_EQ(plain->rope_scaling.type, "");
}

TEST_F(ModelConfigTest, ErrorsNameTheField) {
  EXPECT_NE(Error(R"("architectures": ["MistralForCausalLM"], "vocab_size": 1)").find("architectures"),
            std::string::npos);
  EXPECT_NE(Error(R"("vocab_size": 1)").find("architectures"), std::string::npos);
  std::string no_vocab = kBase;
  no_vocab.replace(no_vocab.find("\"vocab_size\": 1000,"), 19, "");
  EXPECT_NE(Error(no_vocab).find("\"vocab_size\" is missing"), std::string::npos);
  std::string wrong_type = kBase;
  wrong_type.replace(wrong_type.find("\"hidden_size\": 64"), 17, "\"hidden_size\": \"64\"");
  EXPECT_NE(Error(wrong_type).find("\"hidden_size\" must be an integer"), std::string::npos);
  std::string bad_heads = std::string(kBase);
  bad_heads.replace(bad_heads.find("\"num_key_value_heads\": 2"), 24, "\"num_key_value_heads\": 3");
  EXPECT_NE(Error(bad_heads).find("num_key_value_heads"), std::string::npos);
  std::string neg = std::string(kBase);
  neg.replace(neg.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": -2");
  EXPECT_NE(Error(neg).find("num_hidden_layers"), std::string::npos);
  EXPECT_NE(Error(std::string(kBase) + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4})")
                .find("yarn"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kBase) + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8})")
                .find("low_freq_factor"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kBase) + R"(, "rope_parameters": 5)").find("rope_parameters"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kBase) + R"(, "attention_bias": true)").find("attention_bias"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kBase) + R"(, "eos_token_id": 5000)").find("eos token id 5000"),
            std::string::npos);
  EXPECT_NE(Error("\"architectures\": [\"LlamaForCausalLM\"],").find("malformed"), std::string::npos);
}

TEST_F(ModelConfigTest, MissingConfigIsNotFound) {
  auto c = LoadModelConfig(dir_ + "/nowhere");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace rag
