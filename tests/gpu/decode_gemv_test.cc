// The batch-1 decode projections of kernels/decode_gemv.cu against double-precision references
// on fresh random inputs: y += W x; y = W rmsnorm(x); act = silu(W_gate xn) * (W_up xn). Weights
// and bf16 inputs are rounded to bf16 first and the same values used on both sides. Tolerance
// per output: 1e-6 + 2e-5 * sum_j |xn_j w_j| (fp32 sums of k terms in another order, and
// rsqrtf's few ulps; a dropped, doubled or misplaced term is far above it). Shapes cover row
// tails (n not a multiple of a block's 16 rows), k tails (not a multiple of a 1024-column batch)
// and split K. The FP8 forms (e4m3 weights, one fp32 scale a row) are held to the same bound
// against the dequantized weights (scale * e4m3 value, converted on the host by cuda_fp8.h).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <cuda_fp8.h>

#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;

constexpr float kEps = 1e-5f;

class DecodeGemvTest : public GpuTest {
 protected:
  struct Problem {
    std::vector<uint16_t> w16, g16;
    std::vector<uint8_t> w8;      // fp8 problems: the e4m3 weights ...
    std::vector<float> scale;     // ... and their row scales
    std::vector<float> w, g, x;   // w: the values the kernel multiplies by; x: fp32 residual
    std::vector<double> xn;       // rmsnorm(x) * g in double
  };

  // Row r of w (rows, k) as e4m3 times scale[r] = max |w_r| / 448 (the format's largest finite
  // value), as `rag quantize` writes them; `w` gets the dequantized values.
  static void Quantize(int64_t rows, int64_t k, std::vector<float>& w, std::vector<uint8_t>& w8,
                       std::vector<float>& scale) {
    w8.resize(w.size());
    scale.resize(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (int64_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(w[r * k + j]));
      scale[r] = amax > 0 ? amax / 448.0f : 1.0f;
      for (int64_t j = 0; j < k; ++j) {
        const __nv_fp8_e4m3 q(w[r * k + j] / scale[r]);
        w8[r * k + j] = q.__x;
        w[r * k + j] = static_cast<float>(static_cast<double>(static_cast<float>(q)) * scale[r]);
      }
    }
  }

  Problem Make(int64_t rows, int64_t k, bool fp8 = false) {
    Problem p;
    p.w16 = ToBf16(RandomFloats(rows * k));
    p.g16 = ToBf16(RandomFloats(k, 0.5f, 1.5f));
    p.w = FromBf16(p.w16);
    if (fp8) Quantize(rows, k, p.w, p.w8, p.scale);
    p.g = FromBf16(p.g16);
    p.x = RandomFloats(k, -3.0f, 3.0f);
    double ss = 0;
    for (float v : p.x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(k) + kEps);
    p.xn.resize(k);
    for (int64_t j = 0; j < k; ++j) p.xn[j] = p.x[j] * inv * p.g[j];
    return p;
  }

