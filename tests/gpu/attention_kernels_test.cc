// KvAppend, PagedDecodeAttention and PagedPrefillAttention (its tensor-core path and its simple
// fallback) against the CPU backend (engine/cpu/attention.cc) on fresh random inputs.
//  - Cache: several sequences share one cache whose blocks are handed out in a shuffled order
//    (scattered block tables, -1 padding past each row's blocks), filled by KvAppend from a
//    strided buffer that interleaves k and v. Read back, it must equal the bf16-rounded inputs bit
//    for bit; untouched slots keep their fill 0xffff, a bf16 NaN, so a kernel that reads a slot
//    it should not turns its output into NaN.
//  - Reference: the CPU attention in fp32 on a cache holding the same bf16-rounded k/v.
//  - Outputs are poisoned (bf16 NaN) before each run and followed by a guard row: every element
//    must be written and finite, the guard untouched; the decode workspace is poisoned too.
//  - Tolerances. Decode and the simple prefill compute in fp32 and round only their output to
//    bf16 (at most 2^-8 relative), so each element must be within 1e-4 + 2^-7 |ref|. The
//    tensor-core prefill also rounds q and the probabilities to bf16, so each (row, head) is held
//    to a relative norm error of 1e-2 (about 3e-3 is expected).
//  - Shapes: GQA 8/2, the Llama-3-8B 32/8, groups of 3 and of 16 (more heads than one decode CTA
//    takes), MHA 4/4; head_dim 64 and 128 (the fast paths) and 96 / 256 (the fallbacks);
//    block_size 16 and 5; contexts of 0, 1, 15, 17, 64, 300 and 5000 tokens (5000 spreads over
//    many decode splits); chunked prefill at start positions > 0 with the earlier positions cached.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/rope.h"
#include "kernels/kernels.h"
#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::Bf16BitsToFloat;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;
using Shape = testing_gpu::AttentionTestShape;
using testing_gpu::CheckAttentionOutput;

constexpr uint16_t kPoison = testing_gpu::kBf16Poison;

// The bf16-cache forms of the prefill entry points (each also has an FP8-cache overload).
using Bf16PrefillFn = Status (*)(const float*, int64_t, const __nv_bfloat16*, const __nv_bfloat16*,
                                 const int32_t*, int64_t, const int32_t*, const int32_t*,
                                 const int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                 int64_t, __nv_bfloat16*, cudaStream_t, const float2*);

class AttentionKernelsTest : public GpuTest {
 protected:
  // CheckDecode switches the tensor-core kernel off for a pass; a failed assertion must not
  // leave it off for the tests after.
  void TearDown() override {
    SetDecodeAttentionTensorCores(true);
    GpuTest::TearDown();
  }

  // A paged cache holding lens[s] tokens of each sequence s, written by KvAppend and checked.
  struct Cache {
    AttentionShape shape;
    int64_t max_blocks = 0;
    std::vector<std::vector<int32_t>> tables;
    std::vector<float> ref_k, ref_v;  // fp32 copy of the bf16 cache for the CPU reference
    std::unique_ptr<DeviceBuffer<Bf16>> k, v;
    std::unique_ptr<DeviceBuffer<int32_t>> d_tables;  // (n_seqs, max_blocks), -1 padded
    KvCacheLayer ref() { return {ref_k.data(), ref_v.data()}; }
  };

