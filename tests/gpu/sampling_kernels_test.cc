// ArgmaxRows and SampleRows (kernels/sampling.cu) against a double-precision CPU reference of the
// same semantics, and against the engine's CPU sampler (engine/sampler.cc) for the kept set.
// Rows are fresh random logits each run: normal, rounded (many ties), flat, peaked, signed zeros
// with -inf, three values only; vocabularies from 1 to past the shared-memory cache (600000).
//
// Exactness: the kept set and the pick are exact functions of the fp32 scaled logits except at
// a boundary, where the GPU's fp32 exp and 2^-40 fixed-point sums can round the other way than
// the reference's double exp: draws whose uniform lies within kEps (relative) of a CDF step, and
// rows whose top-p cut lies within kEps of top_p, are skipped (RefSample flags them).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/sampler.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::DeviceBuffer;
using testing_gpu::GpuTest;

// 8x the bound on the GPU's error in a cumulative mass, relative to the total: 2 ulp of fp32 expf
// per token (2.4e-7) plus up to 2^-41 of the top token's weight per token, 600000 tokens
// (2.7e-7).
constexpr double kEps = 4e-6;

// --- the reference -------------------------------------------------------------------------------

// Lowest index among equal maxima (-0 == +0), as std::max_element and torch.argmax.
int32_t RefArgmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

std::vector<float> Scale(const float* x, int64_t vocab, float temperature) {
  std::vector<float> s(x, x + vocab);
  for (float& v : s) v /= temperature;  // fp32, as the CPU sampler
  return s;
}

struct Reference {
  int32_t id = -1;
  bool cut_ambiguous = false;     // the top-p cut lies within kEps of a token boundary
  bool draw_ambiguous = false;    // uniform * total lies within kEps of a CDF step
  std::vector<int32_t> kept;      // ascending index
  std::vector<double> kept_prob;  // renormalised over the kept set
  bool ambiguous() const { return cut_ambiguous || draw_ambiguous; }
};

// SampleRows' semantics in double precision: rank by s descending, equal s by ascending index;
// the first min(top_k, vocab); the shortest prefix of those whose mass reaches top_p; the draw
// walks the kept tokens in ascending index order to the first whose cumulative mass exceeds
// uniform * total.
Reference RefSample(const float* x, int64_t vocab, float temperature, int top_k, float top_p,
                    float uniform) {
  Reference ref;
  if (!(temperature > 0.0f)) {
    ref.id = RefArgmax(x, vocab);
    ref.kept = {ref.id};
    ref.kept_prob = {1.0};
    return ref;
  }
  const std::vector<float> s = Scale(x, vocab, temperature);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
  const int64_t k = top_k > 0 && top_k < vocab ? top_k : vocab;
  const float max_s = s[order[0]];
  std::vector<double> w(k);
  double z = 0;
  // exp of the fp32 difference, as the CPU sampler.
  for (int64_t r = 0; r < k; ++r) z += w[r] = std::exp(static_cast<double>(s[order[r]] - max_s));
  int64_t n = k;
  if (top_p < 1.0f) {
    const double target = static_cast<double>(top_p) * z;
    double cum = 0;
    n = 0;
    while (n < k) {
      const double before = cum;
      cum += w[n++];
      if (cum >= target) {
        // One token fewer or one more would be within rounding of the cut.
        if ((n > 1 && before >= target - kEps * z) || cum < target + kEps * z) {
          ref.cut_ambiguous = true;
        }
        break;
      }
    }
  }
  std::vector<std::pair<int32_t, double>> kept;
  for (int64_t r = 0; r < n; ++r) kept.emplace_back(order[r], w[r]);
  std::sort(kept.begin(), kept.end());
  double zn = 0;
  for (const auto& [id, wi] : kept) zn += wi;
  const double t = std::clamp(static_cast<double>(uniform), 0.0, 1.0) * zn;
  double cum = 0;
  for (const auto& [id, wi] : kept) {
    ref.kept.push_back(id);
    ref.kept_prob.push_back(wi / zn);
    const double before = cum;
    cum += wi;
    if (ref.id < 0 && t < cum) {
      ref.id = id;
      // A step with a token on its other side (before > 0: one below; cum < zn: one above).
      if ((before > 0 && t - before < kEps * zn) || (cum < zn && cum - t < kEps * zn)) {
        ref.draw_ambiguous = true;
      }
    }
  }
  if (ref.id < 0) {  // uniform * total rounded up to the total
    ref.id = kept.back().first;
    ref.draw_ambiguous = true;
  }
  return ref;
}

