// The BERT encoder kernels of kernels/bert.cu against double-precision references on fresh
// random inputs. The pre-norm sums (embedding rows, x + (y + bias)) are formed in fp32 on both
// sides in the kernels' order, so they are bit-identical; what differs is the rest. Tolerances:
//   LayerNorm    |gpu - ref| <= 1e-5 + 1e-5 |ref|: fp32 block sums of H terms for the mean and
//                the variance against double (relative error ~1e-7 on inputs whose mean is of
//                the order of their spread), 1 / sqrtf and the last few roundings.
//   bias only    exact (one fp32 add).
//   GELU         |gpu - ref| <= 1e-6 + 1e-5 |ref|: erff is within 2 ulp (~1.2e-7 absolute near
//                |erf| = 1), times 0.5 |y| <= 3.5 here; the other operations a few ulp.
//   attention    |gpu - ref| <= 1e-6 + 2e-5 sum_j p_j |v_j| (1 + A_j) per output, where p_j is
//                key j's probability and A_j = sum_e |q_e k_je| / sqrt(d) bounds the terms of
//                its score: an fp32 score of d <= 128 terms is off by at most ~d 6e-8 A_j,
//                which moves p_j by as much relatively; the fp32 sums over up to 700 keys and
//                the online rescaling add far less on these inputs. A dropped, doubled or
//                misplaced key, a wrong scale or a key from another sequence or head is well
//                above the bound.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::DeviceBuffer;
using testing_gpu::ExpectNear;
using testing_gpu::GpuTest;

constexpr float kLnEps = 1e-12f;  // BERT's layer_norm_eps

// LayerNorm of the fp32 row v (H) in double, appended to out: biased variance, eps inside the
// sqrt (transformers' nn.LayerNorm).
void LayerNormRef(const float* v, int64_t H, const std::vector<float>& g,
                  const std::vector<float>& b, std::vector<double>* out) {
  double mean = 0, var = 0;
  for (int64_t j = 0; j < H; ++j) mean += v[j];
  mean /= static_cast<double>(H);
  for (int64_t j = 0; j < H; ++j) var += (v[j] - mean) * (v[j] - mean);
  const double inv = 1.0 / std::sqrt(var / static_cast<double>(H) + kLnEps);
  for (int64_t j = 0; j < H; ++j) out->push_back((v[j] - mean) * inv * g[j] + b[j]);
}

// --- BertEmbedLayerNorm -----------------------------------------------------------------------

class BertEmbedLayerNormTest : public GpuTest {};

TEST_F(BertEmbedLayerNormTest, MatchesReference) {
  const int64_t vocab = 50, max_pos = 512;
  // H = 7 and 1027 leave a partial pass over the row; H = 1: variance 0, the output is b.
  for (int64_t H : {1, 7, 384, 768, 1027}) {
    for (int64_t T : {1, 5, 300}) {
      SCOPED_TRACE("H " + std::to_string(H) + " T " + std::to_string(T));
      const std::vector<float> word = RandomFloats(vocab * H), pos = RandomFloats(max_pos * H);
      const std::vector<float> type = RandomFloats(2 * H);  // row 0 is passed
      const std::vector<float> g = RandomFloats(H, 0.5f, 1.5f), b = RandomFloats(H, -0.5f, 0.5f);
      std::vector<int32_t> ids(T), positions(T);
      std::uniform_int_distribution<int32_t> pick_id(0, vocab - 1), pick_pos(0, max_pos - 1);
      for (int64_t t = 0; t < T; ++t) {
        ids[t] = pick_id(rng_);
        positions[t] = pick_pos(rng_);
      }
      DeviceBuffer<float> d_word(word), d_pos(pos), d_type(type), d_g(g), d_b(b), d_x(T * H);
      DeviceBuffer<int32_t> d_ids(ids), d_positions(positions);
      ASSERT_STATUS_OK(BertEmbedLayerNorm(d_ids.get(), d_positions.get(), T, H, d_word.get(),
                                          d_pos.get(), d_type.get(), d_g.get(), d_b.get(), kLnEps,
                                          d_x.get(), nullptr));
      std::vector<double> want;
      std::vector<float> row(H);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < H; ++j) {
          row[j] = word[ids[t] * H + j] + pos[positions[t] * H + j] + type[j];
        }
        LayerNormRef(row.data(), H, g, b, &want);
      }
      ExpectNear(d_x.ToHost(), want, 1e-5, 1e-5, "x");
    }
  }
}

// --- BiasResidualLayerNorm --------------------------------------------------------------------

class BiasResidualLayerNormTest : public GpuTest {};