  std::unique_ptr<Cache> BuildCache(const Shape& s, const std::vector<int64_t>& lens,
                                    int64_t extra_blocks_per_seq = 0) {
    auto c = std::make_unique<Cache>();
    c->shape = {s.n_heads, s.n_kv_heads, s.head_dim, s.block_size};
    const int64_t kv_dim = s.n_kv_heads * s.head_dim, bs = s.block_size;
    // Scattered block tables: all blocks (plus 3 spare ones) in a shuffled order.
    testing_gpu::ScatteredTables t =
        testing_gpu::MakeScatteredTables(lens, bs, extra_blocks_per_seq, /*spare=*/3, rng_);
    const int64_t total_blocks = t.total_blocks;
    c->max_blocks = t.max_blocks;
    c->tables = std::move(t.tables);
    c->d_tables = std::make_unique<DeviceBuffer<int32_t>>(t.flat);

    // Every token of every sequence in one KvAppend call, plus one padding token.
    std::vector<int64_t> slots;
    std::vector<std::pair<size_t, int64_t>> who;  // (sequence, position) of each token
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t p = 0; p < lens[b]; ++p) {
        slots.push_back(static_cast<int64_t>(c->tables[b][p / bs]) * bs + p % bs);
        who.emplace_back(b, p);
      }
    }
    const size_t pad_at = std::min<size_t>(5, slots.size());
    slots.insert(slots.begin() + pad_at, -1);
    who.insert(who.begin() + pad_at, {lens.size(), -1});
    const int64_t n_tokens = static_cast<int64_t>(slots.size());
    const int64_t stride = 2 * kv_dim + 3;  // k and v of a token side by side, then a gap
    const std::vector<float> kv = RandomFloats(static_cast<size_t>(n_tokens * stride));
    const std::vector<uint16_t> kv16 = ToBf16(kv);
    const std::vector<float> kv_rounded = FromBf16(kv16);

    const int64_t cache_elems = total_blocks * s.n_kv_heads * bs * s.head_dim;
    c->k = std::make_unique<DeviceBuffer<Bf16>>(cache_elems);
    c->v = std::make_unique<DeviceBuffer<Bf16>>(cache_elems);
    CUDA_CHECK(cudaMemset(c->k->get(), 0xff, cache_elems * sizeof(Bf16)));
    CUDA_CHECK(cudaMemset(c->v->get(), 0xff, cache_elems * sizeof(Bf16)));
    DeviceBuffer<float> d_kv(kv);
    DeviceBuffer<int64_t> d_slots(slots);
    EXPECT_TRUE(KvAppend(d_kv.get(), stride, d_kv.get() + kv_dim, stride, d_slots.get(), n_tokens,
                         s.n_kv_heads, s.head_dim, bs, c->k->get(), c->v->get(), nullptr)
                    .ok());

    // Expected cache contents, and the fp32 reference cache.
    std::vector<uint16_t> want_k(static_cast<size_t>(cache_elems), kPoison), want_v = want_k;
    c->ref_k.assign(static_cast<size_t>(cache_elems), 0.0f);
    c->ref_v = c->ref_k;
    const KvCacheLayer ref = c->ref();
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (slots[t] < 0) continue;
      const int64_t block = slots[t] / bs, slot = slots[t] % bs;
      for (int64_t h = 0; h < s.n_kv_heads; ++h) {
        for (int64_t d = 0; d < s.head_dim; ++d) {
          const int64_t off = ((block * s.n_kv_heads + h) * bs + slot) * s.head_dim + d;
          want_k[off] = kv16[t * stride + h * s.head_dim + d];
          want_v[off] = kv16[t * stride + kv_dim + h * s.head_dim + d];
        }
      }
      const auto [b, p] = who[t];
      WriteKv(ref, c->shape, c->tables[b], p, kv_rounded.data() + t * stride,
              kv_rounded.data() + t * stride + kv_dim);
    }
    const std::vector<uint16_t> got_k = c->k->ToHost<uint16_t>(), got_v = c->v->ToHost<uint16_t>();
    int bad = 0;
    for (int64_t i = 0; i < cache_elems && bad < 10; ++i) {
      if (got_k[i] != want_k[i] || got_v[i] != want_v[i]) {
        ADD_FAILURE() << "cache element " << i << ": k got 0x" << std::hex << got_k[i] << " want 0x"
                      << want_k[i] << ", v got 0x" << got_v[i] << " want 0x" << want_v[i]
                      << std::dec;
        ++bad;
      }
    }
    return c;
  }

  // Decode reference: out row b attends to positions [0, ctx[b]) (zeros when ctx[b] == 0).
  static std::vector<float> DecodeReference(Cache& c, const std::vector<float>& q, int64_t q_stride,
                                            const std::vector<int32_t>& ctx) {
    const int64_t q_dim = c.shape.n_heads * c.shape.head_dim;
    std::vector<float> want(ctx.size() * static_cast<size_t>(q_dim), 0.0f);
    for (size_t b = 0; b < ctx.size(); ++b) {
      if (ctx[b] == 0) continue;
      const std::vector<AttentionQuery> queries = {{ctx[b] - 1, &c.tables[b]}};
      PagedAttention(c.ref(), c.shape, queries, q.data() + b * q_stride, want.data() + b * q_dim,
                     testing_gpu::AttentionPool());
    }
    return want;
  }

  // Decode over contexts `lens` (every sequence's whole cache), q rows of a fused qkv buffer.
  void CheckDecode(const Shape& s, const std::vector<int64_t>& lens, float q_range = 1.0f) {
    SCOPED_TRACE("decode " + s.Name());
    std::unique_ptr<Cache> c = BuildCache(s, lens);
    const int64_t batch = static_cast<int64_t>(lens.size());
    const int64_t q_dim = s.n_heads * s.head_dim;
    const int64_t q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    const std::vector<float> q =
        RandomFloats(static_cast<size_t>(batch * q_stride), -q_range, q_range);
    const std::vector<int32_t> ctx(lens.begin(), lens.end());
    const int64_t ws = PagedDecodeAttentionWorkspace(batch, s.n_heads, s.n_kv_heads, s.head_dim,
                                                     c->max_blocks, s.block_size);
    DeviceBuffer<float> d_q(q), d_ws(std::max<int64_t>(ws, 1));
    DeviceBuffer<int32_t> d_ctx(ctx);
    DeviceBuffer<Bf16> d_out((batch + 1) * q_dim);
    // Split counters: zero once; each call must leave them zero for the next (second call).
    DeviceBuffer<int32_t> d_counters(batch * s.n_heads);
    CUDA_CHECK(cudaMemset(d_counters.get(), 0, batch * s.n_heads * sizeof(int32_t)));
    std::vector<bool> zero(lens.size());
    for (size_t b = 0; b < lens.size(); ++b) zero[b] = lens[b] == 0;
    const std::vector<float> want = DecodeReference(*c, q, q_stride, ctx);
    // head_dim 128 also on the tensor-core kernel (SetDecodeAttentionTensorCores), whose
    // bf16 weights get 2^-7 of the attention over |v| as slack (CheckAttentionOutput).
    const std::vector<float> want_abs =
        s.head_dim == 128 ? DecodeReferenceOverAbsV(*c, q, q_stride, ctx) : std::vector<float>();
    for (bool mma : {false, true}) {
      if (mma && s.head_dim != 128) break;
      SCOPED_TRACE(mma ? "tensor cores" : "SIMT");
      SetDecodeAttentionTensorCores(mma);
      for (int call = 0; call < 3; ++call) {  // combine kernel, then in-kernel merge twice
        SCOPED_TRACE(call == 0 ? "combine kernel"
                               : "merged by the last split, call " + std::to_string(call));
        CUDA_CHECK(cudaMemset(d_out.get(), 0xff, (batch + 1) * q_dim * sizeof(Bf16)));
        CUDA_CHECK(cudaMemset(d_ws.get(), 0xff, std::max<int64_t>(ws, 1) * sizeof(float)));
        ASSERT_STATUS_OK(PagedDecodeAttention(d_q.get(), q_stride, c->k->get(), c->v->get(),
                                              c->d_tables->get(), c->max_blocks, d_ctx.get(), batch,
                                              s.n_heads, s.n_kv_heads, s.head_dim, s.block_size,
                                              ws > 0 ? d_ws.get() : nullptr, d_out.get(), nullptr,
                                              call == 0 ? nullptr : d_counters.get()));
        CheckAttentionOutput(d_out.ToHost<uint16_t>(), want, batch, s.n_heads, s.head_dim,
                             /*fp32_kernel=*/true, zero, {}, 1e-2, mma ? &want_abs : nullptr);
      }
      SetDecodeAttentionTensorCores(true);
      for (int32_t v : d_counters.ToHost()) ASSERT_EQ(v, 0) << "a split counter was left set";
    }
  }

  // The decode reference over |v|: sum of p |v| / sum of p.
  static std::vector<float> DecodeReferenceOverAbsV(Cache& c, const std::vector<float>& q,
                                                    int64_t q_stride,
                                                    const std::vector<int32_t>& ctx) {
    const std::vector<float> v = c.ref_v;
    for (float& x : c.ref_v) x = std::fabs(x);
    std::vector<float> out = DecodeReference(c, q, q_stride, ctx);
    c.ref_v = v;
    return out;
  }

  // Prefill of chunks (start_pos, q_len) of sequences whose cache holds start_pos + q_len
  // tokens; q rows of a fused qkv buffer, one unused row between the second and third sequence.
  // `simple` calls PagedPrefillAttentionSimple instead of PagedPrefillAttention. `rope`: q is
  // passed unrotated with RopeCosSinTable's angles of Llama 3.1's RoPE at each row's position,
  // and the reference rotates it on the CPU.
  void CheckPrefill(const Shape& s, const std::vector<std::pair<int64_t, int64_t>>& chunks,
                    bool simple, float q_range = 1.0f, bool rope = false) {
    SCOPED_TRACE(std::string(simple ? "simple" : "fast") + (rope ? " rope" : "") + " prefill " +
                 s.Name());
    std::vector<int64_t> lens;
    for (const auto& [start, q_len] : chunks) lens.push_back(start + q_len);
    std::unique_ptr<Cache> c = BuildCache(s, lens, /*extra_blocks_per_seq=*/2);
    const int64_t n_seqs = static_cast<int64_t>(chunks.size());
    const int64_t q_dim = s.n_heads * s.head_dim;
    const int64_t q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    const testing_gpu::PrefillRows p = testing_gpu::LayOutPrefillRows(chunks);
    const int64_t rows = p.rows, max_q_len = p.max_q_len;
    const std::vector<float> q =
        RandomFloats(static_cast<size_t>(rows * q_stride), -q_range, q_range);

    std::vector<float> inv_freq;
    if (rope) {
      ModelConfig config;  // Llama-3.1-8B's RoPE
      config.head_dim = s.head_dim;
      config.rope_theta = 500000.0;
      config.rope_scaling.type = "llama3";
      config.rope_scaling.factor = 8.0;
      config.rope_scaling.low_freq_factor = 1.0;
      config.rope_scaling.high_freq_factor = 4.0;
      config.rope_scaling.original_max_position_embeddings = 8192;
      inv_freq = ComputeRopeInvFreq(config);
    }
    // Reference: rotated on the CPU for `rope`.
    std::vector<float> cos(static_cast<size_t>(s.head_dim / 2)), sin(cos.size());
    const std::vector<float> want = testing_gpu::PrefillReference(
        c->ref(), s, c->tables, p, q, q_stride,
        rope ? std::function<void(float*, int64_t)>([&](float* row, int64_t pos) {
          RopeCosSin(inv_freq, pos, cos.data(), sin.data());
          ApplyRope(row, s.n_heads, s.head_dim, cos.data(), sin.data());
        })
             : nullptr);

    DeviceBuffer<float> d_q(q);
    DeviceBuffer<int32_t> d_offsets(p.q_offsets), d_lens(p.q_lens), d_start(p.start_pos);
    DeviceBuffer<float2> d_angles(static_cast<size_t>(rows * s.head_dim / 2));
    if (rope) {
      std::vector<int32_t> row_pos(static_cast<size_t>(rows), 0);  // rows of no sequence: 0
      for (int64_t i = 0; i < n_seqs; ++i) {
        for (int64_t r = 0; r < p.q_lens[i]; ++r) row_pos[p.q_offsets[i] + r] = p.start_pos[i] + r;
      }
      DeviceBuffer<int32_t> d_row_pos(row_pos);
      DeviceBuffer<float> d_inv(inv_freq);
      ASSERT_STATUS_OK(RopeCosSinTable(d_row_pos.get(), rows, d_inv.get(), s.head_dim / 2,
                                       d_angles.get(), nullptr));
      CUDA_CHECK(cudaDeviceSynchronize());  // before the buffers above are freed
    }
    DeviceBuffer<Bf16> d_out((rows + 1) * q_dim);
    CUDA_CHECK(cudaMemset(d_out.get(), 0xff, (rows + 1) * q_dim * sizeof(Bf16)));
    const Bf16PrefillFn fn = simple ? Bf16PrefillFn{&PagedPrefillAttentionSimple}
                                    : Bf16PrefillFn{&PagedPrefillAttention};
    ASSERT_STATUS_OK(fn(d_q.get(), q_stride, c->k->get(), c->v->get(), c->d_tables->get(),
                        c->max_blocks, d_offsets.get(), d_lens.get(), d_start.get(), n_seqs,
                        max_q_len, s.n_heads, s.n_kv_heads, s.head_dim, s.block_size, d_out.get(),
                        nullptr, rope ? d_angles.get() : nullptr));
    const bool tensor_cores = !simple && (s.head_dim == 64 || s.head_dim == 128);
    CheckAttentionOutput(d_out.ToHost<uint16_t>(), want, rows, s.n_heads, s.head_dim, !tensor_cores,
                         {}, p.skip);
  }

  // The chunks of CheckPrefill: single-token, short, odd and multi-tile prompts, chunks after
  // cached prefixes (the 4800 + 200 one reads a 5000-token context), and an empty chunk.
  static std::vector<std::pair<int64_t, int64_t>> MixedChunks() {
    return {{0, 1}, {0, 17}, {15, 15}, {0, 130}, {4800, 200}, {33, 64}, {7, 0}, {64, 65}};
  }
};

