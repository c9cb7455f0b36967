// Embedding gather, residual-add RMSNorm, RoPE and SwiGLU against the CPU backend's arithmetic
// (engine/cpu/), on fresh random inputs. Tolerances:
//   exact          embedding gather (a copy with an exact bf16 -> fp32 conversion)
//   fp32 outputs   |gpu - ref| <= 1e-5 + 1e-5 |ref| (different fp32 reduction order, libm vs
//                  CUDA sin/cos/exp within a few ulp)
//   bf16 outputs   |gpu - ref| <= 1e-5 + 2^-8 |ref| (half a bf16 ulp of rounding on top)
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/cpu/rope.h"
#include "engine/model_config.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::ExpectNear;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;

constexpr float kFp32Tol = 1e-5f;
constexpr float kBf16Rel = 1.0f / 256;

// --- embedding ---------------------------------------------------------------------------------

class EmbeddingGatherTest : public GpuTest {};

TEST_F(EmbeddingGatherTest, CopiesRowsExactlyAndZeroesBadIds) {
  for (int64_t dim : {1, 7, 64, 4096 + 3}) {
    const int64_t vocab = 257, n = 19;
    std::vector<uint16_t> table = ToBf16(RandomFloats(vocab * dim, -4, 4));
    std::vector<int32_t> ids(n);
    std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
    for (int32_t& id : ids) id = pick(rng_);
    ids[3] = -1;           // out of range on either side: zero rows
    ids[5] = vocab;
    ids[7] = vocab - 1;    // the last row
    DeviceBuffer<Bf16> d_table(table);
    DeviceBuffer<int32_t> d_ids(ids);
    DeviceBuffer<float> d_out32(n * dim);
    DeviceBuffer<Bf16> d_out16(n * dim);
    ASSERT_STATUS_OK(EmbeddingGather(d_table.get(), vocab, dim, d_ids.get(), n, d_out32.get(), nullptr));
    ASSERT_STATUS_OK(EmbeddingGather(d_table.get(), vocab, dim, d_ids.get(), n, d_out16.get(), nullptr));
    std::vector<float> out32 = d_out32.ToHost();
    std::vector<uint16_t> out16 = d_out16.ToHost<uint16_t>();
    for (int64_t t = 0; t < n; ++t) {
      const bool valid = ids[t] >= 0 && ids[t] < vocab;
      for (int64_t j = 0; j < dim; ++j) {
        const uint16_t want = valid ? table[ids[t] * dim + j] : 0;
        ASSERT_EQ(out16[t * dim + j], want) << "dim " << dim << " token " << t << " col " << j;
        ASSERT_EQ(out32[t * dim + j], testing_gpu::Bf16BitsToFloat(want))
            << "dim " << dim << " token " << t << " col " << j;
      }
    }
  }
}

// --- residual add + RMSNorm ----------------------------------------------------------------------

// The CPU backend's RmsNorm (engine/cpu/cpu_backend.cc): sum of squares in double.
void RmsNormRef(const float* x, const float* weight, int64_t dim, double eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * r);
}

class GatherRowsTest : public GpuTest {};

// Rows picked in any order, bf16 and fp32, row sizes with and without the 16-byte path.
TEST_F(GatherRowsTest, CopiesThePickedRowsExactly) {
  const std::vector<int32_t> rows = {5, 0, 6, 2};
  for (int64_t dim : {1, 7, 8, 64, 100}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const std::vector<float> in = RandomFloats(7 * dim);
    const std::vector<uint16_t> in16 = ToBf16(in);
    DeviceBuffer<float> d_in(in), d_out(rows.size() * dim);
    DeviceBuffer<Bf16> d_in16(in16), d_out16(rows.size() * dim);
    DeviceBuffer<int32_t> d_rows(rows);
    ASSERT_STATUS_OK(GatherRows(d_in.get(), dim, d_rows.get(), 4, d_out.get(), nullptr));
    ASSERT_STATUS_OK(GatherRows(d_in16.get(), dim, d_rows.get(), 4, d_out16.get(), nullptr));
    const std::vector<float> got = d_out.ToHost();
    const std::vector<uint16_t> got16 = d_out16.ToHost<uint16_t>();
    for (size_t i = 0; i < rows.size(); ++i) {
      for (int64_t d = 0; d < dim; ++d) {
        ASSERT_EQ(got[i * dim + d], in[rows[i] * dim + d]) << "row " << i << " dim " << d;
        ASSERT_EQ(got16[i * dim + d], in16[rows[i] * dim + d]) << "bf16 row " << i << " dim " << d;
      }
    }
  }
}

