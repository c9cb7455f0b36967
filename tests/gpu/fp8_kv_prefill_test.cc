// PagedPrefillAttention and PagedPrefillAttentionSimple over the FP8 KV cache (Fp8KvCache: e4m3
// codes, one fp32 scale per row of head_dim) against the CPU backend (engine/cpu/attention.cc)
// on fresh random inputs.
//  - Cache: random k/v rows of magnitudes spread over 2^-4 .. 2 (some rows all zero, scale 0),
//    quantized on the host as KvAppend's FP8 form does (scale max |x| / 448, codes x / scale by
//    cuda_fp8.h: nearest even, saturating), in blocks handed out in a shuffled order (scattered
//    block tables, -1 past each row's blocks, spare blocks). Every slot no sequence owns holds
//    code 0xff (an e4m3 NaN) and a NaN scale, so a kernel that reads one turns its output into NaN.
//  - Reference: the CPU attention in fp32 on a cache holding the dequantized values, code * scale;
//    for the tensor-core path, those values rounded to bf16 as it stages them (bf16(code * scale)).
//  - Outputs are poisoned (bf16 NaN) before each run and followed by a guard row: every element
//    must be written and finite, the guard and the q row of no sequence untouched.
//  - Tolerances, as for the bf16 cache (attention_kernels_test.cc): the simple path computes in
//    fp32 and rounds only its output, so each element must be within 1e-4 + 2^-7 |ref|; the
//    tensor-core path also rounds q and the probabilities to bf16, so each (row, head) is held to
//    a relative norm error of 2e-2 against the reference over the K/V it stages in bf16. Against
//    the exact code * scale (one more bf16 rounding of K/V, 2^-9 relative) the peaked softmax of
//    q in [-4, 4] measured up to 1.5e-2 on an H100 and once 2.04e-2 on an H200 (a random draw of
//    the Llama-3-8B shape, 2026-11-28), hence the bf16 reference. A misread row or a wrong scale
//    gives errors of order 1.
//  - Shapes: GQA 8/2, the Llama-3-8B 32/8, groups of 3; head_dim 64 and 128 (the tensor-core
//    path, both of its rows-per-warp forms) and 96 / 256 (the simple kernel); block_size 16 and 5;
//    chunked prefill at start positions > 0, contexts up to 1160 tokens, an empty chunk.
#include <cuda_fp8.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_pool.h"
#include "engine/cpu/attention.h"
#include "kernels/kernels.h"
#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

// The tensor-core path's relative norm error bound for each (row, head) (the header says why).
constexpr double kNormTolerance = 2e-2;

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::GpuTest;

using Chunks = std::vector<std::pair<int64_t, int64_t>>;  // (start_pos, q_len) per sequence

constexpr uint8_t kCodePoison = 0xff;                          // e4m3 NaN
const float kScalePoison = std::bit_cast<float>(0xffffffffu);  // a NaN

using Shape = testing_gpu::AttentionTestShape;

class Fp8KvPrefillTest : public GpuTest {
 protected:
  // A paged FP8 cache holding lens[s] tokens of each sequence s.
  struct Cache {
    AttentionShape shape;
    int64_t max_blocks = 0;
    std::vector<std::vector<int32_t>> tables;
    std::vector<float> ref_k, ref_v;  // dequantized values for the CPU reference
    // The same rounded to bf16, as the tensor-core path stages them.
    std::vector<float> bf16_k, bf16_v;
    std::unique_ptr<DeviceBuffer<__nv_fp8_e4m3>> k, v;
    std::unique_ptr<DeviceBuffer<float>> k_scale, v_scale;
    std::unique_ptr<DeviceBuffer<int32_t>> d_tables;  // (n_seqs, max_blocks), -1 padded
    KvCacheLayer ref() { return {ref_k.data(), ref_v.data()}; }
    KvCacheLayer ref_bf16() { return {bf16_k.data(), bf16_v.data()}; }
    Fp8KvCache device() const { return {k->get(), v->get(), k_scale->get(), v_scale->get()}; }
  };