  // (dot, sum of |terms|) of row r of w with v.
  template <typename V>
  static std::pair<double, double> Dot(const std::vector<float>& w, int64_t r, int64_t k, const V& v) {
    double s = 0, a = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double t = static_cast<double>(w[r * k + j]) * v[j];
      s += t;
      a += std::fabs(t);
    }
    return {s, a};
  }

  static double Bound(double abs_sum) { return 1e-6 + 2e-5 * abs_sum; }

  static const __nv_fp8_e4m3* Fp8(const DeviceBuffer<uint8_t>& b) {
    return reinterpret_cast<const __nv_fp8_e4m3*>(b.get());
  }

  void CheckNorm(int64_t n, int64_t k, bool fp8 = false) {
    SCOPED_TRACE(std::string(fp8 ? "fp8 " : "") + "RmsNormGemv n " + std::to_string(n) + " k " +
                 std::to_string(k));
    const Problem p = Make(n, k, fp8);
    DeviceBuffer<Bf16> d_w(p.w16), d_g(p.g16);
    DeviceBuffer<uint8_t> d_w8(fp8 ? p.w8 : std::vector<uint8_t>{0});
    DeviceBuffer<float> d_x(p.x), d_y(n), d_scale(fp8 ? p.scale : std::vector<float>{0});
    CUDA_CHECK(cudaMemset(d_y.get(), 0xff, n * sizeof(float)));  // NaN: unwritten rows show
    if (fp8) {
      ASSERT_STATUS_OK(RmsNormGemv(d_x.get(), d_g.get(), kEps, Fp8(d_w8), d_scale.get(), n, k,
                                   d_y.get(), nullptr));
    } else {
      ASSERT_STATUS_OK(RmsNormGemv(d_x.get(), d_g.get(), kEps, d_w.get(), n, k, d_y.get(), nullptr));
    }
    const std::vector<float> got = d_y.ToHost();
    int bad = 0;
    for (int64_t r = 0; r < n && bad < 10; ++r) {
      const auto [want, abs_sum] = Dot(p.w, r, k, p.xn);
      if (!(std::fabs(got[r] - want) <= Bound(abs_sum))) {
        ADD_FAILURE() << "y[" << r << "] got " << got[r] << ", want " << want;
        ++bad;
      }
    }
  }

  void CheckSwiGlu(int64_t inter, int64_t k, bool fp8 = false) {
    SCOPED_TRACE(std::string(fp8 ? "fp8 " : "") + "RmsNormGemvSwiGlu inter " +
                 std::to_string(inter) + " k " + std::to_string(k));
    const Problem p = Make(2 * inter, k, fp8);
    DeviceBuffer<Bf16> d_w(p.w16), d_g(p.g16), d_act(inter + 1);
    DeviceBuffer<uint8_t> d_w8(fp8 ? p.w8 : std::vector<uint8_t>{0});
    DeviceBuffer<float> d_x(p.x), d_scale(fp8 ? p.scale : std::vector<float>{0});
    CUDA_CHECK(cudaMemset(d_act.get(), 0xff, (inter + 1) * sizeof(Bf16)));
    if (fp8) {
      ASSERT_STATUS_OK(RmsNormGemvSwiGlu(d_x.get(), d_g.get(), kEps, Fp8(d_w8), d_scale.get(),
                                         inter, k, d_act.get(), nullptr));
    } else {
      ASSERT_STATUS_OK(RmsNormGemvSwiGlu(d_x.get(), d_g.get(), kEps, d_w.get(), inter, k,
                                         d_act.get(), nullptr));
    }
    const std::vector<float> got = FromBf16(d_act.ToHost<uint16_t>());
    EXPECT_TRUE(std::isnan(got[inter])) << "wrote past the end of act";
    int bad = 0;
    for (int64_t i = 0; i < inter && bad < 10; ++i) {
      const auto [gate, gate_abs] = Dot(p.w, i, k, p.xn);
      const auto [up, up_abs] = Dot(p.w, inter + i, k, p.xn);
      const double silu = gate / (1.0 + std::exp(-gate));
      const double want = silu * up;
      // Errors of gate and up (slope of silu at most 1.1) carried through the product, plus
      // the bf16 rounding of the result (2^-8 relative).
      const double bound = 1.1 * Bound(gate_abs) * std::fabs(up) + Bound(up_abs) * std::fabs(silu) +
                           std::fabs(want) * (1.0 / 256) + 1e-6;
      if (!(std::fabs(got[i] - want) <= bound)) {
        ADD_FAILURE() << "act[" << i << "] got " << got[i] << ", want " << want << " (gate " << gate
                      << ", up " << up << ")";
        ++bad;
      }
    }
  }

  void CheckAccumulate(int64_t n, int64_t k, bool fp8 = false) {
    SCOPED_TRACE(std::string(fp8 ? "fp8 " : "") + "DecodeGemvAccumulate n " + std::to_string(n) +
                 " k " + std::to_string(k));
    const std::vector<uint16_t> w16 = ToBf16(RandomFloats(n * k)), x16 = ToBf16(RandomFloats(k));
    std::vector<float> w = FromBf16(w16);
    const std::vector<float> x = FromBf16(x16), y0 = RandomFloats(n + 1);
    std::vector<uint8_t> w8{0};
    std::vector<float> scale{0};
    if (fp8) Quantize(n, k, w, w8, scale);
    DeviceBuffer<Bf16> d_w(w16), d_x(x16);
    DeviceBuffer<uint8_t> d_w8(w8);
    DeviceBuffer<float> d_y(y0), d_scale(scale);
    if (fp8) {
      ASSERT_STATUS_OK(DecodeGemvAccumulate(d_x.get(), Fp8(d_w8), d_scale.get(), n, k, d_y.get(),
                                            nullptr));
    } else {
      ASSERT_STATUS_OK(DecodeGemvAccumulate(d_x.get(), d_w.get(), n, k, d_y.get(), nullptr));
    }
    const std::vector<float> got = d_y.ToHost();
    EXPECT_EQ(got[n], y0[n]) << "wrote past the end of y";
    int bad = 0;
    for (int64_t r = 0; r < n && bad < 10; ++r) {
      const auto [dot, abs_sum] = Dot(w, r, k, x);
      const double want = dot + y0[r];
      if (!(std::fabs(got[r] - want) <= Bound(abs_sum + std::fabs(y0[r])))) {
        ADD_FAILURE() << "y[" << r << "] got " << got[r] << ", want " << want;
        ++bad;
      }
    }
  }
};