class AddRmsNormTest : public GpuTest {};

TEST_F(AddRmsNormTest, MatchesCpuWithAndWithoutResidual) {
  const float eps = 1e-5f;
  // dim % 4 == 0 up to 8192 takes the float4 path (4, 132, 4096, 8192), the others the scalar one.
  for (int64_t dim : {1, 4, 33, 132, 255, 4096, 8192, 8192 + 4, 8192 + 5}) {
    for (bool with_residual : {true, false}) {
      const int64_t n = 5;
      std::vector<float> x = RandomFloats(n * dim, -3, 3), res = RandomFloats(n * dim, -3, 3);
      std::vector<float> w = FromBf16(ToBf16(RandomFloats(dim, 0.5f, 1.5f)));
      DeviceBuffer<float> d_x(x), d_x2(x), d_res(res), d_y32(n * dim);
      DeviceBuffer<Bf16> d_w(ToBf16(w)), d_y16(n * dim);
      const float* r = with_residual ? d_res.get() : nullptr;
      const float* r2 = with_residual ? d_res.get() : nullptr;
      ASSERT_STATUS_OK(AddRmsNorm(d_x.get(), r, d_w.get(), n, dim, eps, d_y32.get(), nullptr));
      ASSERT_STATUS_OK(AddRmsNorm(d_x2.get(), r2, d_w.get(), n, dim, eps, d_y16.get(), nullptr));

      std::vector<float> sum = x, want(n * dim);
      if (with_residual) for (size_t i = 0; i < sum.size(); ++i) sum[i] = x[i] + res[i];
      for (int64_t t = 0; t < n; ++t) RmsNormRef(&sum[t * dim], w.data(), dim, eps, &want[t * dim]);
      SCOPED_TRACE("dim " + std::to_string(dim) + (with_residual ? " with" : " without") + " residual");
      // The residual stream is updated by one fp32 add: bit-exact.
      EXPECT_EQ(d_x.ToHost(), sum);
      EXPECT_EQ(d_x2.ToHost(), sum);
      ExpectNear(d_y32.ToHost(), want, kFp32Tol, kFp32Tol, "y fp32");
      ExpectNear(FromBf16(d_y16.ToHost<uint16_t>()), want, kFp32Tol, kBf16Rel, "y bf16");
    }
  }
}

// --- RoPE ------------------------------------------------------------------------------------------

ModelConfig RopeConfig(int64_t head_dim, bool llama31) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = llama31 ? 500000.0 : 10000.0;
  if (llama31) {  // Llama-3.1-8B's config.json
    c.rope_scaling.type = "llama3";
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
  }
  return c;
}

class RopeTest : public GpuTest {};

TEST_F(RopeTest, MatchesCpuOnFusedQkvRows) {
  struct Case { int64_t head_dim, n_q, n_kv; bool llama31; };
  for (const Case& cs : {Case{128, 32, 8, true}, Case{64, 9, 3, false}, Case{2, 1, 1, true},
                         Case{128, 4, 4, false}}) {
    const int64_t n_tokens = 23, rotated = (cs.n_q + cs.n_kv) * cs.head_dim;
    const int64_t stride = rotated + cs.n_kv * cs.head_dim;  // q | k | v: v is left alone
    const std::vector<float> inv_freq = ComputeRopeInvFreq(RopeConfig(cs.head_dim, cs.llama31));
    std::vector<float> x = RandomFloats(n_tokens * stride, -2, 2);
    std::vector<int32_t> pos(n_tokens);
    std::uniform_int_distribution<int32_t> pick(0, 131071);  // Llama 3.1's 128K context
    for (int32_t& p : pos) p = pick(rng_);
    pos[0] = 0;
    pos[1] = 1;
    pos[2] = 8191;
    DeviceBuffer<float> d_x(x), d_inv(inv_freq);
    DeviceBuffer<int32_t> d_pos(pos);
    ASSERT_STATUS_OK(RopeInplace(d_x.get(), n_tokens, stride, cs.n_q + cs.n_kv, cs.head_dim,
                                 d_pos.get(), d_inv.get(), nullptr));
    std::vector<float> want = x, cos(cs.head_dim / 2), sin(cs.head_dim / 2);
    for (int64_t t = 0; t < n_tokens; ++t) {
      RopeCosSin(inv_freq, pos[t], cos.data(), sin.data());
      ApplyRope(&want[t * stride], cs.n_q + cs.n_kv, cs.head_dim, cos.data(), sin.data());
    }
    SCOPED_TRACE("head_dim " + std::to_string(cs.head_dim) + " heads " +
                 std::to_string(cs.n_q + cs.n_kv) + (cs.llama31 ? " llama3.1" : " plain"));
    std::vector<float> got = d_x.ToHost();
    ExpectNear(got, want, kFp32Tol, kFp32Tol, "x");
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t j = rotated; j < stride; ++j) ASSERT_EQ(got[t * stride + j], x[t * stride + j]);
    }
  }
}

