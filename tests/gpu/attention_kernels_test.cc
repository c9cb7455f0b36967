// KvAppend and PagedDecodeAttention against the CPU backend (engine/cpu/attention.cc) on fresh
// random inputs. Several sequences of different lengths (1, 17, 300 and one empty) share one
// cache whose blocks are handed out in a shuffled order (block tables are scattered, not
// contiguous); GQA 8/2 and MHA 4/4; head_dim 64 and 128; block_size 16 and 5.
//  - KvAppend: the bf16 cache read back equals the bf16-rounded inputs bit for bit at every
//    written slot, and untouched slots keep their fill pattern.
//  - Attention: the CPU reference runs in fp32 on a cache holding the same bf16-rounded k/v, so
//    only the summation order differs: |gpu - ref| <= 5e-5 + 1e-4 * |ref| per output (|v| <= 1).
//    An empty context must give zeros.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "engine/cpu/attention.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;

class AttentionKernelsTest : public GpuTest {
 protected:
  void Check(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t block_size) {
    SCOPED_TRACE("heads " + std::to_string(n_heads) + "/" + std::to_string(n_kv_heads) +
                 " head_dim " + std::to_string(head_dim) + " block_size " +
                 std::to_string(block_size));
    const std::vector<int64_t> lens = {1, 17, 300, 0};
    const int64_t batch = static_cast<int64_t>(lens.size());
    const int64_t kv_dim = n_kv_heads * head_dim, q_dim = n_heads * head_dim;

    // Scattered block tables: all blocks (plus 3 spare ones) in a shuffled order.
    int64_t max_blocks = 1, total_blocks = 3;
    for (int64_t len : lens) {
      const int64_t nb = (len + block_size - 1) / block_size;
      max_blocks = std::max(max_blocks, nb);
      total_blocks += nb;
    }
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng_);
    std::vector<std::vector<int32_t>> tables(lens.size());
    std::vector<int32_t> table_flat(static_cast<size_t>(batch * max_blocks), -1);  // padding
    size_t next = 0;
    for (size_t b = 0; b < lens.size(); ++b) {
      const int64_t nb = (lens[b] + block_size - 1) / block_size;
      for (int64_t i = 0; i < nb; ++i) {
        tables[b].push_back(ids[next++]);
        table_flat[b * max_blocks + i] = tables[b].back();
      }
    }