TEST_F(DecodeGemvTest, RmsNormGemvMatchesTheNormThenTheProduct) {
  CheckNorm(1, 8);
  CheckNorm(17, 264);
  CheckNorm(45, 1000);
  CheckNorm(70, 4096);           // the 8B hidden size
  CheckNorm(3, 4096 + 1024 + 8);  // a batch and a bit
}

TEST_F(DecodeGemvTest, RmsNormGemvSwiGluMatchesTheNormTheProductsAndSiLU) {
  CheckSwiGlu(1, 8);
  CheckSwiGlu(7, 264);  // an odd number of pairs: the last warp has one
  CheckSwiGlu(33, 1000);
  CheckSwiGlu(64, 4096);
}

// FP8 weights: 16 weights a 16-byte load, so the row and k tails fall elsewhere (k % 16 == 0).
TEST_F(DecodeGemvTest, Fp8FormsMatchTheDequantizedProducts) {
  CheckNorm(1, 16, true);
  CheckNorm(17, 272, true);
  CheckNorm(45, 1008, true);
  CheckNorm(70, 8192, true);              // the 70B hidden size
  CheckNorm(3, 4096 + 2048 + 16, true);   // a batch (2048 columns) and a bit
  CheckSwiGlu(1, 16, true);
  CheckSwiGlu(7, 272, true);
  CheckSwiGlu(64, 4096, true);
  CheckAccumulate(1, 16, true);
  CheckAccumulate(19, 272, true);
  CheckAccumulate(16, 14336, true);       // K split many ways
  CheckAccumulate(4096, 4096, true);
  CheckAccumulate(33, 28672 + 16, true);  // the 70B down projection's k and a bit
}

TEST_F(DecodeGemvTest, AccumulateAddsIntoY) {
  CheckAccumulate(1, 8);
  CheckAccumulate(19, 264);
  CheckAccumulate(45, 2056);
  CheckAccumulate(16, 14336);   // few rows: K split many ways (atomics)
  CheckAccumulate(4096, 4096);  // the 8B o projection's shape
  CheckAccumulate(33, 14336 + 8);
}