// --- inputs --------------------------------------------------------------------------------------

enum class RowKind { kNormal, kRounded, kFlat, kPeaked, kSignedZerosAndInf, kThreeValues };
constexpr int kRowKinds = 6;

void FillRow(RowKind kind, float* x, int64_t vocab, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  switch (kind) {
    case RowKind::kNormal:
      for (int64_t i = 0; i < vocab; ++i) x[i] = normal(rng);
      break;
    case RowKind::kRounded:  // a few dozen distinct values: ties everywhere, at the max too
      for (int64_t i = 0; i < vocab; ++i) x[i] = std::round(normal(rng));
      break;
    case RowKind::kFlat: {
      const float c = normal(rng);
      for (int64_t i = 0; i < vocab; ++i) x[i] = c;
      break;
    }
    case RowKind::kPeaked:  // one token holds nearly all the mass
      for (int64_t i = 0; i < vocab; ++i) x[i] = normal(rng) / 3.0f;
      x[pick(rng)] = 30.0f;
      break;
    case RowKind::kSignedZerosAndInf:  // max 0 held by -0 and +0 tokens, masked tokens
      for (int64_t i = 0; i < vocab; ++i) x[i] = -std::fabs(std::round(normal(rng) / 2.0f));
      for (int j = 0; j < 4; ++j) x[pick(rng)] = -0.0f;
      for (int j = 0; j < 4; ++j) x[pick(rng)] = 0.0f;
      for (int j = 0; j < 8; ++j) x[pick(rng)] = -std::numeric_limits<float>::infinity();
      break;
    case RowKind::kThreeValues:
      for (int64_t i = 0; i < vocab; ++i) x[i] = static_cast<float>(pick(rng) % 3);
      break;
  }
}

struct RowParams {
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float uniform = 0.5f;
};

RowParams RandomParams(int64_t vocab, std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  RowParams p;
  p.temperature = rng() % 3 == 0 ? 1.0f : 0.25f + 1.75f * unit(rng);
  const int v = static_cast<int>(vocab);
  const int ks[] = {0, 0, 1, 2, 5, 50, 1000, 1 + static_cast<int>(rng() % vocab), v, v + 7, -3};
  p.top_k = ks[rng() % (sizeof(ks) / sizeof(ks[0]))];
  const float ps[] = {1.0f, 1.5f, 0.5f, 0.9f, 0.95f, 0.99f, unit(rng), 0.0f};
  p.top_p = ps[rng() % (sizeof(ps) / sizeof(ps[0]))];
  p.uniform = unit(rng);
  if (rng() % 20 == 0) p.uniform = 0.0f;
  if (rng() % 20 == 0) p.uniform = std::nextafter(1.0f, 0.0f);
  return p;
}

