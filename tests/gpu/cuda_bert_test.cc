// The BERT encoder on the GPU (engine/cuda/cuda_bert.cc) against transformers' hidden states of
// the tiny random model (tests/data/bert-tiny, tools/make_tiny_bert.py) and against the CPU
// encoder; with the bundled all-MiniLM-L6-v2 (when scripts/setup.sh has fetched it), the whole
// embedder on both devices.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/bert/bert_model.h"
#include "engine/bert/embedder.h"
#include "engine/cuda/cuda_bert.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/testing/golden_json.h"

namespace rag {
namespace {

const std::string kTiny = std::string(RAG_TEST_DATA_DIR) + "/bert-tiny";

// |got - want| <= tol * (max |want| of the row), row by row (rows of width h).
void ExpectRowsNear(const std::vector<float>& got, const std::vector<float>& want, int64_t h,
                    float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t r = 0; r * h < want.size() && bad < 10; ++r) {
    float scale = 0;
    for (int64_t j = 0; j < h; ++j) scale = std::max(scale, std::fabs(want[r * h + j]));
    for (int64_t j = 0; j < h && bad < 10; ++j) {
      if (!(std::fabs(got[r * h + j] - want[r * h + j]) <= tol * scale)) {
        ADD_FAILURE() << what << ": row " << r << " dim " << j << " got " << got[r * h + j]
                      << ", want " << want[r * h + j];
        ++bad;
      }
    }
  }
}

class CudaBertTest : public testing_gpu::GpuTest {};

TEST_F(CudaBertTest, HiddenStatesMatchTransformersAndTheCpuEncoder) {
  auto weights = LoadBertWeights(kTiny);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  auto gpu = CreateCudaBertEncoder(*weights, 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  auto cpu = BertModel::FromWeights(*weights);
  const JsonValue golden = testing::LoadJsonFile(kTiny + "/golden.json");
  std::vector<std::vector<int32_t>> seqs;
  std::vector<float> want;
  for (const JsonValue& s : golden.Find("sequences")->items()) {
    seqs.push_back(testing::JsonInts(*s.Find("ids")));
    for (const JsonValue& row : s.Find("hidden")->items()) {
      const std::vector<float> v = testing::JsonFloats(row);
      want.insert(want.end(), v.begin(), v.end());
    }
  }
  const int64_t h = weights->config.hidden;
  std::vector<float> got, oracle;
  ASSERT_STATUS_OK((*gpu)->Encode(seqs, &got));
  ASSERT_STATUS_OK(cpu->Forward(seqs, nullptr, &oracle));
  // fp32 everywhere, other summation orders (cuBLAS, the kernels' reductions): 1e-4 of the row.
  ExpectRowsNear(got, want, h, 1e-4f, "against transformers");
  ExpectRowsNear(got, oracle, h, 1e-4f, "against the CPU encoder");

  // A smaller batch after a larger one (buffers kept), then one larger again (buffers grown):
  // each sequence's rows do not depend on its neighbours.
  std::vector<float> one;
  ASSERT_STATUS_OK((*gpu)->Encode({seqs[2]}, &one));
  const size_t off = (seqs[0].size() + seqs[1].size()) * h;
  ExpectRowsNear(one, std::vector<float>(oracle.begin() + off, oracle.begin() + off + one.size()),
                 h, 1e-4f, "alone");
  std::vector<std::vector<int32_t>> many;
  for (int i = 0; i < 20; ++i) many.insert(many.end(), seqs.begin(), seqs.end());
  std::vector<float> big;
  ASSERT_STATUS_OK((*gpu)->Encode(many, &big));
  ASSERT_EQ(big.size(), 20 * got.size());
  ExpectRowsNear(std::vector<float>(big.end() - got.size(), big.end()), got, h, 1e-5f, "repeated");
}

TEST_F(CudaBertTest, BadInputsAreInvalidArgument) {
  auto weights = LoadBertWeights(kTiny);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  auto gpu = CreateCudaBertEncoder(*weights, 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  std::vector<float> out;
  EXPECT_EQ((*gpu)->Encode({{1, 2}, {}}, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*gpu)->Encode({{1, 500}}, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*gpu)->Encode({std::vector<int32_t>(641, 3)}, &out).code(), StatusCode::kInvalidArgument);
  BertHostWeights odd = *weights;
  odd.config.heads = 4;  // head size 16: not a multiple of 32
  EXPECT_EQ(CreateCudaBertEncoder(odd, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CudaBertTest, TheBundledEmbedderGivesTheSameVectorsOnBothDevices) {
  const std::string dir = std::string(RAG_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " is missing: run scripts/setup.sh";
  auto cpu = LoadBertEmbedder(dir, 2);
  auto gpu = LoadBertEmbedder(dir, 2, [](const BertHostWeights& w) { return CreateCudaBertEncoder(w, 0); });
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  const std::vector<std::string> texts = {
      "How do I install a package from the Debian archive?", "x",
      std::string(3000, 'a') + " a long text cut at the model's 256 tokens"};
  auto a = (*cpu)->Embed(texts);
  auto b = (*gpu)->Embed(texts);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    double dot = 0;
    for (size_t j = 0; j < (*a)[i].size(); ++j) dot += static_cast<double>((*a)[i][j]) * (*b)[i][j];
    EXPECT_GT(dot, 0.99999) << "text " << i;  // unit vectors: cosine
  }
}

}  // namespace
}  // namespace rag
