// The tensor-parallel plan (engine/dist/tp_plan.h) on the CPU: for 1, 2 and 4 ranks the slices
// cover every row and column once, and one Llama layer computed slice by slice, with the
// partial o and down products summed as the all-reduces will sum them, equals the whole layer
// (two positions of GQA attention, the SwiGLU MLP, lm_head by vocabulary rows).
#include "engine/dist/tp_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace rag {
namespace {

using Matrix = std::vector<float>;  // row-major

// y = W[rows, cols] x[cols], for a row range and a column range of W (n_cols columns in all).
std::vector<float> Product(const Matrix& w, int64_t n_cols, TpRange rows, TpRange cols,
                           const std::vector<float>& x) {
  std::vector<float> y(static_cast<size_t>(rows.size()), 0.0f);
  for (int64_t r = rows.begin; r < rows.end; ++r) {
    double s = 0;
    for (int64_t c = cols.begin; c < cols.end; ++c) s += double(w[r * n_cols + c]) * x[c - cols.begin];
    y[r - rows.begin] = static_cast<float>(s);
  }
  return y;
}

ModelConfig SmallConfig() {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;  // groups of 2
  c.head_dim = 4;
  return c;
}

struct Layer {
  Matrix wq, wk, wv, wo, wg, wu, wd, lm;
};

// The layer for one query (position 1) over two positions, computed over the given slices of
// heads and intermediate rows: returns (o partial, mlp partial on input xm, logits rows).
struct Partial {
  std::vector<float> o, mlp, logits;
};

Partial RunSlices(const ModelConfig& c, const Layer& w, const TpSlices& s, const std::vector<float>& x0,
            const std::vector<float>& x1, const std::vector<float>& xm) {
  const int64_t dim = c.hidden_size, hd = c.head_dim, group = c.num_attention_heads / c.num_key_value_heads;
  const TpRange all{0, dim};
  const std::vector<float> q = Product(w.wq, dim, s.q_rows, all, x1);
  const std::vector<float> k0 = Product(w.wk, dim, s.k_rows, all, x0), k1 = Product(w.wk, dim, s.k_rows, all, x1);
  const std::vector<float> v0 = Product(w.wv, dim, s.v_rows, all, x0), v1 = Product(w.wv, dim, s.v_rows, all, x1);
  std::vector<float> attn(static_cast<size_t>(s.q_rows.size()));
  for (int64_t h = 0; h < s.q_heads.size(); ++h) {
    const int64_t kv = (s.q_heads.begin + h) / group - s.kv_heads.begin;  // a head of this rank
    EXPECT_GE(kv, 0);
    EXPECT_LT(kv, s.kv_heads.size()) << "query head " << s.q_heads.begin + h << " needs another rank's KV";
    double a0 = 0, a1 = 0;
    for (int64_t d = 0; d < hd; ++d) {
      a0 += double(q[h * hd + d]) * k0[kv * hd + d];
      a1 += double(q[h * hd + d]) * k1[kv * hd + d];
    }
    const double m = std::max(a0, a1), e0 = std::exp(a0 - m), e1 = std::exp(a1 - m);
    for (int64_t d = 0; d < hd; ++d) {
      attn[h * hd + d] = static_cast<float>((e0 * v0[kv * hd + d] + e1 * v1[kv * hd + d]) / (e0 + e1));
    }
  }
  Partial p;
  p.o = Product(w.wo, c.num_attention_heads * hd, {0, dim}, s.q_rows, attn);  // row-parallel
  const std::vector<float> g = Product(w.wg, dim, s.inter, all, xm), u = Product(w.wu, dim, s.inter, all, xm);
  std::vector<float> act(g.size());
  for (size_t i = 0; i < g.size(); ++i) act[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  p.mlp = Product(w.wd, c.intermediate_size, {0, dim}, s.inter, act);  // row-parallel
  p.logits = Product(w.lm, dim, s.vocab, all, xm);
  return p;
}

TEST(TensorParallelPlanTest, SlicedLayerSummedEqualsTheWholeLayer) {
  const ModelConfig c = SmallConfig();
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.0f, 0.3f);
  auto random = [&](int64_t count) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& f : v) f = n(rng);
    return v;
  };
  const int64_t dim = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const Layer w{random(q_dim * dim), random(kv_dim * dim), random(kv_dim * dim), random(dim * q_dim),
                random(inter * dim), random(inter * dim), random(dim * inter), random(c.vocab_size * dim)};
  const std::vector<float> x0 = random(dim), x1 = random(dim), xm = random(dim);
  const Partial whole = RunSlices(c, w, TensorParallelSlices(c, 0, 1), x0, x1, xm);
  for (int world : {2, 4}) {
    SCOPED_TRACE("world " + std::to_string(world));
    ASSERT_TRUE(CheckTensorParallel(c, world).ok());
    std::vector<float> o(static_cast<size_t>(dim), 0.0f), mlp(o.size(), 0.0f), logits;
    for (int r = 0; r < world; ++r) {
      const Partial p = RunSlices(c, w, TensorParallelSlices(c, r, world), x0, x1, xm);
      for (int64_t i = 0; i < dim; ++i) {  // the all-reduces
        o[i] += p.o[i];
        mlp[i] += p.mlp[i];
      }
      logits.insert(logits.end(), p.logits.begin(), p.logits.end());  // the gather
    }
    for (int64_t i = 0; i < dim; ++i) {
      EXPECT_NEAR(o[i], whole.o[i], 1e-5f) << "o " << i;
      EXPECT_NEAR(mlp[i], whole.mlp[i], 1e-5f) << "mlp " << i;
    }
    ASSERT_EQ(logits.size(), whole.logits.size());
    for (size_t i = 0; i < logits.size(); ++i) EXPECT_EQ(logits[i], whole.logits[i]) << "logit " << i;
  }
}

