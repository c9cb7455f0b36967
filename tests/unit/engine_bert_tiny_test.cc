// The CPU BERT encoder on a tiny random-weight model (tests/data/bert-tiny, from
// tools/make_tiny_bert.py): last hidden states against Hugging Face transformers' for sequences
// of 1 to 600 tokens packed into one call (2 heads of 32 dims, LayerNorm weights away from 1 and
// 0: shapes and values the bundled MiniLM does not exercise).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/bert/bert_model.h"
#include "tests/testing/golden_json.h"

namespace rag {
namespace {

const std::string kDir = std::string(RAG_TEST_DATA_DIR) + "/bert-tiny";

TEST(BertTinyModelTest, PackedHiddenStatesMatchTransformers) {
  auto model = BertModel::Load(kDir);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const JsonValue golden = testing::LoadJsonFile(kDir + "/golden.json");
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<float>> want;
  for (const JsonValue& s : golden.Find("sequences")->items()) {
    seqs.push_back(testing::JsonInts(*s.Find("ids")));
    for (const JsonValue& row : s.Find("hidden")->items()) want.push_back(testing::JsonFloats(row));
  }
  std::vector<float> got;
  ASSERT_TRUE((*model)->Forward(seqs, nullptr, &got).ok());
  const int64_t h = (*model)->config().hidden;
  ASSERT_EQ(got.size(), want.size() * static_cast<size_t>(h));
  // fp32 on both sides, other summation orders: within 1e-4 of the row's scale (LayerNorm
  // outputs are O(1)); a wrong position, head or sequence boundary is off by O(1).
  for (size_t r = 0; r < want.size(); ++r) {
    float scale = 0;
    for (float v : want[r]) scale = std::max(scale, std::fabs(v));
    for (int64_t j = 0; j < h; ++j) {
      ASSERT_NEAR(got[r * h + j], want[r][j], 1e-4f * scale) << "row " << r << " dim " << j;
    }
  }
}

}  // namespace
}  // namespace rag
