// GGUF: the container's validation on files written here, dequantisation against gguf-py's
// (tests/data/gguf/dequant_blocks.json), and the default model against Hugging Face
// transformers (tests/data/gguf/smollm2_golden.json; both from tools/make_gguf_golden.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/gguf.h"
#include "engine/gguf_config.h"
#ifdef RAG_HAVE_TOKENIZER
#include "engine/model_loader.h"
#endif

namespace rag {
namespace {

// Writes GGUF files byte by byte, so tests can also write broken ones.
class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3) { U32(0x46554747), U32(version); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void Str(const std::string& s) { U64(s.size()), Raw(s.data(), s.size()); }
  void Raw(const void* p, size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  void Counts(uint64_t tensors, uint64_t kvs) { U64(tensors), U64(kvs); }
  void KvU32(const std::string& k, uint32_t v) { Str(k), U32(4), U32(v); }
  void KvStr(const std::string& k, const std::string& v) { Str(k), U32(8), Str(v); }
  void KvStrArray(const std::string& k, const std::vector<std::string>& v) {
    Str(k), U32(9), U32(8), U64(v.size());
    for (const auto& s : v) Str(s);
  }
  void Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    Str(name), U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    U32(type), U64(offset);
  }
  void Align(size_t a = 32) { bytes_.resize((bytes_.size() + a - 1) / a * a, '\0'); }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

std::string WriteTemp(const std::string& bytes, const std::string& tag) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("rag_gguf_" + tag + "_" + std::to_string(getpid()) + ".gguf")).string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// A small valid file: every scalar kind we read, an array, two F32 tensors and one Q5_0.
std::string SmallFile() {
  GgufWriter w;
  w.Counts(3, 4);
  w.KvStr("general.architecture", "llama");
  w.KvU32("llama.block_count", 2);
  w.Str("llama.attention.layer_norm_rms_epsilon"), w.U32(6);
  const float eps = 1e-5f;
  w.Raw(&eps, 4);
  w.KvStrArray("tokenizer.ggml.tokens", {"a", "b", "c"});
  w.Tensor("a.weight", {4, 2}, 0, 0);
  w.Tensor("b.weight", {3}, 0, 32);
  w.Tensor("q5.weight", {32}, 6, 64);
  w.Align();
  std::string data(96, '\0');
  for (int i = 0; i < 8; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(&data[4 * i], &v, 4);
  }
  w.Raw(data.data(), data.size());
  return w.bytes();
}

TEST(GgufFileTest, ReadsMetadataAndTensors) {
  const std::string path = WriteTemp(SmallFile(), "small");
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->GetInt("llama.block_count"), 2);
  EXPECT_NEAR(*(*f)->GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ((*(*f)->GetArray("tokenizer.ggml.tokens", GgufValueType::kString))->at(2).s, "c");
  EXPECT_FALSE((*f)->GetInt("general.architecture").ok());
  EXPECT_EQ((*f)->GetInt("missing.key").status().code(), StatusCode::kNotFound);
  std::vector<float> a;
  ASSERT_TRUE((*f)->ReadFloat("a.weight", {4, 2}, &a).ok());
  EXPECT_EQ(a, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  Status wrong = (*f)->ReadFloat("a.weight", {2, 4}, &a);
  EXPECT_NE(wrong.message().find("a.weight has dims [4, 2], expected [2, 4]"), std::string::npos) << wrong.message();
  Status q5 = (*f)->ReadFloat("q5.weight", {}, &a);
  EXPECT_EQ(q5.code(), StatusCode::kUnsupported);
  EXPECT_NE(q5.message().find("q5.weight"), std::string::npos) << q5.message();
  EXPECT_NE(q5.message().find("Q5_0"), std::string::npos) << q5.message();
  std::filesystem::remove(path);
}

TEST(GgufFileTest, EveryTruncationIsAClearError) {
  const std::string full = SmallFile();
  // The last tensor (Q5_0, 22 bytes at data offset 64) ends 10 bytes before the padded end.
  const size_t needed = full.size() - 10;
  for (size_t n = 0; n < needed; ++n) {
    const std::string path = WriteTemp(full.substr(0, n), "trunc");
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes opened";
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
    std::filesystem::remove(path);
  }
}

TEST(GgufFileTest, RefusesInconsistentFiles) {
  auto open = [](GgufWriter& w, const std::string& tag) {
    const std::string path = WriteTemp(w.bytes(), tag);
    auto f = GgufFile::Open(path);
    std::filesystem::remove(path);
    return f.ok() ? std::string("ok") : f.status().message();
  };
  GgufWriter magic;
  magic.bytes()[0] = 'X';
  magic.Counts(0, 0);
  EXPECT_NE(open(magic, "magic").find("not a GGUF file"), std::string::npos);
  GgufWriter v1(1);
  v1.Counts(0, 0);
  EXPECT_NE(open(v1, "v1").find("GGUF version 1"), std::string::npos);
  GgufWriter v2(2);
  v2.Counts(0, 0);
  EXPECT_EQ(open(v2, "v2"), "ok");
  GgufWriter past_end;
  past_end.Counts(1, 0);
  past_end.Tensor("big.weight", {1024}, 0, 0);
  past_end.Align();
  EXPECT_NE(open(past_end, "past").find("tensor big.weight (F32, 4096 bytes"), std::string::npos);
  GgufWriter unaligned;
  unaligned.Counts(1, 0);
  unaligned.Tensor("t", {1}, 0, 4);
  EXPECT_NE(open(unaligned, "unaligned").find("not a multiple of general.alignment"), std::string::npos);
  GgufWriter bad_type;
  bad_type.Counts(1, 0);
  bad_type.Tensor("odd.weight", {32}, 99, 0);
  EXPECT_NE(open(bad_type, "type").find("odd.weight has unknown ggml type 99"), std::string::npos);
  GgufWriter partial_block;
  partial_block.Counts(1, 0);
  partial_block.Tensor("q.weight", {48}, 2, 0);
  EXPECT_NE(open(partial_block, "block").find("not a multiple of the Q4_0 block"), std::string::npos);
  GgufWriter dup;
  dup.Counts(0, 2);
  dup.KvU32("k", 1);
  dup.KvU32("k", 2);
  EXPECT_NE(open(dup, "dup").find("k appears twice"), std::string::npos);
  GgufWriter huge_array;
  huge_array.Counts(0, 1);
  huge_array.Str("a"), huge_array.U32(9), huge_array.U32(8), huge_array.U64(1ull << 60);
  EXPECT_NE(open(huge_array, "huge").find("truncated"), std::string::npos);
}

TEST(GgufDequantTest, MatchesGgufPy) {
  auto text = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/gguf/dequant_blocks.json");
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto root = ReadJson(*text, "dequant_blocks.json");
  ASSERT_TRUE(root.ok());
  const std::map<std::string, GgmlType> types = {
      {"F32", GgmlType::kF32}, {"F16", GgmlType::kF16}, {"BF16", GgmlType::kBF16}, {"Q8_0", GgmlType::kQ8_0},
      {"Q4_0", GgmlType::kQ4_0}, {"Q4_1", GgmlType::kQ4_1}, {"Q4_K", GgmlType::kQ4_K}, {"Q6_K", GgmlType::kQ6_K}};
  size_t checked = 0;
  for (const JsonValue& b : root->Find("blocks")->items()) {
    const std::string name = b.Find("type")->as_string();
    const std::string hex = b.Find("hex")->as_string();
    std::vector<uint8_t> raw(hex.size() / 2);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    const int64_t n = b.Find("n")->as_int();
    std::vector<float> out(static_cast<size_t>(n));
    ASSERT_TRUE(Dequantize(types.at(name), raw.data(), n, out.data()).ok()) << name;
    const auto& bits = b.Find("expected_bits")->items();
    for (int64_t i = 0; i < n; ++i) {
      uint32_t got;
      std::memcpy(&got, &out[static_cast<size_t>(i)], 4);
      ASSERT_EQ(got, static_cast<uint32_t>(bits[static_cast<size_t>(i)].as_int())) << name << " value " << i;
    }
    ++checked;
  }
  EXPECT_EQ(checked, types.size());
  EXPECT_EQ(Dequantize(GgmlType::kQ5_K, nullptr, 256, nullptr).code(), StatusCode::kUnsupported);
  EXPECT_EQ(Dequantize(GgmlType::kQ4_0, nullptr, 31, nullptr).code(), StatusCode::kInvalidArgument);
}

#ifdef RAG_HAVE_TOKENIZER
// The bundled default model against transformers (fp32 on the same dequantised weights).
TEST(GgufGoldenTest, SmolLM2MatchesTransformers) {
  const std::string model = std::string(RAG_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " is missing: run scripts/setup.sh";
  auto text = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/gguf/smollm2_golden.json");
  ASSERT_TRUE(text.ok());
  auto golden = ReadJson(*text, "smollm2_golden.json");
  ASSERT_TRUE(golden.ok());
  CpuBackendOptions options;
  options.num_blocks = 16;  // 256 positions: the longest prompt plus 16 tokens
  auto m = LoadModel(model, options);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->name, "SmolLM2-135M-Instruct.Q4_1.gguf");
  auto ids_of = [](const JsonValue& a) {
    std::vector<int32_t> v;
    for (const JsonValue& x : a.items()) v.push_back(static_cast<int32_t>(x.as_int()));
    return v;
  };
  for (const JsonValue& t : golden->Find("texts")->items()) {
    auto ids = m->tokenizer->Encode(t.Find("text")->as_string());
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, ids_of(*t.Find("ids"))) << t.Find("text")->as_string();
  }
  // Logits: |ours - transformers| <= 1e-3 + 1e-4 * |ref| (the reference is rounded to 1e-4).
  double worst = 0;
  for (const JsonValue& p : golden->Find("prompts")->items()) {
    const std::vector<int32_t> prompt = ids_of(*p.Find("ids"));
    auto ids = m->tokenizer->Encode(p.Find("text")->as_string());
    ASSERT_TRUE(ids.ok());
    ASSERT_EQ(*ids, prompt);
    SequenceInput seq;
    seq.tokens = prompt;
    for (int b = 0; b < options.num_blocks; ++b) seq.block_table.push_back(b);
    auto logits = m->backend->Forward(ForwardBatch{{seq}});
    ASSERT_TRUE(logits.ok()) << logits.status().message();
    const auto top_ids = ids_of(*p.Find("top_ids"));
    const auto& top_logits = p.Find("top_logits")->items();
    for (size_t i = 0; i < top_ids.size(); ++i) {
      const double ref = top_logits[i].as_double();
      const double got = (*logits)[static_cast<size_t>(top_ids[i])];
      worst = std::max(worst, std::abs(got - ref));
      EXPECT_NEAR(got, ref, 1e-3 + 1e-4 * std::abs(ref)) << "token " << top_ids[i];
    }
    // Greedy decoding, one token at a time through the paged cache.
    std::vector<int32_t> generated;
    std::vector<float> last = std::move(*logits);
    for (int step = 0; step < 16; ++step) {
      const auto next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
      generated.push_back(next);
      if (next == m->backend->config().eos_token_ids.at(0)) break;  // transformers stops there
      seq.start_pos = static_cast<int32_t>(prompt.size() + generated.size() - 1);
      seq.tokens = {next};
      auto l = m->backend->Forward(ForwardBatch{{seq}});
      ASSERT_TRUE(l.ok()) << l.status().message();
      last = std::move(*l);
    }
    EXPECT_EQ(generated, ids_of(*p.Find("greedy"))) << p.Find("text")->as_string();
  }
  std::printf("largest |logit - transformers| over the top-40 logits: %.2e\n", worst);
}
#endif

}  // namespace
}  // namespace rag