// Runs SampleRows on (rows, vocab) logits with per-row params; ids come back (every one checked
// to be written and in range).
void RunSample(const std::vector<float>& logits, int64_t vocab,
               const std::vector<RowParams>& params, std::vector<int32_t>* ids) {
  const int64_t rows = static_cast<int64_t>(params.size());
  std::vector<float> t(rows), p(rows), u(rows);
  std::vector<int32_t> k(rows);
  for (int64_t r = 0; r < rows; ++r) {
    t[r] = params[r].temperature;
    k[r] = params[r].top_k;
    p[r] = params[r].top_p;
    u[r] = params[r].uniform;
  }
  DeviceBuffer<float> d_x(logits), d_t(t), d_p(p), d_u(u);
  DeviceBuffer<int32_t> d_k(k), d_ids(std::vector<int32_t>(rows, -7));
  const int64_t ws = SampleRowsWorkspace(rows, vocab);
  DeviceBuffer<float> d_ws(static_cast<size_t>(ws));
  ASSERT_STATUS_OK(SampleRows(d_x.get(), rows, vocab, d_t.get(), d_k.get(), d_p.get(), d_u.get(),
                              d_ws.get(), d_ids.get(), nullptr));
  *ids = d_ids.ToHost();
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_TRUE((*ids)[r] >= 0 && (*ids)[r] < vocab) << "row " << r << " id " << (*ids)[r];
  }
}

std::string Describe(int64_t vocab, RowKind kind, const RowParams& p) {
  return "vocab " + std::to_string(vocab) + " kind " + std::to_string(static_cast<int>(kind)) +
         " temperature " + std::to_string(p.temperature) + " top_k " + std::to_string(p.top_k) +
         " top_p " + std::to_string(p.top_p) + " uniform " + std::to_string(p.uniform);
}

// Vocabularies: one CTA per row (<= 4096), clusters of 2, 4 and 8, Llama 3's, and one whose
// slices do not fit in shared memory (the re-reading path).
constexpr int64_t kVocabs[] = {1, 7, 1000, 4097, 9000, 20000, 128256, 600000};

int64_t RowsFor(int64_t vocab) { return vocab >= 600000 ? 4 : vocab >= 100000 ? 24 : 64; }

// --- ArgmaxRows ----------------------------------------------------------------------------------

class ArgmaxRowsTest : public GpuTest {};

TEST_F(ArgmaxRowsTest, MatchesCpuArgmax) {
  for (int64_t vocab : kVocabs) {
    const int64_t rows = RowsFor(vocab);
    std::vector<float> x(rows * vocab);
    for (int64_t r = 0; r < rows; ++r) {
      FillRow(static_cast<RowKind>(r % kRowKinds), &x[r * vocab], vocab, rng_);
    }
    // All -inf: index 0.
    std::fill(x.begin(), x.begin() + vocab, -std::numeric_limits<float>::infinity());
    DeviceBuffer<float> d_x(x);
    DeviceBuffer<int32_t> d_ids(std::vector<int32_t>(rows, -7));
    ASSERT_STATUS_OK(ArgmaxRows(d_x.get(), rows, vocab, d_ids.get(), nullptr));
    const std::vector<int32_t> ids = d_ids.ToHost();
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(ids[r], RefArgmax(&x[r * vocab], vocab))
          << "vocab " << vocab << " row " << r << " kind " << r % kRowKinds;
    }
  }
}

// --- SampleRows ----------------------------------------------------------------------------------

class SampleRowsTest : public GpuTest {};

TEST_F(SampleRowsTest, TopKOneIsTheArgmaxOfTheScaledLogits) {
  for (int64_t vocab : kVocabs) {
    const int64_t rows = RowsFor(vocab);
    std::vector<float> x(rows * vocab);
    std::vector<RowParams> params(rows);
    for (int64_t r = 0; r < rows; ++r) {
      FillRow(static_cast<RowKind>(r % kRowKinds), &x[r * vocab], vocab, rng_);
      params[r] = RandomParams(vocab, rng_);
      params[r].top_k = 1;
      if (r % 2 == 0) params[r].temperature = 1.0f;  // the plain argmax of the logits
    }
    std::vector<int32_t> ids;
    ASSERT_NO_FATAL_FAILURE(RunSample(x, vocab, params, &ids));
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<float> s = Scale(&x[r * vocab], vocab, params[r].temperature);
      EXPECT_EQ(ids[r], RefArgmax(s.data(), vocab))
          << Describe(vocab, RowKind(r % kRowKinds), params[r]);
    }
  }
}

