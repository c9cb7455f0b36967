// A model directory that ships only pytorch_model.bin (tests/data/bert-tiny-bin: bert-tiny's
// weights saved by torch.save, some as strided and offset views; from tools/make_tiny_bert.py):
// the loader refuses it naming the converter, and once tools/convert_bert_weights.py has run it
// loads the very weights of tests/data/bert-tiny and encodes bit for bit like it. Runs the
// converter with Debian's python3 (standard library only); skips where there is no python3.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/bert/bert_model.h"
#include "tests/testing/golden_json.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

namespace fs = std::filesystem;

const std::string kTinyDir = std::string(RAG_TEST_DATA_DIR) + "/bert-tiny";
const std::string kBinDir = std::string(RAG_TEST_DATA_DIR) + "/bert-tiny-bin";

std::string Python() {
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(BertConvertTest, ConvertedPytorchWeightsEncodeExactlyLikeSafetensors) {
  const std::string python = Python();
  if (python.empty()) GTEST_SKIP() << "no python3 to run tools/convert_bert_weights.py";
  testing::TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  for (const char* f : {"config.json", "pytorch_model.bin"}) {
    fs::copy_file(kBinDir + "/" + f, tmp.file(f));
  }
  auto before = BertModel::Load(tmp.path());
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kNotFound);
  EXPECT_NE(before.status().message().find("python3 tools/convert_bert_weights.py " + tmp.path()),
            std::string::npos)
      << before.status().message();

  const testing::CommandResult r = testing::RunCommand(
      testing::ShellQuote(python) + " " +
      testing::ShellQuote(std::string(RAG_SOURCE_DIR) + "/tools/convert_bert_weights.py") + " " +
      testing::ShellQuote(tmp.path()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  // The weights as loaded (the strided and offset views of the .bin resolved), tensor by tensor.
  auto got = LoadBertWeights(tmp.path());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto want = LoadBertWeights(kTinyDir);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  EXPECT_TRUE(SameBits(got->word_emb, want->word_emb));
  EXPECT_TRUE(SameBits(got->pos_emb, want->pos_emb));
  EXPECT_TRUE(SameBits(got->type_emb, want->type_emb));
  EXPECT_TRUE(SameBits(got->emb_ln_g, want->emb_ln_g));
  EXPECT_TRUE(SameBits(got->emb_ln_b, want->emb_ln_b));
  ASSERT_EQ(got->layers.size(), want->layers.size());
  for (size_t i = 0; i < want->layers.size(); ++i) {
    const BertHostWeights::Layer &g = got->layers[i], &w = want->layers[i];
    EXPECT_TRUE(SameBits(g.qkv_w, w.qkv_w)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.qkv_b, w.qkv_b)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.o_w, w.o_w)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.o_b, w.o_b)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.ln1_g, w.ln1_g)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.ln1_b, w.ln1_b)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.up_w, w.up_w)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.up_b, w.up_b)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.down_w, w.down_w)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.down_b, w.down_b)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.ln2_g, w.ln2_g)) << "layer " << i;
    EXPECT_TRUE(SameBits(g.ln2_b, w.ln2_b)) << "layer " << i;
  }

  // And the encoder's outputs on the golden sequences (1 to 600 tokens): identical bits.
  auto converted = BertModel::Load(tmp.path());
  ASSERT_TRUE(converted.ok()) << converted.status().ToString();
  auto original = BertModel::Load(kTinyDir);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  std::vector<std::vector<int32_t>> seqs;
  const JsonValue golden = testing::LoadJsonFile(kTinyDir + "/golden.json");
  for (const JsonValue& s : golden.Find("sequences")->items())
    seqs.push_back(testing::JsonInts(*s.Find("ids")));
  std::vector<float> a, b;
  ASSERT_TRUE((*converted)->Forward(seqs, nullptr, &a).ok());
  ASSERT_TRUE((*original)->Forward(seqs, nullptr, &b).ok());
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(SameBits(a, b));
}

}  // namespace
}  // namespace rag