TEST_F(BiasResidualLayerNormTest, MatchesReference) {
  for (int64_t H : {1, 7, 384, 768, 1027}) {
    for (int64_t T : {1, 5, 300}) {
      SCOPED_TRACE("H " + std::to_string(H) + " T " + std::to_string(T));
      const std::vector<float> x = RandomFloats(T * H, -2, 2), y = RandomFloats(T * H, -2, 2);
      const std::vector<float> bias = RandomFloats(H);
      const std::vector<float> g = RandomFloats(H, 0.5f, 1.5f), b = RandomFloats(H, -0.5f, 0.5f);
      DeviceBuffer<float> d_x(x), d_y(y), d_bias(bias), d_g(g), d_b(b);
      ASSERT_STATUS_OK(BiasResidualLayerNorm(d_x.get(), d_y.get(), d_bias.get(), d_g.get(),
                                             d_b.get(), T, H, kLnEps, nullptr));
      std::vector<double> want;
      std::vector<float> row(H);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < H; ++j) row[j] = x[t * H + j] + (y[t * H + j] + bias[j]);
        LayerNormRef(row.data(), H, g, b, &want);
      }
      ExpectNear(d_x.ToHost(), want, 1e-5, 1e-5, "x");
    }
  }
}

// --- BiasGelu ---------------------------------------------------------------------------------

class BiasGeluTest : public GpuTest {};

TEST_F(BiasGeluTest, MatchesReferenceWithAndWithoutGelu) {
  for (int64_t N : {1, 7, 384, 3072, 3075}) {
    for (int64_t T : {1, 5, 33}) {
      for (bool gelu : {true, false}) {
        SCOPED_TRACE("N " + std::to_string(N) + " T " + std::to_string(T) +
                     (gelu ? " gelu" : " bias only"));
        const std::vector<float> y = RandomFloats(T * N, -6, 6), bias = RandomFloats(N);
        DeviceBuffer<float> d_y(y), d_bias(bias);
        ASSERT_STATUS_OK(BiasGelu(d_y.get(), d_bias.get(), T, N, gelu, nullptr));
        const std::vector<float> got = d_y.ToHost();
        std::vector<float> sum(T * N);
        for (int64_t i = 0; i < T * N; ++i) sum[i] = y[i] + bias[i % N];
        if (!gelu) {
          EXPECT_EQ(got, sum);
          continue;
        }
        std::vector<double> want(T * N);
        for (int64_t i = 0; i < T * N; ++i) {
          const double v = sum[i];
          want[i] = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        }
        ExpectNear(got, want, 1e-6, 1e-5, "y");
      }
    }
  }
}

// --- BertAttention ----------------------------------------------------------------------------

class BertAttentionTest : public GpuTest {
 protected:
  // Runs BertAttention on random qkv for packed sequences of the given lengths and checks every
  // output against the double reference (bound in the header comment). ctx starts as NaN, so
  // an unwritten output fails.
  void Check(const std::vector<int32_t>& lengths, int64_t heads, int64_t d) {
    const int64_t H = heads * d, n_seqs = static_cast<int64_t>(lengths.size());
    std::vector<int32_t> starts = {0};
    for (int32_t n : lengths) starts.push_back(starts.back() + n);
    const int64_t T = starts.back();
    const int64_t max_len = *std::max_element(lengths.begin(), lengths.end());
    std::vector<float> qkv(T * 3 * H);
    const std::vector<float> qk = RandomFloats(T * 2 * H, -2, 2), v = RandomFloats(T * H);
    for (int64_t t = 0; t < T; ++t) {
      std::copy_n(&qk[t * 2 * H], 2 * H, &qkv[t * 3 * H]);
      std::copy_n(&v[t * H], H, &qkv[t * 3 * H + 2 * H]);
    }
    DeviceBuffer<float> d_qkv(qkv), d_ctx(T * H);
    DeviceBuffer<int32_t> d_starts(starts);
    CUDA_CHECK(cudaMemset(d_ctx.get(), 0xff, T * H * sizeof(float)));
    ASSERT_STATUS_OK(BertAttention(d_qkv.get(), d_starts.get(), n_seqs, max_len, heads, H,
                                   d_ctx.get(), nullptr));
    const std::vector<float> got = d_ctx.ToHost();

    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    std::vector<double> score, abs_score, out(d), abs_out(d);
    int bad = 0;
    for (int64_t s = 0; s < n_seqs && bad < 10; ++s) {
      const int64_t base = starts[s], n = lengths[s];
      score.resize(n);
      abs_score.resize(n);
      for (int64_t h = 0; h < heads && bad < 10; ++h) {
        for (int64_t i = 0; i < n && bad < 10; ++i) {
          const float* q = &qkv[(base + i) * 3 * H + h * d];
          double mx = -INFINITY;
          for (int64_t j = 0; j < n; ++j) {
            const float* k = &qkv[(base + j) * 3 * H + H + h * d];
            double dot = 0, abs_dot = 0;
            for (int64_t e = 0; e < d; ++e) {
              dot += static_cast<double>(q[e]) * k[e];
              abs_dot += std::fabs(static_cast<double>(q[e]) * k[e]);
            }
            score[j] = dot * scale;
            abs_score[j] = abs_dot * scale;
            mx = std::max(mx, score[j]);
          }
          double sum = 0;
          for (int64_t j = 0; j < n; ++j) {
            score[j] = std::exp(score[j] - mx);
            sum += score[j];
          }
          std::fill(out.begin(), out.end(), 0.0);
          std::fill(abs_out.begin(), abs_out.end(), 0.0);
          for (int64_t j = 0; j < n; ++j) {
            const double p = score[j] / sum;
            const float* vr = &qkv[(base + j) * 3 * H + 2 * H + h * d];
            for (int64_t e = 0; e < d; ++e) {
              out[e] += p * vr[e];
              abs_out[e] += p * std::fabs(vr[e]) * (1 + abs_score[j]);
            }
          }
          for (int64_t e = 0; e < d && bad < 10; ++e) {
            const float g = got[(base + i) * H + h * d + e];
            if (!(std::fabs(g - out[e]) <= 1e-6 + 2e-5 * abs_out[e])) {
              ADD_FAILURE() << "seq " << s << " (length " << n << ") head " << h << " row " << i
                            << " dim " << e << ": got " << g << ", want " << out[e];
              ++bad;
            }
          }
        }
      }
    }
  }
};