TEST_F(SampleRowsTest, NonPositiveTemperatureIsGreedy) {
  for (int64_t vocab : {int64_t{7}, int64_t{20000}, int64_t{128256}}) {
    const int64_t rows = 32;
    std::vector<float> x(rows * vocab);
    std::vector<RowParams> params(rows);
    const float greedy_t[] = {0.0f, -0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN()};
    for (int64_t r = 0; r < rows; ++r) {
      FillRow(static_cast<RowKind>(r % kRowKinds), &x[r * vocab], vocab, rng_);
      params[r] = RandomParams(vocab, rng_);
      if (r % 2 == 0) params[r].temperature = greedy_t[(r / 2) % 4];  // odd rows sample
    }
    std::vector<int32_t> ids;
    ASSERT_NO_FATAL_FAILURE(RunSample(x, vocab, params, &ids));
    for (int64_t r = 0; r < rows; r += 2) {
      EXPECT_EQ(ids[r], RefArgmax(&x[r * vocab], vocab))
          << Describe(vocab, RowKind(r % kRowKinds), params[r]);
    }
  }
}

TEST_F(SampleRowsTest, MatchesDoublePrecisionReference) {
  int checked = 0, total = 0;
  for (int64_t vocab : kVocabs) {
    const int64_t rows = RowsFor(vocab);
    std::vector<float> x(rows * vocab);
    std::vector<RowParams> params(rows);
    std::vector<RowKind> kinds(rows);
    for (int64_t r = 0; r < rows; ++r) {
      kinds[r] = static_cast<RowKind>(rng_() % kRowKinds);
      FillRow(kinds[r], &x[r * vocab], vocab, rng_);
      params[r] = RandomParams(vocab, rng_);
    }
    std::vector<int32_t> ids;
    ASSERT_NO_FATAL_FAILURE(RunSample(x, vocab, params, &ids));
    // Deterministic: the same inputs give the same ids.
    std::vector<int32_t> again;
    ASSERT_NO_FATAL_FAILURE(RunSample(x, vocab, params, &again));
    EXPECT_EQ(ids, again) << "vocab " << vocab;
    for (int64_t r = 0; r < rows; ++r) {
      const RowParams& p = params[r];
      const Reference ref =
          RefSample(&x[r * vocab], vocab, p.temperature, p.top_k, p.top_p, p.uniform);
      ++total;
      // Whatever the rounding, the id is a kept token.
      EXPECT_TRUE(std::binary_search(ref.kept.begin(), ref.kept.end(), ids[r]) || ref.cut_ambiguous)
          << Describe(vocab, kinds[r], p) << ": id " << ids[r] << " is not kept";
      if (ref.ambiguous()) continue;
      ++checked;
      EXPECT_EQ(ids[r], ref.id) << Describe(vocab, kinds[r], p);
    }
  }
  // About 1 row in 8 is skipped: mostly flat or three-valued rows, whose equal steps put a
  // token boundary within kEps of the top-p cut.
  EXPECT_GT(checked, total * 3 / 4) << checked << " of " << total << " rows checked";
}