const std::vector<int64_t> kDecodeLens = {1, 15, 17, 5000, 0, 300, 64};

TEST_F(AttentionKernelsTest, DecodeGqaHeadDim128) {
  CheckDecode({8, 2, 128, 16}, kDecodeLens);
  CheckDecode({8, 2, 128, 5}, kDecodeLens);
}
TEST_F(AttentionKernelsTest, DecodeGqaHeadDim64) {
  CheckDecode({8, 2, 64, 16}, kDecodeLens);
  CheckDecode({8, 2, 64, 5}, kDecodeLens);
}
TEST_F(AttentionKernelsTest, DecodeLlama8BShape) {
  CheckDecode({32, 8, 128, 16}, {5000, 1, 2000});
  CheckDecode({32, 8, 128, 16}, {4000, 17}, /*q_range=*/4.0f);  // peaked softmax
}
TEST_F(AttentionKernelsTest, DecodeMha) {
  CheckDecode({4, 4, 128, 16}, kDecodeLens);
  CheckDecode({4, 4, 64, 5}, kDecodeLens);
}
TEST_F(AttentionKernelsTest, DecodeOddGroups) {
  CheckDecode({6, 2, 64, 16}, kDecodeLens);    // groups of 3
  CheckDecode({16, 1, 128, 16}, kDecodeLens);  // a group of 16: two CTAs per KV head
}
TEST_F(AttentionKernelsTest, DecodeFallbackHeadDims) {
  CheckDecode({8, 2, 96, 16}, kDecodeLens);
  CheckDecode({4, 2, 256, 5}, {1, 17, 700, 0});
}
// A max_blocks_per_seq of at most one tile: a single split, no workspace, no combine kernel.
TEST_F(AttentionKernelsTest, DecodeSingleSplit) {
  EXPECT_EQ(PagedDecodeAttentionWorkspace(4, 8, 2, 128, 2, 16), 0);
  CheckDecode({8, 2, 128, 16}, {1, 15, 17, 32, 0});
  CheckDecode({8, 2, 64, 16}, {32, 0, 3});
}