// Lengths around the 32-key chunks and the query tiles (16 or 32 rows), one past 512, packed
// in one call, for every head dim the kernel takes.
TEST_F(BertAttentionTest, PackedSequencesMatchReference) {
  const std::vector<int32_t> lengths = {65, 1, 700, 5, 200, 64};
  for (int64_t d : {32, 64, 96, 128}) {
    SCOPED_TRACE("head dim " + std::to_string(d));
    Check(lengths, 2, d);
  }
}

// BERT-base's shape (12 heads of 64) on typical passage lengths.
TEST_F(BertAttentionTest, BertBaseShape) { Check({128, 37, 256, 512}, 12, 64); }

// The most sequences the contract allows (grid x), each short.
TEST_F(BertAttentionTest, ManyShortSequences) {
  std::vector<int32_t> lengths(65535);
  std::uniform_int_distribution<int32_t> pick(1, 4);
  for (int32_t& n : lengths) n = pick(rng_);
  Check(lengths, 1, 32);
}

// --- argument checks (no device needed: launchers reject before touching CUDA) ---------------

TEST(BertKernelArgumentsTest, BadShapesAreInvalidArgument) {
  float f = 0;  // a non-null stand-in where a check must not depend on null pointers
  const int32_t i = 0;
  const auto invalid = [](const Status& s) { return s.code() == StatusCode::kInvalidArgument; };
  // BertEmbedLayerNorm: negative T, H <= 0, null pointers with rows to write.
  EXPECT_TRUE(invalid(BertEmbedLayerNorm(&i, &i, -1, 8, &f, &f, &f, &f, &f, kLnEps, &f, nullptr)));
  EXPECT_TRUE(invalid(BertEmbedLayerNorm(&i, &i, 1, 0, &f, &f, &f, &f, &f, kLnEps, &f, nullptr)));
  EXPECT_TRUE(invalid(BertEmbedLayerNorm(&i, &i, 1, 8, &f, &f, &f, &f, &f, kLnEps, nullptr, nullptr)));
  EXPECT_TRUE(invalid(BertEmbedLayerNorm(nullptr, &i, 1, 8, &f, &f, &f, &f, &f, kLnEps, &f, nullptr)));
  // BiasGelu.
  EXPECT_TRUE(invalid(BiasGelu(&f, &f, -1, 8, true, nullptr)));
  EXPECT_TRUE(invalid(BiasGelu(&f, &f, 1, 0, true, nullptr)));
  EXPECT_TRUE(invalid(BiasGelu(&f, nullptr, 1, 8, false, nullptr)));
  // BiasResidualLayerNorm.
  EXPECT_TRUE(invalid(BiasResidualLayerNorm(&f, &f, &f, &f, &f, -1, 8, kLnEps, nullptr)));
  EXPECT_TRUE(invalid(BiasResidualLayerNorm(&f, &f, &f, &f, &f, 1, -8, kLnEps, nullptr)));
  EXPECT_TRUE(invalid(BiasResidualLayerNorm(&f, nullptr, &f, &f, &f, 1, 8, kLnEps, nullptr)));
  // BertAttention: head dim not a multiple of 32 (96 / 2 = 48), over 128, H not a multiple of
  // heads, heads <= 0, negative counts, sequences past 65535, null pointers.
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 8, 2, 96, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 8, 1, 256, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 8, 3, 100, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 8, 0, 64, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, -1, 8, 2, 64, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, -1, 2, 64, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 65536, 2, 64, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, nullptr, 1, 8, 2, 64, &f, nullptr)));
  EXPECT_TRUE(invalid(BertAttention(&f, &i, 1, 8, 2, 64, nullptr, nullptr)));
  // Empty batches are no-ops, whatever the pointers.
  EXPECT_TRUE(BertEmbedLayerNorm(nullptr, nullptr, 0, 8, nullptr, nullptr, nullptr, nullptr,
                                 nullptr, kLnEps, nullptr, nullptr).ok());
  EXPECT_TRUE(BiasGelu(nullptr, nullptr, 0, 8, true, nullptr).ok());
  EXPECT_TRUE(BiasResidualLayerNorm(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 8, kLnEps,
                                    nullptr).ok());
  EXPECT_TRUE(BertAttention(nullptr, nullptr, 0, 8, 2, 64, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace rag