// RmsNormGemvRopeKv against its two parts, RmsNormGemv then RopeKvAppend (each tested against
// CPU references above and in elementwise_kernels_test): the same rows, the same cache entries
// (the dot products are the same code; the rotation the same arithmetic: bf16 cache values may
// differ by one rounding step where fp32 contraction differs).
TEST_F(DecodeGemvTest, RmsNormGemvRopeKvEqualsTheNormGemvThenRopeAndAppend) {
  struct Case { int64_t n_q, n_kv, head_dim, k, position, slot; bool fp8; };
  for (const Case& cs : {Case{4, 2, 64, 256, 37, 21, false}, Case{8, 2, 128, 1000, 5000, 1000, false},
                         Case{3, 1, 32, 8, 0, 3, false}, Case{4, 4, 128, 4096, 131000, -1, false},
                         Case{4, 2, 64, 256, 37, 21, true}, Case{8, 1, 128, 8192, 9000, 500, true}}) {
    SCOPED_TRACE(std::string(cs.fp8 ? "fp8 " : "") + "heads " + std::to_string(cs.n_q) + "+" + std::to_string(cs.n_kv) + " x " +
                 std::to_string(cs.head_dim) + " k " + std::to_string(cs.k) + " slot " +
                 std::to_string(cs.slot));
    const int64_t n = (cs.n_q + 2 * cs.n_kv) * cs.head_dim, block_size = 16, blocks = 70;
    const Problem p = Make(n, cs.k, cs.fp8);
    std::vector<float> inv_freq(cs.head_dim / 2);
    for (size_t i = 0; i < inv_freq.size(); ++i) {
      inv_freq[i] = static_cast<float>(std::pow(500000.0, -2.0 * i / cs.head_dim));
    }
    const size_t cache_elems = blocks * cs.n_kv * block_size * cs.head_dim;
    DeviceBuffer<Bf16> d_w(p.w16), d_g(p.g16);
    DeviceBuffer<float> d_x(p.x), d_inv(inv_freq), d_y1(n), d_y2(n);
    DeviceBuffer<int32_t> d_pos(std::vector<int32_t>{static_cast<int32_t>(cs.position)});
    DeviceBuffer<int64_t> d_slot(std::vector<int64_t>{cs.slot});
    const std::vector<uint16_t> cache0 = ToBf16(RandomFloats(cache_elems));
    DeviceBuffer<Bf16> k1(cache0), v1(cache0), k2(cache0), v2(cache0);
    DeviceBuffer<uint8_t> d_w8(cs.fp8 ? p.w8 : std::vector<uint8_t>{0});
    DeviceBuffer<float> d_scale(cs.fp8 ? p.scale : std::vector<float>{0});
    if (cs.fp8) {
      ASSERT_STATUS_OK(RmsNormGemvRopeKv(d_x.get(), d_g.get(), kEps, Fp8(d_w8), d_scale.get(), cs.k,
                                         cs.n_q, cs.n_kv, cs.head_dim, d_pos.get(), d_inv.get(),
                                         d_slot.get(), block_size, k1.get(), v1.get(), d_y1.get(),
                                         nullptr));
      ASSERT_STATUS_OK(RmsNormGemv(d_x.get(), d_g.get(), kEps, Fp8(d_w8), d_scale.get(), n, cs.k,
                                   d_y2.get(), nullptr));
    } else {
      ASSERT_STATUS_OK(RmsNormGemvRopeKv(d_x.get(), d_g.get(), kEps, d_w.get(), cs.k, cs.n_q,
                                         cs.n_kv, cs.head_dim, d_pos.get(), d_inv.get(),
                                         d_slot.get(), block_size, k1.get(), v1.get(), d_y1.get(),
                                         nullptr));
      ASSERT_STATUS_OK(RmsNormGemv(d_x.get(), d_g.get(), kEps, d_w.get(), n, cs.k, d_y2.get(), nullptr));
    }
    ASSERT_STATUS_OK(RopeKvAppend(d_y2.get(), 1, n, cs.n_q, cs.n_kv, cs.head_dim, d_pos.get(),
                                  d_inv.get(), d_slot.get(), block_size, k2.get(), v2.get(), nullptr));
    const std::vector<float> y1 = d_y1.ToHost(), y2 = d_y2.ToHost();
    float scale = 0;
    for (float v : y2) scale = std::max(scale, std::fabs(v));
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 10; ++i) {
      if (!(std::fabs(y1[i] - y2[i]) <= 1e-6f * scale)) {
        ADD_FAILURE() << "qkv[" << i << "] fused " << y1[i] << ", two kernels " << y2[i];
        ++bad;
      }
    }
    for (int kv = 0; kv < 2; ++kv) {
      const std::vector<float> a = FromBf16((kv ? v1 : k1).ToHost<uint16_t>());
      const std::vector<float> b = FromBf16((kv ? v2 : k2).ToHost<uint16_t>());
      for (size_t i = 0; i < a.size() && bad < 10; ++i) {
        if (!(std::fabs(a[i] - b[i]) <= std::fabs(b[i]) / 128 + 1e-6f * scale)) {
          ADD_FAILURE() << (kv ? "v" : "k") << " cache[" << i << "] fused " << a[i]
                        << ", two kernels " << b[i];
          ++bad;
        }
      }
      if (cs.slot < 0) {
        EXPECT_EQ(a, FromBf16(cache0)) << "a padding token was stored";
      }
    }
  }
}

TEST_F(DecodeGemvTest, BadArgumentsAreInvalidArgument) {
  DeviceBuffer<float> d_f(64);
  DeviceBuffer<Bf16> d_b(128);
  // k not a multiple of 8, no rows, null and misaligned pointers.
  EXPECT_EQ(DecodeGemvAccumulate(d_b.get(), d_b.get(), 4, 12, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormGemv(d_f.get(), d_b.get(), kEps, d_b.get(), 0, 8, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormGemv(d_f.get(), nullptr, kEps, d_b.get(), 4, 8, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormGemvSwiGlu(d_f.get(), d_b.get(), kEps, d_b.get() + 1, 4, 8, d_b.get(), nullptr)
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormGemvSwiGlu(d_f.get(), d_b.get(), kEps, d_b.get(), 4, 8, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
  // FP8: k a multiple of 8 but not of 16, and missing scales.
  const auto* w8 = reinterpret_cast<const __nv_fp8_e4m3*>(d_b.get());
  EXPECT_EQ(DecodeGemvAccumulate(d_b.get(), w8, d_f.get(), 4, 24, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeGemvAccumulate(d_b.get(), w8, nullptr, 4, 16, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RmsNormGemv(d_f.get(), d_b.get(), kEps, w8, nullptr, 4, 16, d_f.get(), nullptr).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rag