// RopeKvAppend against RopeInplace followed by KvAppend (both checked against the CPU above and
// in attention_kernels_test.cc) on the same rows: rotated q|k, untouched v, and the cache slots,
// with padding tokens (negative slots) rotated but never stored.
TEST_F(RopeTest, FusedKvAppendMatchesRopeThenKvAppend) {
  struct Case { int64_t head_dim, n_q, n_kv; };
  for (const Case& cs : {Case{128, 32, 8}, Case{64, 9, 3}, Case{128, 4, 4}}) {
    const int64_t n_tokens = 19, block_size = 16, num_blocks = 8;
    const int64_t stride = (cs.n_q + 2 * cs.n_kv) * cs.head_dim + 3;  // padded rows
    const std::vector<float> inv_freq = ComputeRopeInvFreq(RopeConfig(cs.head_dim, true));
    const std::vector<float> x = RandomFloats(n_tokens * stride, -2, 2);
    std::vector<int32_t> pos(n_tokens);
    std::vector<int64_t> slots(n_tokens);
    std::vector<int64_t> free_slots(num_blocks * block_size);
    for (int64_t i = 0; i < num_blocks * block_size; ++i) free_slots[i] = i;
    std::shuffle(free_slots.begin(), free_slots.end(), rng_);
    std::uniform_int_distribution<int32_t> pick(0, 131071);
    for (int64_t t = 0; t < n_tokens; ++t) {
      pos[t] = pick(rng_);
      slots[t] = t % 5 == 4 ? -1 : free_slots[t];
    }
    const int64_t cache = num_blocks * cs.n_kv * block_size * cs.head_dim;
    const std::vector<uint16_t> poison(cache, 0x7fc1);  // NaN: a slot written by one path only shows
    DeviceBuffer<float> d_x1(x), d_x2(x), d_inv(inv_freq);
    DeviceBuffer<int32_t> d_pos(pos);
    DeviceBuffer<int64_t> d_slots(slots);
    DeviceBuffer<Bf16> k1(poison), v1(poison), k2(poison), v2(poison);
    const int64_t q_dim = cs.n_q * cs.head_dim, kv_dim = cs.n_kv * cs.head_dim;
    ASSERT_STATUS_OK(RopeInplace(d_x1.get(), n_tokens, stride, cs.n_q + cs.n_kv, cs.head_dim,
                                 d_pos.get(), d_inv.get(), nullptr));
    ASSERT_STATUS_OK(KvAppend(d_x1.get() + q_dim, stride, d_x1.get() + q_dim + kv_dim, stride,
                              d_slots.get(), n_tokens, cs.n_kv, cs.head_dim, block_size, k1.get(),
                              v1.get(), nullptr));
    ASSERT_STATUS_OK(RopeKvAppend(d_x2.get(), n_tokens, stride, cs.n_q, cs.n_kv, cs.head_dim,
                                  d_pos.get(), d_inv.get(), d_slots.get(), block_size, k2.get(),
                                  v2.get(), nullptr));
    SCOPED_TRACE("head_dim " + std::to_string(cs.head_dim) + " heads " + std::to_string(cs.n_q) +
                 "+" + std::to_string(cs.n_kv));
    ExpectNear(d_x2.ToHost(), d_x1.ToHost(), kFp32Tol, kFp32Tol, "rows");
    const std::vector<uint16_t> k1h = k1.ToHost<uint16_t>(), k2h = k2.ToHost<uint16_t>();
    const std::vector<uint16_t> v1h = v1.ToHost<uint16_t>(), v2h = v2.ToHost<uint16_t>();
    ASSERT_EQ(v1h, v2h) << "v is copied, not computed: it must be identical";
    std::vector<uint16_t> k1w, k2w;  // the written slots
    for (int64_t i = 0; i < cache; ++i) {
      ASSERT_EQ(k1h[i] == 0x7fc1, k2h[i] == 0x7fc1) << "k slot " << i << " written by one path only";
      if (k1h[i] == 0x7fc1) continue;
      k1w.push_back(k1h[i]);
      k2w.push_back(k2h[i]);
    }
    EXPECT_EQ(static_cast<int64_t>(k1w.size()), (n_tokens - n_tokens / 5) * kv_dim);
    ExpectNear(FromBf16(k2w), FromBf16(k1w), kFp32Tol, kBf16Rel, "k cache");

    // rotate_q false (prefill: the attention rotates q): the q columns stay exactly as given,
    // everything else exactly as with rotate_q.
    DeviceBuffer<float> d_x3(x);
    DeviceBuffer<Bf16> k3(poison), v3(poison);
    ASSERT_STATUS_OK(RopeKvAppend(d_x3.get(), n_tokens, stride, cs.n_q, cs.n_kv, cs.head_dim,
                                  d_pos.get(), d_inv.get(), d_slots.get(), block_size, k3.get(),
                                  v3.get(), nullptr, /*rotate_q=*/false));
    const std::vector<float> x2h = d_x2.ToHost(), x3h = d_x3.ToHost();
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t col = 0; col < stride; ++col) {
        const int64_t i = t * stride + col;
        const float want = col < q_dim ? x[i] : x2h[i];
        ASSERT_EQ(x3h[i], want) << "token " << t << " column " << col;
      }
    }
    EXPECT_EQ(k3.ToHost<uint16_t>(), k2h);
    EXPECT_EQ(v3.ToHost<uint16_t>(), v2h);

    // The step's angles from RopeCosSinTable instead of computed per pair: the same bits.
    DeviceBuffer<float2> d_angles(static_cast<size_t>(n_tokens * cs.head_dim / 2));
    ASSERT_STATUS_OK(RopeCosSinTable(d_pos.get(), n_tokens, d_inv.get(), cs.head_dim / 2,
                                     d_angles.get(), nullptr));
    DeviceBuffer<float> d_x4(x);
    DeviceBuffer<Bf16> k4(poison), v4(poison);
    ASSERT_STATUS_OK(RopeKvAppend(d_x4.get(), n_tokens, stride, cs.n_q, cs.n_kv, cs.head_dim,
                                  d_pos.get(), d_inv.get(), d_slots.get(), block_size, k4.get(),
                                  v4.get(), nullptr, /*rotate_q=*/true, d_angles.get()));
    EXPECT_EQ(d_x4.ToHost(), x2h);
    EXPECT_EQ(k4.ToHost<uint16_t>(), k2h);
    EXPECT_EQ(v4.ToHost<uint16_t>(), v2h);
  }
}