// The backend captures decode steps in CUDA graphs and replays them with other lengths: one
// captured call must stay correct for lengths it was not captured with.
TEST_F(AttentionKernelsTest, DecodeGraphReplayWithOtherLengths) {
  const Shape s{8, 2, 128, 16};
  std::unique_ptr<Cache> c = BuildCache(s, {5000, 5000, 300}, /*extra_blocks_per_seq=*/7);
  const int64_t batch = 3, q_dim = s.n_heads * s.head_dim, q_stride = q_dim + 5;
  const std::vector<float> q = RandomFloats(static_cast<size_t>(batch * q_stride));
  const int64_t ws = PagedDecodeAttentionWorkspace(batch, s.n_heads, s.n_kv_heads, s.head_dim,
                                                   c->max_blocks, s.block_size);
  ASSERT_GT(ws, 0);
  DeviceBuffer<float> d_q(q), d_ws(ws);
  DeviceBuffer<int32_t> d_ctx(static_cast<size_t>(batch));
  DeviceBuffer<Bf16> d_out((batch + 1) * q_dim);
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status st = PagedDecodeAttention(
      d_q.get(), q_stride, c->k->get(), c->v->get(), c->d_tables->get(), c->max_blocks, d_ctx.get(),
      batch, s.n_heads, s.n_kv_heads, s.head_dim, s.block_size, d_ws.get(), d_out.get(), stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  ASSERT_STATUS_OK(st);
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (const std::vector<int32_t>& ctx : std::vector<std::vector<int32_t>>{
           {5000, 40, 1}, {1, 4999, 300}, {0, 2500, 17}, {3333, 5000, 0}}) {
    SCOPED_TRACE("lengths " + std::to_string(ctx[0]) + " " + std::to_string(ctx[1]) + " " +
                 std::to_string(ctx[2]));
    CUDA_CHECK(cudaMemcpyAsync(d_ctx.get(), ctx.data(), ctx.size() * sizeof(int32_t),
                               cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaMemsetAsync(d_out.get(), 0xff, (batch + 1) * q_dim * sizeof(Bf16), stream));
    CUDA_CHECK(cudaGraphLaunch(exec, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<bool> zero(ctx.size());
    for (size_t b = 0; b < ctx.size(); ++b) zero[b] = ctx[b] == 0;
    CheckAttentionOutput(d_out.ToHost<uint16_t>(), DecodeReference(*c, q, q_stride, ctx), batch,
                         s.n_heads, s.head_dim, /*fp32_kernel=*/true, zero);
  }
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaStreamDestroy(stream));
}

// The tensor-core kernels: mma.sync with 16 and with 32 query rows a warp, and the warpgroup
// kernel (64: wgmma, head_dim 128 on compute capability 9.0 GPUs; skipped elsewhere). Each prefill
// test runs all three. The setting is process-wide; the default is restored when a test ends.
class PrefillAttentionTest : public AttentionKernelsTest, public testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    AttentionKernelsTest::SetUp();
    if (IsSkipped()) return;
    if (GetParam() == 64 && !PrefillAttentionWarpgroupKernelUsable()) {
      GTEST_SKIP() << "the warpgroup kernel needs a compute capability 9.0 GPU and sm_90a code";
    }
    SetPrefillAttentionRowsPerWarp(GetParam());
  }
  void TearDown() override {
    SetPrefillAttentionRowsPerWarp(0);
    AttentionKernelsTest::TearDown();
  }
};
INSTANTIATE_TEST_SUITE_P(RowsPerWarp, PrefillAttentionTest, testing::Values(16, 32, 64),
                         [](const testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "RowsPerWarp";
                         });

TEST_P(PrefillAttentionTest, GqaHeadDim128) {
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 128, 5}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/true);
}
TEST_P(PrefillAttentionTest, GqaHeadDim64) {
  CheckPrefill({8, 2, 64, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 64, 5}, MixedChunks(), /*simple=*/false);
  CheckPrefill({8, 2, 64, 5}, MixedChunks(), /*simple=*/true);
}
TEST_P(PrefillAttentionTest, MhaAndOddGroups) {
  CheckPrefill({4, 4, 128, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({4, 4, 64, 16}, MixedChunks(), /*simple=*/false);
  CheckPrefill({6, 2, 64, 16}, MixedChunks(), /*simple=*/false);  // groups of 3
}
TEST_P(PrefillAttentionTest, Llama8BShape) {
  CheckPrefill({32, 8, 128, 16}, {{0, 300}, {1000, 77}, {0, 1}}, /*simple=*/false);
  CheckPrefill({32, 8, 128, 16}, {{0, 129}, {200, 64}}, /*simple=*/false, /*q_range=*/4.0f);
}
TEST_P(PrefillAttentionTest, FallbackHeadDims) {
  CheckPrefill({8, 2, 96, 16}, MixedChunks(), /*simple=*/false);  // takes the simple kernel
  CheckPrefill({4, 2, 256, 5}, {{0, 1}, {0, 70}, {100, 33}}, /*simple=*/false);
}
// q left unrotated (the backend's prefill): every path rotates it as it loads it, at the row's
// position (chunks after cached prefixes included), and matches attention over the CPU-rotated q.
TEST_P(PrefillAttentionTest, RotatesQWhenAsked) {
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/false, 1.0f, /*rope=*/true);
  CheckPrefill({8, 2, 64, 5}, MixedChunks(), /*simple=*/false, 1.0f, /*rope=*/true);
  CheckPrefill({8, 2, 128, 16}, MixedChunks(), /*simple=*/true, 1.0f, /*rope=*/true);
  CheckPrefill({8, 2, 96, 16}, MixedChunks(), /*simple=*/false, 1.0f, /*rope=*/true);
  CheckPrefill({32, 8, 128, 16}, {{0, 129}, {4800, 200}}, /*simple=*/false, 4.0f, /*rope=*/true);
}

// The first chunk of a 2048-token prompt in the Llama-3.1-8B shape, for all 32 layers' worth of
// calls: the tensor-core path against the simple one (the CPU would take minutes), and its time
// (printed; the target is well under 10 ms for the 32 calls on an H100).
TEST_F(AttentionKernelsTest, PrefillLlama8BPromptAgainstSimple) {
  const Shape s{32, 8, 128, 16};
  const int64_t n = 2048, q_dim = s.n_heads * s.head_dim;
  const int64_t q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
  const int64_t max_blocks = n / s.block_size;
  const int64_t kv_elems = max_blocks * s.n_kv_heads * s.block_size * s.head_dim;
  std::vector<int32_t> table(static_cast<size_t>(max_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng_);
  DeviceBuffer<float> d_q(RandomFloats(static_cast<size_t>(n * q_stride)));
  DeviceBuffer<Bf16> d_k(ToBf16(RandomFloats(static_cast<size_t>(kv_elems)))),
      d_v(ToBf16(RandomFloats(static_cast<size_t>(kv_elems))));
  DeviceBuffer<int32_t> d_table(table), d_offsets(std::vector<int32_t>{0}),
      d_lens(std::vector<int32_t>{static_cast<int32_t>(n)}), d_start(std::vector<int32_t>{0});
  DeviceBuffer<Bf16> d_fast(n * q_dim), d_simple(n * q_dim);
  auto run = [&](bool simple, Bf16* out) {
    const Bf16PrefillFn fn = simple ? Bf16PrefillFn{&PagedPrefillAttentionSimple}
                                    : Bf16PrefillFn{&PagedPrefillAttention};
    return fn(d_q.get(), q_stride, d_k.get(), d_v.get(), d_table.get(), max_blocks, d_offsets.get(),
              d_lens.get(), d_start.get(), 1, n, s.n_heads, s.n_kv_heads, s.head_dim, s.block_size,
              out, nullptr, nullptr);
  };
  ASSERT_STATUS_OK(run(true, d_simple.get()));
  ASSERT_STATUS_OK(run(false, d_fast.get()));  // warm-up
  cudaEvent_t t0, t1;
  CUDA_CHECK(cudaEventCreate(&t0));
  CUDA_CHECK(cudaEventCreate(&t1));
  CUDA_CHECK(cudaEventRecord(t0, nullptr));
  for (int layer = 0; layer < 32; ++layer) ASSERT_STATUS_OK(run(false, d_fast.get()));
  CUDA_CHECK(cudaEventRecord(t1, nullptr));
  CUDA_CHECK(cudaEventSynchronize(t1));
  float ms = 0.0f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
  std::printf("prefill attention, 2048-token prompt, Llama-3.1-8B shape: %.3f ms for 32 layers\n",
              ms);
  RecordProperty("ms_32_layers", std::to_string(ms));
  CUDA_CHECK(cudaEventDestroy(t0));
  CUDA_CHECK(cudaEventDestroy(t1));

  const std::vector<uint16_t> fast = d_fast.ToHost<uint16_t>(),
                              simple = d_simple.ToHost<uint16_t>();
  std::vector<float> want(simple.size());
  for (size_t i = 0; i < simple.size(); ++i) want[i] = Bf16BitsToFloat(simple[i]);
  std::vector<uint16_t> got = fast;
  got.resize(fast.size() + static_cast<size_t>(q_dim), kPoison);  // CheckOutput's guard row
  CheckAttentionOutput(got, want, n, s.n_heads, s.head_dim, /*fp32_kernel=*/false);
}

// Decode time at batch 1 in the Llama-3.1-8B shape (printed: the split-KV kernel should read the
// 8000-token context near HBM bandwidth, about 33 MB per layer).
TEST_F(AttentionKernelsTest, DecodeLlama8BTime) {
  const Shape s{32, 8, 128, 16};
  for (int64_t len : {2000, 8000}) {
    const int64_t max_blocks = 8192 / s.block_size;  // a graph captured for 8192 tokens
    const int64_t kv_elems = max_blocks * s.n_kv_heads * s.block_size * s.head_dim;
    std::vector<int32_t> table(static_cast<size_t>(max_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng_);
    DeviceBuffer<float> d_q(RandomFloats(static_cast<size_t>(s.n_heads * s.head_dim)));
    DeviceBuffer<Bf16> d_k(kv_elems), d_v(kv_elems);
    CUDA_CHECK(cudaMemset(d_k.get(), 0, kv_elems * sizeof(Bf16)));
    CUDA_CHECK(cudaMemset(d_v.get(), 0, kv_elems * sizeof(Bf16)));
    DeviceBuffer<int32_t> d_table(table), d_ctx(std::vector<int32_t>{static_cast<int32_t>(len)});
    const int64_t ws = PagedDecodeAttentionWorkspace(1, s.n_heads, s.n_kv_heads, s.head_dim,
                                                     max_blocks, s.block_size);
    DeviceBuffer<float> d_ws(std::max<int64_t>(ws, 1));
    DeviceBuffer<Bf16> d_out(s.n_heads * s.head_dim);
    auto run = [&] {
      return PagedDecodeAttention(d_q.get(), s.n_heads * s.head_dim, d_k.get(), d_v.get(),
                                  d_table.get(), max_blocks, d_ctx.get(), 1, s.n_heads,
                                  s.n_kv_heads, s.head_dim, s.block_size, d_ws.get(), d_out.get(),
                                  nullptr);
    };
    ASSERT_STATUS_OK(run());
    cudaEvent_t t0, t1;
    CUDA_CHECK(cudaEventCreate(&t0));
    CUDA_CHECK(cudaEventCreate(&t1));
    CUDA_CHECK(cudaEventRecord(t0, nullptr));
    constexpr int kReps = 64;
    for (int i = 0; i < kReps; ++i) ASSERT_STATUS_OK(run());
    CUDA_CHECK(cudaEventRecord(t1, nullptr));
    CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    const double us = 1000.0 * ms / kReps;
    const double gbps = 2.0 * len * s.n_kv_heads * s.head_dim * 2 / (us * 1e3);
    std::printf(
        "decode attention, batch 1, Llama-3.1-8B shape, context %lld: %.1f us per layer "
        "(%.0f GB/s of K/V)\n",
        static_cast<long long>(len), us, gbps);
    CUDA_CHECK(cudaEventDestroy(t0));
    CUDA_CHECK(cudaEventDestroy(t1));
  }
}

TEST_F(AttentionKernelsTest, RejectsBadArguments) {
  const float* q = nullptr;
  // Decode: heads not a multiple of the KV heads, head_dim not a multiple of 32 or too large,
  // q_stride below n_heads * head_dim, batch past the grid.
  EXPECT_FALSE(PagedDecodeAttention(q, 384, nullptr, nullptr, nullptr, 1, nullptr, 1, 6, 4, 64, 16,
                                    nullptr, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(PagedDecodeAttention(q, 640, nullptr, nullptr, nullptr, 1, nullptr, 1, 8, 2, 80, 16,
                                    nullptr, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(PagedDecodeAttention(q, 4096, nullptr, nullptr, nullptr, 1, nullptr, 1, 8, 2, 288,
                                    16, nullptr, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(PagedDecodeAttention(q, 1000, nullptr, nullptr, nullptr, 1, nullptr, 1, 8, 2, 128,
                                    16, nullptr, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(PagedDecodeAttention(q, 1024, nullptr, nullptr, nullptr, 1, nullptr, 70000, 8, 2,
                                    128, 16, nullptr, nullptr, nullptr)
                   .ok());
  // Decode: null pointers, and a missing workspace where the split path needs one.
  EXPECT_FALSE(PagedDecodeAttention(q, 1024, nullptr, nullptr, nullptr, 64, nullptr, 1, 8, 2, 128,
                                    16, nullptr, nullptr, nullptr)
                   .ok());
  ASSERT_GT(PagedDecodeAttentionWorkspace(1, 8, 2, 128, 64, 16), 0);
  DeviceBuffer<float> d_q(1024);
  DeviceBuffer<Bf16> d_cache(64 * 2 * 16 * 128), d_out(1024);
  DeviceBuffer<int32_t> d_i32(64);
  EXPECT_FALSE(PagedDecodeAttention(d_q.get(), 1024, d_cache.get(), d_cache.get(), d_i32.get(), 64,
                                    d_i32.get(), 1, 8, 2, 128, 16, nullptr, d_out.get(), nullptr)
                   .ok());
  // Prefill: the same shape checks, n_seqs past the grid, a negative max_q_len, null pointers.
  const int32_t* i32 = nullptr;
  auto prefill = [&](int64_t q_stride, int64_t n_seqs, int64_t max_q_len, int64_t n_heads,
                     int64_t n_kv_heads, int64_t head_dim) {
    return PagedPrefillAttention(q, q_stride, nullptr, nullptr, i32, 4, i32, i32, i32, n_seqs,
                                 max_q_len, n_heads, n_kv_heads, head_dim, 16, nullptr, nullptr);
  };
  EXPECT_FALSE(prefill(384, 1, 8, 6, 4, 64).ok());
  EXPECT_FALSE(prefill(640, 1, 8, 8, 2, 80).ok());
  EXPECT_FALSE(prefill(1000, 1, 8, 8, 2, 128).ok());
  EXPECT_FALSE(prefill(1024, 70000, 8, 8, 2, 128).ok());
  EXPECT_FALSE(prefill(1024, 1, -1, 8, 2, 128).ok());
  EXPECT_FALSE(prefill(1024, 1, 8, 8, 2, 128).ok());  // null pointers
  EXPECT_TRUE(prefill(1024, 0, 8, 8, 2, 128).ok());   // no sequences: nothing to do
  EXPECT_FALSE(PagedPrefillAttentionSimple(q, 640, nullptr, nullptr, i32, 4, i32, i32, i32, 1, 8, 8,
                                           2, 80, 16, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(KvAppend(nullptr, 64, nullptr, 64, nullptr, 1, 2, 64, 16, nullptr, nullptr,
                        nullptr)
                   .ok());  // stride below n_kv_heads * head_dim
}

// The workspace contract, host-only: none for the fallback head dims or a single split, and a
// size for a batch covers every smaller batch.
TEST(PagedDecodeAttentionWorkspaceTest, CoversSmallerBatches) {
  EXPECT_EQ(PagedDecodeAttentionWorkspace(1, 32, 8, 96, 512, 16), 0);
  EXPECT_EQ(PagedDecodeAttentionWorkspace(1, 32, 8, 128, 2, 16), 0);  // 32 tokens: one tile
  EXPECT_GT(PagedDecodeAttentionWorkspace(1, 32, 8, 128, 512, 16), 0);
  for (int64_t heads : {8, 24, 32, 64}) {
    int64_t prev = 0;
    for (int64_t b = 1; b <= 80; ++b) {
      const int64_t ws = PagedDecodeAttentionWorkspace(b, heads, heads / 8, 128, 1024, 16);
      EXPECT_GE(ws, prev) << "batch " << b << " heads " << heads;
      prev = ws;
    }
  }
}

}  // namespace
}  // namespace rag