// The ranges of all ranks tile each dimension in rank order, with nothing left over.
TEST(TensorParallelPlanTest, SlicesTileEveryDimension) {
  ModelConfig c = SmallConfig();
  c.vocab_size = 53;  // not a multiple of the world size: the last rank takes the remainder
  for (int world : {1, 2, 4}) {
    int64_t q = 0, kv = 0, in = 0, vocab = 0;
    for (int r = 0; r < world; ++r) {
      const TpSlices s = TensorParallelSlices(c, r, world);
      EXPECT_EQ(s.q_rows.begin, q);
      EXPECT_EQ(s.k_rows.begin, kv);
      EXPECT_EQ(s.inter.begin, in);
      EXPECT_EQ(s.vocab.begin, vocab);
      // Every rank multiplies lm_rows rows (ceil(53 / world)), its slice padded to that.
      EXPECT_EQ(s.lm_rows, (c.vocab_size + world - 1) / world);
      EXPECT_LE(s.vocab.size(), s.lm_rows);
      const ModelConfig rc = RankConfig(c, world);
      EXPECT_EQ(rc.num_attention_heads * rc.head_dim, s.q_rows.size());
      EXPECT_EQ(rc.num_key_value_heads * rc.head_dim, s.k_rows.size());
      EXPECT_EQ(rc.intermediate_size, s.inter.size());
      EXPECT_EQ(rc.vocab_size, c.vocab_size);  // the embedding stays whole
      q = s.q_rows.end;
      kv = s.k_rows.end;
      in = s.inter.end;
      vocab = s.vocab.end;
    }
    EXPECT_EQ(q, c.num_attention_heads * c.head_dim);
    EXPECT_EQ(kv, c.num_key_value_heads * c.head_dim);
    EXPECT_EQ(in, c.intermediate_size);
    EXPECT_EQ(vocab, c.vocab_size);
  }
}

TEST(TensorParallelPlanTest, ShapesThatDoNotDivideAreRefused) {
  ModelConfig c = SmallConfig();
  EXPECT_EQ(CheckTensorParallel(c, 8).code(), StatusCode::kInvalidArgument);  // 4 KV heads
  EXPECT_EQ(CheckTensorParallel(c, 0).code(), StatusCode::kInvalidArgument);
  c.intermediate_size = 50;
  EXPECT_EQ(CheckTensorParallel(c, 4).code(), StatusCode::kInvalidArgument);
  // Llama-3.1-70B: 64 query heads, 8 KV heads, 28672: 2, 4 and 8 GPUs.
  ModelConfig big;
  big.vocab_size = 128256;
  big.hidden_size = 8192;
  big.intermediate_size = 28672;
  big.num_attention_heads = 64;
  big.num_key_value_heads = 8;
  big.head_dim = 128;
  for (int world : {1, 2, 4, 8}) EXPECT_TRUE(CheckTensorParallel(big, world).ok()) << world;
  EXPECT_FALSE(CheckTensorParallel(big, 16).ok());
}

}  // namespace
}  // namespace rag