// RopeCosSinTable against the CPU's cos/sin (positions up to 131071, Llama 3.1 scaling).
TEST_F(RopeTest, CosSinTableMatchesCpu) {
  for (int64_t head_dim : {64, 128}) {
    const std::vector<float> inv_freq = ComputeRopeInvFreq(RopeConfig(head_dim, true));
    const int64_t half = head_dim / 2, n_tokens = 300;
    std::vector<int32_t> pos(n_tokens);
    std::uniform_int_distribution<int32_t> pick(0, 131071);
    for (int32_t& p : pos) p = pick(rng_);
    DeviceBuffer<float> d_inv(inv_freq);
    DeviceBuffer<int32_t> d_pos(pos);
    DeviceBuffer<float2> d_table(static_cast<size_t>(n_tokens * half));
    ASSERT_STATUS_OK(RopeCosSinTable(d_pos.get(), n_tokens, d_inv.get(), half, d_table.get(),
                                     nullptr));
    const std::vector<float2> got = d_table.ToHost();
    std::vector<float> cos(half), sin(half), got_flat, want_flat;
    for (int64_t t = 0; t < n_tokens; ++t) {
      RopeCosSin(inv_freq, pos[t], cos.data(), sin.data());
      for (int64_t i = 0; i < half; ++i) {
        got_flat.insert(got_flat.end(), {got[t * half + i].x, got[t * half + i].y});
        want_flat.insert(want_flat.end(), {cos[i], sin[i]});
      }
    }
    SCOPED_TRACE("head_dim " + std::to_string(head_dim));
    ExpectNear(got_flat, want_flat, kFp32Tol, kFp32Tol, "cos, sin");
  }
  EXPECT_EQ(RopeCosSinTable(nullptr, 1, nullptr, 0, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
}

// --- SwiGLU --------------------------------------------------------------------------------------

class SwiGluTest : public GpuTest {};

TEST_F(SwiGluTest, MatchesCpu) {
  for (int64_t inter : {1, 13, 14336}) {
    for (int64_t n : {1, 3, 8}) {
      std::vector<float> gu = RandomFloats(n * 2 * inter, -8, 8);
      gu[0] = -100.0f;  // exp overflows to inf: silu -> -0
      DeviceBuffer<float> d_gu(gu), d_out32(n * inter);
      DeviceBuffer<Bf16> d_out16(n * inter);
      ASSERT_STATUS_OK(SwiGlu(d_gu.get(), n, inter, d_out32.get(), nullptr));
      ASSERT_STATUS_OK(SwiGlu(d_gu.get(), n, inter, d_out16.get(), nullptr));
      std::vector<float> want(n * inter);
      for (int64_t r = 0; r < n; ++r) {
        const float* g = &gu[r * 2 * inter];
        const float* u = g + inter;
        for (int64_t i = 0; i < inter; ++i) want[r * inter + i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
      SCOPED_TRACE("inter " + std::to_string(inter) + " n " + std::to_string(n));
      ExpectNear(d_out32.ToHost(), want, kFp32Tol, kFp32Tol, "out fp32");
      ExpectNear(FromBf16(d_out16.ToHost<uint16_t>()), want, kFp32Tol, kBf16Rel, "out bf16");
      // bf16 input (the prefill GEMM's output): the same formula on the rounded values.
      const std::vector<uint16_t> gu16 = ToBf16(gu);
      const std::vector<float> gu_r = FromBf16(gu16);
      DeviceBuffer<Bf16> d_gu16(gu16), d_out16b(n * inter);
      ASSERT_STATUS_OK(SwiGlu(d_gu16.get(), n, inter, d_out16b.get(), nullptr));
      for (int64_t r = 0; r < n; ++r) {
        const float* g = &gu_r[r * 2 * inter];
        const float* u = g + inter;
        for (int64_t i = 0; i < inter; ++i) want[r * inter + i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
      ExpectNear(FromBf16(d_out16b.ToHost<uint16_t>()), want, kFp32Tol, kBf16Rel, "bf16 in, bf16 out");
    }
  }
}

// --- argument checks (no device needed: launchers reject before touching CUDA) ---------------------

TEST(KernelArgumentsTest, BadShapesAreInvalidArgument) {
  EXPECT_EQ(EmbeddingGather(nullptr, 0, 8, nullptr, 1, static_cast<float*>(nullptr), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AddRmsNorm(nullptr, nullptr, nullptr, 1, 0, 1e-5f, static_cast<float*>(nullptr), nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RopeInplace(nullptr, 1, 10, 1, 7, nullptr, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);  // odd head_dim
  EXPECT_EQ(RopeInplace(nullptr, 1, 10, 2, 8, nullptr, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);  // heads past the row
  EXPECT_EQ(SwiGlu(nullptr, 1, 0, static_cast<float*>(nullptr), nullptr).code(),
            StatusCode::kInvalidArgument);
  // Empty batches are no-ops.
  EXPECT_TRUE(SwiGlu(nullptr, 0, 4, static_cast<float*>(nullptr), nullptr).ok());
}

}  // namespace
}  // namespace rag
