// SafetensorsReader on files the test writes itself (single and sharded), and on the golden
// models of tools/make_golden_llama.py; every damaged file is a clear error naming the tensor
// or the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace rag {
namespace {

namespace fs = std::filesystem;

// A safetensors file: 8-byte little-endian header length, the header, the data.
std::string MakeFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("rag_safetensors_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, bytes).ok());
    return path;
  }
  // Opens a single file with this header and data; returns the error message ("" if ok).
  std::string OpenError(const std::string& header, const std::string& data) {
    auto r = SafetensorsReader::OpenFile(Write("model.safetensors", MakeFile(header, data)));
    return r.ok() ? "" : r.status().message();
  }

  std::string dir_;
};

TEST_F(SafetensorsTest, ReadsEveryDtype) {
  // a: F32 [2, 2]; b: BF16 [3] (1.0, -2.0, 0.5); c: F16 [3] (1.0, -2.0, 2^-24 subnormal).
  std::string data = Floats({1, 2, 3, 4});
  const uint16_t bf16[] = {0x3f80, 0xc000, 0x3f00};
  const uint16_t f16[] = {0x3c00, 0xc000, 0x0001};
  data.append(reinterpret_cast<const char*>(bf16), 6);
  data.append(reinterpret_cast<const char*>(f16), 6);
  std::string header = R"({"__metadata__": {"format": "pt"},
      "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
      "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
      "c": {"dtype": "F16", "shape": [3], "data_offsets": [22, 28]}})";
  auto r = SafetensorsReader::OpenFile(Write("model.safetensors", MakeFile(header, data)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->Names(), std::vector<std::string>({"a", "b", "c"}));
  auto a = (*r)->Get("a", {2, 2});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::vector<float> out(4);
  SafetensorsReader::ToFloat(**a, out.data());
  EXPECT_EQ(out, std::vector<float>({1, 2, 3, 4}));
  auto b = (*r)->Get("b", {3});
  ASSERT_TRUE(b.ok());
  SafetensorsReader::ToFloat(**b, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 3), std::vector<float>({1.0f, -2.0f, 0.5f}));
  auto c = (*r)->Get("c", {3});
  ASSERT_TRUE(c.ok());
  SafetensorsReader::ToFloat(**c, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 3),
            std::vector<float>({1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  EXPECT_TRUE(std::isinf(F16ToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(F16ToFloat(0x7e00)));
}

TEST_F(SafetensorsTest, MissingTensorAndWrongShapeNameTheTensor) {
  auto r = SafetensorsReader::OpenFile(Write(
      "model.safetensors",
      MakeFile(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", Floats({1, 2}))));
  ASSERT_TRUE(r.ok());
  auto missing = (*r)->Get("model.norm.weight");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("\"model.norm.weight\""), std::string::npos);
  EXPECT_NE(missing.status().message().find("model.safetensors"), std::string::npos);
  auto shape = (*r)->Get("w", {2, 1});
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(shape.status().message().find("\"w\" has shape [2], expected [2, 1]"), std::string::npos)
      << shape.status().message();
}

TEST_F(SafetensorsTest, DamagedFilesAreClearErrors) {
  const std::string ok_header = R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  // Truncated: data section shorter than the header says; header cut; no length at all.
  std::string msg = OpenError(ok_header, Floats({1}));
  EXPECT_NE(msg.find("\"w\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  std::string whole = MakeFile(ok_header, Floats({1, 2}));
  auto r = SafetensorsReader::OpenFile(Write("cut.safetensors", whole.substr(0, 20)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("cut.safetensors"), std::string::npos);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
  r = SafetensorsReader::OpenFile(Write("tiny.safetensors", "abc"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tiny.safetensors"), std::string::npos);
  // A header length beyond the limit.
  std::string huge(8, '\0');
  huge[5] = 0x10;  // 2^44
  r = SafetensorsReader::OpenFile(Write("huge.safetensors", huge + "{}"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds the limit"), std::string::npos);
  // Unknown dtype, named.
  msg = OpenError(R"({"q": {"dtype": "F8_E5M2", "shape": [8], "data_offsets": [0, 8]}})", Floats({1, 2}));
  EXPECT_NE(msg.find("\"q\" has dtype F8_E5M2"), std::string::npos) << msg;
  // Byte count not matching the shape.
  msg = OpenError(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", Floats({1, 2}));
  EXPECT_NE(msg.find("\"w\": 8 bytes of data for shape [3]"), std::string::npos) << msg;
  // Overlapping tensors.
  msg = OpenError(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                  Floats({1, 2}));
  EXPECT_NE(msg.find("overlaps"), std::string::npos) << msg;
  // Offsets out of order, malformed header.
  msg = OpenError(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", Floats({1, 2}));
  EXPECT_NE(msg.find("\"w\""), std::string::npos) << msg;
  msg = OpenError(R"({"w": )", "");
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
}

// Found by tests/fuzz/safetensors_fuzz: the element count wrapped around (2^40 * 2^40 = 2^80 is 0
// modulo 2^64), so a shape of 2^80 elements was accepted with 0 bytes of data, and numel()
// overflowed.
TEST_F(SafetensorsTest, ShapeWhoseElementCountOverflowsIsRefused) {
  std::string msg = OpenError(
      R"({"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 0]}})", "");
  EXPECT_NE(msg.find("\"w\": shape too large"), std::string::npos) << msg;
  msg = OpenError(
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]}})", "");
  EXPECT_NE(msg.find("shape too large"), std::string::npos) << msg;
  // A dimension of 0 after small ones is an empty tensor, as before.
  EXPECT_EQ(OpenError(R"({"w": {"dtype": "F32", "shape": [1099511627776, 0], "data_offsets": [0, 0]}})", ""), "");
}

TEST_F(SafetensorsTest, ShardedDirectory) {
  Write("model-1.safetensors",
        MakeFile(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", Floats({1})));
  Write("model-2.safetensors",
        MakeFile(R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", Floats({2})));
  Write("model.safetensors.index.json",
        R"({"metadata": {}, "weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})");
  auto r = SafetensorsReader::OpenDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->Has("a"));
  EXPECT_TRUE((*r)->Has("b"));
  // The index names a tensor its shard lacks; then a shard that does not exist.
  Write("model.safetensors.index.json",
        R"({"weight_map": {"a": "model-1.safetensors", "c": "model-2.safetensors"}})");
  r = SafetensorsReader::OpenDir(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"c\""), std::string::npos) << r.status().message();
  Write("model.safetensors.index.json", R"({"weight_map": {"a": "model-9.safetensors"}})");
  r = SafetensorsReader::OpenDir(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model-9.safetensors"), std::string::npos);
  Write("model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
  EXPECT_FALSE(SafetensorsReader::OpenDir(dir_).ok());
  fs::remove(dir_ + "/model.safetensors.index.json");
  r = SafetensorsReader::OpenDir(dir_);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

// The golden models load; dropping or reshaping a layer tensor of a real model is reported
// with its name by the CPU weight loader.
TEST_F(SafetensorsTest, GoldenModelsLoadAndIncompleteModelsFail) {
  const std::string golden = std::string(RAG_TEST_DATA_DIR) + "/golden/";
  for (const char* name : {"gqa_untied_f32", "mha_tied_f16", "llama31_rope_bf16", "llama3_vocab_bf16"}) {
    auto config = LoadModelConfig(golden + name);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto reader = SafetensorsReader::OpenDir(golden + name);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto weights = LoadCpuWeights(*config, **reader);
    EXPECT_TRUE(weights.ok()) << weights.status().ToString();
  }
  auto config = LoadModelConfig(golden + "gqa_untied_f32");
  ASSERT_TRUE(config.ok());
  ModelConfig wider = *config;
  wider.intermediate_size += 1;
  auto reader = SafetensorsReader::OpenDir(golden + "gqa_untied_f32");
  ASSERT_TRUE(reader.ok());
  auto w = LoadCpuWeights(wider, **reader);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("model.layers.0.mlp.gate_proj.weight"), std::string::npos)
      << w.status().message();
  ModelConfig deeper = *config;
  deeper.num_hidden_layers = 3;
  w = LoadCpuWeights(deeper, **reader);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("model.layers.2."), std::string::npos) << w.status().message();
  ModelConfig untied = *config;
  auto tied_config = LoadModelConfig(golden + "mha_tied_f16");
  auto tied_reader = SafetensorsReader::OpenDir(golden + "mha_tied_f16");
  ASSERT_TRUE(tied_config.ok() && tied_reader.ok());
  untied = *tied_config;
  untied.tie_word_embeddings = false;
  w = LoadCpuWeights(untied, **tied_reader);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("lm_head.weight"), std::string::npos) << w.status().message();
}

}  // namespace
}  // namespace rag