    // Every token of every sequence, appended in one KvAppend call (plus one padding token).
    std::vector<int64_t> slots;
    std::vector<std::pair<size_t, int64_t>> who;  // (sequence, position) of each token
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t p = 0; p < lens[b]; ++p) {
        slots.push_back(static_cast<int64_t>(tables[b][p / block_size]) * block_size +
                        p % block_size);
        who.emplace_back(b, p);
      }
    }
    slots.insert(slots.begin() + 5, -1);  // a skipped token in the middle
    who.insert(who.begin() + 5, {lens.size(), -1});
    const int64_t n_tokens = static_cast<int64_t>(slots.size());
    // k and v interleaved in one (n_tokens, 2 * kv_dim + 3) buffer to exercise the strides.
    const int64_t stride = 2 * kv_dim + 3;
    const std::vector<float> kv = RandomFloats(static_cast<size_t>(n_tokens * stride));
    const std::vector<float> kv_rounded = FromBf16(ToBf16(kv));

    const int64_t cache_elems = total_blocks * n_kv_heads * block_size * head_dim;
    DeviceBuffer<Bf16> d_kc(cache_elems), d_vc(cache_elems);
    CUDA_CHECK(cudaMemset(d_kc.get(), 0xff, cache_elems * sizeof(Bf16)));
    CUDA_CHECK(cudaMemset(d_vc.get(), 0xff, cache_elems * sizeof(Bf16)));
    DeviceBuffer<float> d_kv(kv);
    DeviceBuffer<int64_t> d_slots(slots);
    ASSERT_STATUS_OK(KvAppend(d_kv.get(), stride, d_kv.get() + kv_dim, stride, d_slots.get(),
                              n_tokens, n_kv_heads, head_dim, block_size, d_kc.get(),
                              d_vc.get(), nullptr));

    // Round trip: expected cache contents (fill 0xffff where nothing was written).
    std::vector<uint16_t> want_k(static_cast<size_t>(cache_elems), 0xffff), want_v = want_k;
    std::vector<float> ref_k(static_cast<size_t>(cache_elems), 0.0f), ref_v = ref_k;
    const AttentionShape shape{n_heads, n_kv_heads, head_dim, block_size};
    const KvCacheLayer ref_cache{ref_k.data(), ref_v.data()};
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (slots[t] < 0) continue;
      const std::vector<uint16_t> k16 =
          ToBf16(std::vector<float>(kv.begin() + t * stride, kv.begin() + t * stride + kv_dim));
      const std::vector<uint16_t> v16 = ToBf16(std::vector<float>(
          kv.begin() + t * stride + kv_dim, kv.begin() + t * stride + 2 * kv_dim));
      const int64_t block = slots[t] / block_size, slot = slots[t] % block_size;
      for (int64_t h = 0; h < n_kv_heads; ++h) {
        for (int64_t d = 0; d < head_dim; ++d) {
          const int64_t off = ((block * n_kv_heads + h) * block_size + slot) * head_dim + d;
          want_k[off] = k16[h * head_dim + d];
          want_v[off] = v16[h * head_dim + d];
        }
      }
      const auto [b, p] = who[t];
      WriteKv(ref_cache, shape, tables[b], p, kv_rounded.data() + t * stride,
              kv_rounded.data() + t * stride + kv_dim);
    }
    const std::vector<uint16_t> got_k = d_kc.ToHost<uint16_t>(), got_v = d_vc.ToHost<uint16_t>();
    int bad = 0;
    for (int64_t i = 0; i < cache_elems && bad < 10; ++i) {
      if (got_k[i] != want_k[i] || got_v[i] != want_v[i]) {
        ADD_FAILURE() << "cache element " << i << ": k got 0x" << std::hex << got_k[i]
                      << " want 0x" << want_k[i] << ", v got 0x" << got_v[i] << " want 0x"
                      << want_v[i] << std::dec;
        ++bad;
      }
    }

    // Decode attention: one query per sequence at its last position.
    const std::vector<float> q = RandomFloats(static_cast<size_t>(batch * q_dim));
    std::vector<int32_t> ctx(lens.begin(), lens.end());
    DeviceBuffer<float> d_q(q), d_out(batch * q_dim);
    DeviceBuffer<int32_t> d_tables(table_flat), d_ctx(ctx);
    CUDA_CHECK(cudaMemset(d_out.get(), 0xff, batch * q_dim * sizeof(float)));  // NaN
    ASSERT_STATUS_OK(PagedDecodeAttention(d_q.get(), d_kc.get(), d_vc.get(), d_tables.get(),
                                          max_blocks, d_ctx.get(), batch, n_heads, n_kv_heads,
                                          head_dim, block_size, d_out.get(), nullptr));
    const std::vector<float> got = d_out.ToHost();
    std::vector<float> want(static_cast<size_t>(batch * q_dim), 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      if (lens[b] == 0) continue;  // zeros
      const std::vector<AttentionQuery> queries = {{lens[b] - 1, &tables[b]}};
      PagedAttention(ref_cache, shape, queries, q.data() + b * q_dim, want.data() + b * q_dim,
                     nullptr);
    }
    bad = 0;
    for (int64_t i = 0; i < batch * q_dim && bad < 10; ++i) {
      const float tol = 5e-5f + 1e-4f * std::fabs(want[i]);
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ADD_FAILURE() << "out seq " << i / q_dim << " (len " << lens[i / q_dim] << ") head "
                      << (i % q_dim) / head_dim << " dim " << i % head_dim << ": got " << got[i]
                      << ", want " << want[i];
        ++bad;
      }
    }
  }
};

TEST_F(AttentionKernelsTest, GqaHeadDim128) {
  Check(8, 2, 128, 16);
  Check(8, 2, 128, 5);
}
TEST_F(AttentionKernelsTest, GqaHeadDim64) {
  Check(8, 2, 64, 16);
  Check(8, 2, 64, 5);
}
TEST_F(AttentionKernelsTest, MhaHeadDim128) { Check(4, 4, 128, 16); }
TEST_F(AttentionKernelsTest, MhaHeadDim64) { Check(4, 4, 64, 5); }

TEST_F(AttentionKernelsTest, RejectsBadShapes) {
  EXPECT_FALSE(PagedDecodeAttention(nullptr, nullptr, nullptr, nullptr, 1, nullptr, 1, 6, 4, 64,
                                    16, nullptr, nullptr)
                   .ok());  // 6 heads over 4 KV heads
  EXPECT_FALSE(PagedDecodeAttention(nullptr, nullptr, nullptr, nullptr, 1, nullptr, 1, 8, 2, 80,
                                    16, nullptr, nullptr)
                   .ok());  // head_dim not a multiple of 32
  EXPECT_FALSE(KvAppend(nullptr, 64, nullptr, 64, nullptr, 1, 2, 64, 16, nullptr, nullptr,
                        nullptr)
                   .ok());  // stride below n_kv_heads * head_dim
}

}  // namespace
}  // namespace rag