// The tokens SampleRows can choose are the CPU sampler's kept set: a uniform at the middle of
// each kept token's CDF step (ascending index order) must give that token, a grid of uniforms
// gives only kept tokens, and the engine's Sampler (with its own generator) draws only tokens of
// the same set and, over n draws, every kept token of probability >= 30 / n (missed with
// probability < e^-30).
TEST_F(SampleRowsTest, ChoosableSetIsTheCpuSamplersKeptSet) {
  struct Case {
    int64_t vocab;
    RowKind kind;
    float temperature;
    int top_k;
    float top_p;
  };
  const Case cases[] = {
      {300, RowKind::kNormal, 1.0f, 0, 1.0f},      // no filter
      {5000, RowKind::kNormal, 0.7f, 40, 1.0f},    // top-k
      {5000, RowKind::kNormal, 1.3f, 0, 0.9f},     // top-p
      {20000, RowKind::kNormal, 0.8f, 50, 0.95f},  // both
      {20000, RowKind::kRounded, 1.0f, 30, 1.0f},  // top-k cut inside a run of ties
      {20000, RowKind::kRounded, 1.0f, 0, 0.5f},   // top-p cut inside a run of ties
      {9000, RowKind::kPeaked, 1.0f, 100, 0.9f},   // one token
      {128256, RowKind::kNormal, 0.6f, 0, 0.8f},   // Llama 3 vocabulary
      {128256, RowKind::kThreeValues, 1.0f, 64, 1.0f},
  };
  for (const Case& c : cases) {
    // A row whose top-p cut is clear of rounding (flat runs can straddle it; draw again).
    std::vector<float> row(c.vocab);
    Reference kept;
    for (int attempt = 0; attempt < 20; ++attempt) {
      FillRow(c.kind, row.data(), c.vocab, rng_);
      kept = RefSample(row.data(), c.vocab, c.temperature, c.top_k, c.top_p, 0.5f);
      if (!kept.cut_ambiguous) break;
    }
    ASSERT_FALSE(kept.cut_ambiguous) << "no row with a clear top-p cut";
    const std::string what =
        Describe(c.vocab, c.kind, RowParams{c.temperature, c.top_k, c.top_p, 0});
    std::vector<float> uniforms;
    std::vector<int32_t> expected;  // -1: only "kept" is checked
    double cum = 0;
    for (size_t j = 0; j < kept.kept.size(); ++j) {
      const double p = kept.kept_prob[j];
      if (p > 4 * kEps) {
        uniforms.push_back(static_cast<float>(cum + p / 2));
        expected.push_back(kept.kept[j]);
      }
      cum += p;
    }
    for (int g = 0; g < 256; ++g) {
      uniforms.push_back((g + 0.25f) / 256.0f);
      expected.push_back(-1);
    }
    // Batches of 64 rows, the row repeated with one uniform each.
    std::set<int32_t> chosen;
    for (size_t b = 0; b < uniforms.size(); b += 64) {
      const size_t n = std::min<size_t>(64, uniforms.size() - b);
      std::vector<float> logits(n * c.vocab);
      std::vector<RowParams> params(n);
      for (size_t q = 0; q < n; ++q) {
        std::copy(row.begin(), row.end(), logits.begin() + q * c.vocab);
        params[q] = RowParams{c.temperature, c.top_k, c.top_p, uniforms[b + q]};
      }
      std::vector<int32_t> ids;
      ASSERT_NO_FATAL_FAILURE(RunSample(logits, c.vocab, params, &ids));
      for (size_t q = 0; q < n; ++q) {
        chosen.insert(ids[q]);
        if (expected[b + q] >= 0) {
          EXPECT_EQ(ids[q], expected[b + q]) << what << " uniform " << uniforms[b + q];
        }
      }
    }
    // Every kept token heavier than 4 kEps was chosen at its midpoint (checked above); nothing
    // outside the kept set ever is.
    for (int32_t id : chosen) {
      EXPECT_TRUE(std::binary_search(kept.kept.begin(), kept.kept.end(), id)) << what << ": " << id;
    }

    // The engine's sampler: its sort orders ties arbitrarily, so a cut inside a run of ties is
    // compared only through the values it keeps.
    SamplingParams sp;
    sp.temperature = c.temperature;
    sp.top_k = c.top_k;
    sp.top_p = c.top_p;
    sp.seed = rng_();
    Sampler sampler(sp);
    const std::vector<float> s = Scale(row.data(), c.vocab, c.temperature);
    std::set<float> kept_values;
    for (int32_t id : kept.kept) kept_values.insert(s[id]);
    std::set<int32_t> drawn;
    const int draws = c.vocab > 5000 ? 300 : 3000;  // the CPU sampler sorts the vocabulary
    for (int d = 0; d < draws; ++d) {
      const int32_t id = sampler.Sample(row.data(), static_cast<int>(c.vocab), {});
      ASSERT_TRUE(kept_values.count(s[id])) << what << ": the CPU sampler drew " << id;
      drawn.insert(id);
    }
    const bool cut_in_ties = c.kind == RowKind::kRounded || c.kind == RowKind::kThreeValues;
    for (size_t j = 0; j < kept.kept.size() && !cut_in_ties; ++j) {
      if (kept.kept_prob[j] >= 30.0 / draws) {
        EXPECT_TRUE(drawn.count(kept.kept[j]))
            << what << ": the CPU sampler never drew " << kept.kept[j];
      }
    }
  }
}