  std::unique_ptr<Cache> BuildCache(const Shape& s, const std::vector<int64_t>& lens) {
    auto c = std::make_unique<Cache>();
    c->shape = s.cpu();
    const int64_t bs = s.block_size, hd = s.head_dim;
    // Spare blocks no table names, and -1 entries past every table row.
    testing_gpu::ScatteredTables t =
        testing_gpu::MakeScatteredTables(lens, bs, /*extra_per_seq=*/2, /*spare=*/3, rng_);
    const int64_t total_blocks = t.total_blocks;
    c->max_blocks = t.max_blocks;
    c->tables = std::move(t.tables);
    c->d_tables = std::make_unique<DeviceBuffer<int32_t>>(t.flat);

    const int64_t cache_rows = total_blocks * s.n_kv_heads * bs;
    std::vector<uint8_t> k_codes(static_cast<size_t>(cache_rows * hd), kCodePoison);
    std::vector<uint8_t> v_codes = k_codes;
    std::vector<float> k_scales(static_cast<size_t>(cache_rows), kScalePoison);
    std::vector<float> v_scales = k_scales;
    c->ref_k.assign(static_cast<size_t>(cache_rows * hd), 0.0f);
    c->ref_v = c->ref_k;
    std::uniform_real_distribution<float> log2_magnitude(-4.0f, 1.0f);
    int64_t n_written = 0;
    auto fill_row = [&](int64_t row, bool zero, std::vector<uint8_t>& codes,
                        std::vector<float>& scales, std::vector<float>& ref) {
      std::vector<float> x = RandomFloats(static_cast<size_t>(hd));
      const float magnitude = zero ? 0.0f : std::exp2(log2_magnitude(rng_));
      for (float& e : x) e *= magnitude;
      scales[row] = testing_gpu::QuantizeFp8Row(x.data(), hd, &codes[row * hd], &ref[row * hd]);
    };
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t p = 0; p < lens[b]; ++p) {
        const int64_t block = c->tables[b][p / bs];
        for (int64_t h = 0; h < s.n_kv_heads; ++h, ++n_written) {
          const int64_t row = (block * s.n_kv_heads + h) * bs + p % bs;
          fill_row(row, n_written % 11 == 5, k_codes, k_scales, c->ref_k);
          fill_row(row, n_written % 13 == 7, v_codes, v_scales, c->ref_v);
        }
      }
    }
    c->bf16_k = testing_gpu::FromBf16(testing_gpu::ToBf16(c->ref_k));
    c->bf16_v = testing_gpu::FromBf16(testing_gpu::ToBf16(c->ref_v));
    c->k = std::make_unique<DeviceBuffer<__nv_fp8_e4m3>>(k_codes);
    c->v = std::make_unique<DeviceBuffer<__nv_fp8_e4m3>>(v_codes);
    c->k_scale = std::make_unique<DeviceBuffer<float>>(k_scales);
    c->v_scale = std::make_unique<DeviceBuffer<float>>(v_scales);
    return c;
  }

  // Prefill of chunks (start_pos, q_len) of sequences whose cache holds start_pos + q_len
  // tokens; q rows of a fused qkv buffer, one unused row before the third sequence.
  // `simple` calls PagedPrefillAttentionSimple instead of PagedPrefillAttention.
  void CheckPrefill(const Shape& s, const Chunks& chunks, bool simple, float q_range = 1.0f) {
    SCOPED_TRACE(std::string(simple ? "simple" : "fast") + " FP8 prefill " + s.Name());
    std::vector<int64_t> lens;
    for (const auto& [start, q_len] : chunks) lens.push_back(start + q_len);
    std::unique_ptr<Cache> c = BuildCache(s, lens);
    const int64_t n_seqs = static_cast<int64_t>(chunks.size());
    const int64_t q_dim = s.n_heads * s.head_dim;
    const int64_t q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    const testing_gpu::PrefillRows p = testing_gpu::LayOutPrefillRows(chunks);
    const int64_t rows = p.rows, max_q_len = p.max_q_len;
    const std::vector<float> q =
        RandomFloats(static_cast<size_t>(rows * q_stride), -q_range, q_range);
    const bool tensor_cores = !simple && (s.head_dim == 64 || s.head_dim == 128);
    const std::vector<float> want = testing_gpu::PrefillReference(
        tensor_cores ? c->ref_bf16() : c->ref(), s, c->tables, p, q, q_stride);

    DeviceBuffer<float> d_q(q);
    DeviceBuffer<int32_t> d_offsets(p.q_offsets), d_lens(p.q_lens), d_start(p.start_pos);
    DeviceBuffer<Bf16> d_out((rows + 1) * q_dim);
    CUDA_CHECK(cudaMemset(d_out.get(), 0xff, (rows + 1) * q_dim * sizeof(Bf16)));
    auto run = [&](auto... args) {
      return simple ? PagedPrefillAttentionSimple(args...) : PagedPrefillAttention(args...);
    };
    ASSERT_STATUS_OK(run(d_q.get(), q_stride, c->device(), c->d_tables->get(), c->max_blocks,
                         d_offsets.get(), d_lens.get(), d_start.get(), n_seqs, max_q_len, s.n_heads,
                         s.n_kv_heads, s.head_dim, s.block_size, d_out.get(), nullptr, nullptr));
    testing_gpu::CheckAttentionOutput(d_out.ToHost<uint16_t>(), want, rows, s.n_heads, s.head_dim,
                                      !tensor_cores, {}, p.skip, kNormTolerance);
  }

  // Single-token, short, odd and multi-tile prompts, chunks after cached prefixes (1100 + 60
  // reads a 1160-token context), and an empty chunk.
  static Chunks MixedChunks() {
    return {{0, 1}, {0, 17}, {15, 15}, {0, 130}, {1100, 60}, {33, 64}, {7, 0}, {64, 65}};
  }
};