TEST_F(SampleRowsTest, RunsInsideACudaGraph) {
  const int64_t vocab = 128256, rows = 8;
  std::vector<float> x(rows * vocab);
  std::vector<float> t(rows), p(rows), u(rows);
  std::vector<int32_t> k(rows);
  for (int64_t r = 0; r < rows; ++r) {
    FillRow(RowKind::kNormal, &x[r * vocab], vocab, rng_);
    const RowParams rp = RandomParams(vocab, rng_);
    t[r] = rp.temperature;
    k[r] = rp.top_k;
    p[r] = rp.top_p;
    u[r] = rp.uniform;
  }
  DeviceBuffer<float> d_x(x), d_t(t), d_p(p), d_u(u);
  DeviceBuffer<int32_t> d_k(k), d_direct(rows), d_graph(rows), d_argmax(rows);
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // Direct first (as an engine warms up before capturing).
  ASSERT_STATUS_OK(SampleRows(d_x.get(), rows, vocab, d_t.get(), d_k.get(), d_p.get(), d_u.get(),
                              nullptr, d_direct.get(), stream));
  ASSERT_STATUS_OK(ArgmaxRows(d_x.get(), rows, vocab, d_argmax.get(), stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const Status captured = SampleRows(d_x.get(), rows, vocab, d_t.get(), d_k.get(), d_p.get(),
                                     d_u.get(), nullptr, d_graph.get(), stream);
  const Status captured_argmax = ArgmaxRows(d_x.get(), rows, vocab, d_argmax.get(), stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  ASSERT_STATUS_OK(captured);
  ASSERT_STATUS_OK(captured_argmax);
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphLaunch(exec, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  EXPECT_EQ(d_graph.ToHost(), d_direct.ToHost());
  const std::vector<int32_t> argmax = d_argmax.ToHost();
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(argmax[r], RefArgmax(&x[r * vocab], vocab));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaStreamDestroy(stream));
}

// --- argument checks (no device needed: the launchers reject before touching CUDA) -------------

TEST(SamplingArgumentsTest, BadShapesAreInvalidArgument) {
  int32_t* ids = nullptr;
  EXPECT_EQ(ArgmaxRows(nullptr, -1, 10, ids, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ArgmaxRows(nullptr, 1, 0, ids, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ArgmaxRows(nullptr, 1, -5, ids, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ArgmaxRows(nullptr, 65536, 10, ids, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ArgmaxRows(nullptr, 1, kSampleMaxVocab + 1, ids, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      SampleRows(nullptr, -1, 10, nullptr, nullptr, nullptr, nullptr, nullptr, ids, nullptr).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      SampleRows(nullptr, 1, 0, nullptr, nullptr, nullptr, nullptr, nullptr, ids, nullptr).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleRows(nullptr, 1, kSampleMaxVocab + 1, nullptr, nullptr, nullptr, nullptr, nullptr,
                       ids, nullptr)
                .code(),
            StatusCode::kInvalidArgument);
  // No rows: nothing to do, nothing launched.
  EXPECT_TRUE(ArgmaxRows(nullptr, 0, 10, ids, nullptr).ok());
  EXPECT_TRUE(
      SampleRows(nullptr, 0, 10, nullptr, nullptr, nullptr, nullptr, nullptr, ids, nullptr).ok());
  EXPECT_EQ(SampleRowsWorkspace(64, 128256), 0);
}

}  // namespace
}  // namespace rag