// The tensor-core kernels: mma.sync with 16 and 32 query rows a warp, and the warpgroup kernel
// (64; skipped where it is not usable). The setting is process-wide, and the default is restored
// when a test ends.
class Fp8KvPrefillFastTest : public Fp8KvPrefillTest, public testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    Fp8KvPrefillTest::SetUp();
    if (IsSkipped()) return;
    if (GetParam() == 64 && !PrefillAttentionWarpgroupKernelUsable()) {
      GTEST_SKIP() << "the warpgroup kernel needs a compute capability 9.0 GPU and sm_90a code";
    }
    SetPrefillAttentionRowsPerWarp(GetParam());
  }
  void TearDown() override {
    SetPrefillAttentionRowsPerWarp(0);
    Fp8KvPrefillTest::TearDown();
  }
};
INSTANTIATE_TEST_SUITE_P(RowsPerWarp, Fp8KvPrefillFastTest, testing::Values(16, 32, 64),
                         [](const testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "RowsPerWarp";
                         });

TEST_P(Fp8KvPrefillFastTest, GqaHeadDim128) {
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 128, 5}, MixedChunks(), /*simple=*/false);
}
TEST_P(Fp8KvPrefillFastTest, GqaHeadDim64) {
  CheckPrefill({8, 2, 64, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 64, 5}, MixedChunks(), /*simple=*/false);
  CheckPrefill({6, 2, 64, 16}, MixedChunks(), /*simple=*/false);  // groups of 3
}
TEST_P(Fp8KvPrefillFastTest, Llama8BShape) {
  CheckPrefill({32, 8, 128, 16}, {{0, 300}, {1000, 77}, {0, 1}}, /*simple=*/false);
  CheckPrefill({32, 8, 128, 16}, {{0, 129}, {200, 64}}, /*simple=*/false, /*q_range=*/4.0f);
}

TEST_F(Fp8KvPrefillTest, SimpleKernel) {
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/true);
  CheckPrefill({8, 2, 64, 5}, MixedChunks(), /*simple=*/true);
}
TEST_F(Fp8KvPrefillTest, FallbackHeadDims) {
  CheckPrefill({8, 2, 96, 16}, MixedChunks(), /*simple=*/false);  // takes the simple kernel
  CheckPrefill({4, 2, 256, 5}, {{0, 1}, {0, 70}, {100, 33}}, /*simple=*/false);
}

// A null code or scale pointer is refused (before any launch), naming the pointer.
TEST_F(Fp8KvPrefillTest, RejectsNullCachePointers) {
  DeviceBuffer<float> d_q(1024), d_scales(2 * 16);
  DeviceBuffer<__nv_fp8_e4m3> d_codes(2 * 16 * 128);
  DeviceBuffer<int32_t> d_i32(4);
  DeviceBuffer<Bf16> d_out(1024);
  const Fp8KvCache cache{d_codes.get(), d_codes.get(), d_scales.get(), d_scales.get()};
  const std::vector<std::pair<Fp8KvCache, std::string>> broken = {
      {{nullptr, cache.v, cache.k_scale, cache.v_scale}, "cache.k"},
      {{cache.k, nullptr, cache.k_scale, cache.v_scale}, "cache.v"},
      {{cache.k, cache.v, nullptr, cache.v_scale}, "k_scale"},
      {{cache.k, cache.v, cache.k_scale, nullptr}, "v_scale"}};
  for (const auto& [bad, name] : broken) {
    for (bool simple : {false, true}) {
      const Status status =
          simple ? PagedPrefillAttentionSimple(d_q.get(), 1024, bad, d_i32.get(), 1, d_i32.get(),
                                               d_i32.get(), d_i32.get(), 1, 1, 8, 2, 128, 16,
                                               d_out.get(), nullptr)
                 : PagedPrefillAttention(d_q.get(), 1024, bad, d_i32.get(), 1, d_i32.get(),
                                         d_i32.get(), d_i32.get(), 1, 1, 8, 2, 128, 16, d_out.get(),
                                         nullptr);
      EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << name << " simple " << simple;
      EXPECT_NE(status.message().find(name), std::string::npos) << status.ToString();
    }
  }
}

}  // namespace
}  // namespace rag
