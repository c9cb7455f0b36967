// The FP8 KV cache's append (KvAppend's FP8 form) and decode attention (PagedDecodeAttention's
// FP8 form) against a host model of the same cache.
//  - Append: each (token, KV head) row of k and of v must get the scale max |x| / 448 and the
//    codes of x * (448 / max |x|) (round to nearest even, saturating), computed here on the host
//    with cuda_fp8.h's conversion (attention_test_util.h, QuantizeFp8Row), bit for bit; untouched
//    slots keep their 0xff poison (an e4m3 NaN and, as fp32 scales, a NaN too); a padding token
//    (slot -1) writes nothing.
//  - Decode: caches filled on the host with quantized rows in scattered blocks, then held
//    against the CPU attention (engine/cpu/attention.h) in fp32 over the dequantized values
//    (code * scale). The SIMT kernels compute in fp32 and round their output to bf16, so each
//    element must be within 1e-4 + 2^-7 |ref| (the bf16 decode tests' bound); the tensor-core
//    kernel (head_dim 128) rounds q and its weights to f16, so it gets 2^-7 of the same
//    attention over |v| on top (CheckAttentionOutput's weighted_abs). Shapes: the fast paths
//    (head_dim 64 and 128, GQA 4, 8 and 16 a KV head; 128 on both kernels) with contexts up to 5000
//    tokens (many splits), chunk edges (15, 16, 17, 31, 32, 33 positions), KV blocks of 5 slots,
//    the combine kernel and the in-kernel merge; the fallback (head_dim 96).
//  - Append then attend on one stream: the decode kernel (launched programmatically) must see
//    the newest row that the append before it wrote, scales included, wherever that row falls
//    in the kernel's pipeline (first, second or third tile, or later).
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "engine/cpu/attention.h"
#include "kernels/kernels.h"
#include "tests/gpu/attention_test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::GpuTest;

constexpr uint8_t kPoisonByte = 0xff;

using Shape = testing_gpu::AttentionTestShape;
using testing_gpu::QuantizeFp8Row;

// A device FP8 cache of `blocks` blocks, poisoned, with a host mirror of its bytes.
struct Fp8Cache {
  Fp8Cache(const Shape& s, int64_t blocks)
      : rows(blocks * s.n_kv_heads * s.block_size),
        k(rows * s.head_dim),
        v(rows * s.head_dim),
        k_scale(rows),
        v_scale(rows),
        host_k(static_cast<size_t>(rows * s.head_dim), kPoisonByte),
        host_v(host_k),
        host_k_scale(static_cast<size_t>(rows)),
        host_v_scale(host_k_scale) {
    const uint32_t nan_bits = 0xffffffffu;
    std::memcpy(host_k_scale.data(), &nan_bits, 4);
    std::fill(host_k_scale.begin(), host_k_scale.end(), host_k_scale[0]);
    host_v_scale = host_k_scale;
  }
  Fp8KvCache view() {
    return {reinterpret_cast<__nv_fp8_e4m3*>(k.get()), reinterpret_cast<__nv_fp8_e4m3*>(v.get()),
            k_scale.get(), v_scale.get()};
  }
  void Upload() {
    CUDA_CHECK(cudaMemcpy(k.get(), host_k.data(), host_k.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(v.get(), host_v.data(), host_v.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(k_scale.get(), host_k_scale.data(), host_k_scale.size() * 4,
                          cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(v_scale.get(), host_v_scale.data(), host_v_scale.size() * 4,
                          cudaMemcpyHostToDevice));
  }
  int64_t rows;
  DeviceBuffer<uint8_t> k, v;
  DeviceBuffer<float> k_scale, v_scale;
  std::vector<uint8_t> host_k, host_v;
  std::vector<float> host_k_scale, host_v_scale;
};

class Fp8KvDecodeTest : public GpuTest {
 protected:
  // Sequences of lens[b] tokens in scattered blocks (a shuffled order of all blocks plus spares);
  // random k/v quantized on the host into `cache`'s mirror and into the fp32 reference.
  struct Layout {
    Shape shape;
    int64_t max_blocks = 1, total_blocks = 0;
    std::vector<std::vector<int32_t>> tables;
    std::unique_ptr<DeviceBuffer<int32_t>> d_tables;  // (batch, max_blocks), -1 padded
    std::vector<float> ref_k, ref_v;                  // dequantized, for engine/cpu/attention.h
    std::vector<float> ref_v_abs;                     // |ref_v|: the tensor-core kernel's bound
    KvCacheLayer ref() { return {ref_k.data(), ref_v.data()}; }
    KvCacheLayer ref_abs() { return {ref_k.data(), ref_v_abs.data()}; }
    int64_t Slot(size_t b, int64_t pos) const {
      return static_cast<int64_t>(tables[b][pos / shape.block_size]) * shape.block_size +
             pos % shape.block_size;
    }
  };

  Layout MakeLayout(const Shape& s, const std::vector<int64_t>& lens) {
    Layout l;
    l.shape = s;
    testing_gpu::ScatteredTables t = testing_gpu::MakeScatteredTables(
        lens, s.block_size, /*extra_per_seq=*/0, /*spare=*/3, rng_);
    l.max_blocks = t.max_blocks;
    l.total_blocks = t.total_blocks;
    l.tables = std::move(t.tables);
    l.d_tables = std::make_unique<DeviceBuffer<int32_t>>(t.flat);
    const size_t elems =
        static_cast<size_t>(l.total_blocks * s.n_kv_heads * s.block_size * s.head_dim);
    l.ref_k.assign(elems, 0.0f);
    l.ref_v = l.ref_k;
    l.ref_v_abs = l.ref_k;
    return l;
  }

  // Quantizes k and v (n_kv_heads rows of head_dim each) of position `pos` of sequence b into
  // the cache mirror and the reference, as the append kernel must.
  static void PutToken(Layout& l, Fp8Cache& c, size_t b, int64_t pos, const float* k,
                       const float* v) {
    const Shape& s = l.shape;
    const int64_t slot = l.Slot(b, pos);
    std::vector<float> dk(static_cast<size_t>(s.n_kv_heads * s.head_dim)), dv(dk);
    for (int64_t h = 0; h < s.n_kv_heads; ++h) {
      const int64_t row =
          ((slot / s.block_size) * s.n_kv_heads + h) * s.block_size + slot % s.block_size;
      const int64_t at = h * s.head_dim;
      c.host_k_scale[row] =
          QuantizeFp8Row(k + at, s.head_dim, &c.host_k[row * s.head_dim], &dk[at]);
      c.host_v_scale[row] =
          QuantizeFp8Row(v + at, s.head_dim, &c.host_v[row * s.head_dim], &dv[at]);
    }
    WriteKv(l.ref(), s.cpu(), l.tables[b], pos, dk.data(), dv.data());
    for (float& x : dv) x = std::fabs(x);
    WriteKv(l.ref_abs(), s.cpu(), l.tables[b], pos, dk.data(), dv.data());
  }

  // Decode of q (rows of a fused qkv buffer) over contexts ctx, checked against the reference.
  void RunDecode(Layout& l, Fp8Cache& c, const std::vector<float>& q, int64_t q_stride,
                 const std::vector<int32_t>& ctx, cudaStream_t stream, int32_t* counters) {
    const Shape& s = l.shape;
    const int64_t batch = static_cast<int64_t>(ctx.size()), q_dim = s.n_heads * s.head_dim;
    std::vector<float> want(static_cast<size_t>(batch * q_dim), 0.0f), want_abs(want);
    for (int64_t b = 0; b < batch; ++b) {
      if (ctx[b] == 0) continue;
      const std::vector<AttentionQuery> queries = {{ctx[b] - 1, &l.tables[b]}};
      PagedAttention(l.ref(), s.cpu(), queries, q.data() + b * q_stride, want.data() + b * q_dim,
                     testing_gpu::AttentionPool());
      PagedAttention(l.ref_abs(), s.cpu(), queries, q.data() + b * q_stride,
                     want_abs.data() + b * q_dim, testing_gpu::AttentionPool());
    }
    const int64_t ws = PagedDecodeAttentionWorkspace(batch, s.n_heads, s.n_kv_heads, s.head_dim,
                                                     l.max_blocks, s.block_size);
    DeviceBuffer<float> d_q(q), d_ws(std::max<int64_t>(ws, 1));
    DeviceBuffer<int32_t> d_ctx(ctx);
    DeviceBuffer<Bf16> d_out((batch + 1) * q_dim);  // and a guard row
    CUDA_CHECK(cudaMemsetAsync(d_out.get(), 0xff, (batch + 1) * q_dim * sizeof(Bf16), stream));
    ASSERT_STATUS_OK(PagedDecodeAttention(d_q.get(), q_stride, c.view(), l.d_tables->get(),
                                          l.max_blocks, d_ctx.get(), batch, s.n_heads, s.n_kv_heads,
                                          s.head_dim, s.block_size, ws > 0 ? d_ws.get() : nullptr,
                                          d_out.get(), stream, counters));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<bool> zero(ctx.size());
    for (size_t b = 0; b < ctx.size(); ++b) zero[b] = ctx[b] == 0;
    const bool mma = s.head_dim == 128 && tensor_cores_;
    testing_gpu::CheckAttentionOutput(d_out.ToHost<uint16_t>(), want, batch, s.n_heads, s.head_dim,
                                      /*fp32_kernel=*/true, zero, {}, 1e-2,
                                      mma ? &want_abs : nullptr);
  }

  // Decode attention over the FP8 cache on the SIMT kernel for head_dim 128 too (the tensor-core
  // kernel is the default).
  void UseTensorCores(bool on) {
    SetDecodeAttentionTensorCores(on);
    tensor_cores_ = on;
  }
  void TearDown() override {
    UseTensorCores(true);
    GpuTest::TearDown();
  }
  bool tensor_cores_ = true;

  // A decode step's append of the newest rows, then the attention, on one stream.
  void CheckAppendThenDecode();

  void CheckDecode(const Shape& s, const std::vector<int64_t>& lens) {
    SCOPED_TRACE("decode " + s.Name());
    Layout l = MakeLayout(s, lens);
    Fp8Cache c(s, l.total_blocks);
    const int64_t kv_dim = s.n_kv_heads * s.head_dim;
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t p = 0; p < lens[b]; ++p) {
        // Rows of different magnitudes: the row scales must carry them.
        const float range = p % 3 == 0 ? 0.01f : (p % 3 == 1 ? 1.0f : 30.0f);
        const std::vector<float> kv = RandomFloats(static_cast<size_t>(2 * kv_dim), -range, range);
        PutToken(l, c, b, p, kv.data(), kv.data() + kv_dim);
      }
    }
    c.Upload();
    const int64_t q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    const std::vector<float> q = RandomFloats(static_cast<size_t>(lens.size() * q_stride));
    const std::vector<int32_t> ctx(lens.begin(), lens.end());
    const int64_t batch = static_cast<int64_t>(lens.size());
    DeviceBuffer<int32_t> d_counters(batch * s.n_heads);
    CUDA_CHECK(cudaMemset(d_counters.get(), 0, batch * s.n_heads * sizeof(int32_t)));
    {
      SCOPED_TRACE("combine kernel");
      RunDecode(l, c, q, q_stride, ctx, nullptr, nullptr);
    }
    for (int call = 1; call <= 2; ++call) {
      SCOPED_TRACE("merged by the last split, call " + std::to_string(call));
      RunDecode(l, c, q, q_stride, ctx, nullptr, d_counters.get());
    }
    for (int32_t v : d_counters.ToHost()) ASSERT_EQ(v, 0) << "a split counter was left set";
  }
};

TEST_F(Fp8KvDecodeTest, AppendQuantizesEachRowWithItsOwnScale) {
  for (const Shape& s :
       {Shape{32, 8, 128, 16}, Shape{8, 2, 64, 5}, Shape{6, 3, 96, 16}, Shape{40, 20, 64, 16}}) {
    SCOPED_TRACE(s.Name());
    const std::vector<int64_t> lens = {40, 3};
    Layout l = MakeLayout(s, lens);
    Fp8Cache c(s, l.total_blocks);
    c.Upload();  // poison
    const int64_t kv_dim = s.n_kv_heads * s.head_dim;
    const int64_t stride = 2 * kv_dim + 3;  // k and v of a token side by side, then a gap
    std::vector<int64_t> slots;
    std::vector<std::pair<size_t, int64_t>> who;
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t p = 0; p < lens[b]; ++p) {
        slots.push_back(l.Slot(b, p));
        who.emplace_back(b, p);
      }
    }
    slots.insert(slots.begin() + 4, -1);  // a padding token: nothing stored
    who.insert(who.begin() + 4, {lens.size(), -1});
    const int64_t n = static_cast<int64_t>(slots.size());
    std::vector<float> kv = RandomFloats(static_cast<size_t>(n * stride), -3.0f, 3.0f);
    std::fill_n(kv.begin() + 2 * stride, kv_dim, 0.0f);  // a row of zeros: scale 0, codes 0
    for (int64_t i = 0; i < s.head_dim; ++i) kv[7 * stride + kv_dim + i] *= 1e-3f;  // a small v row
    DeviceBuffer<float> d_kv(kv);
    DeviceBuffer<int64_t> d_slots(slots);
    ASSERT_STATUS_OK(KvAppend(d_kv.get(), stride, d_kv.get() + kv_dim, stride, d_slots.get(), n,
                              s.n_kv_heads, s.head_dim, s.block_size, c.view(), nullptr));
    for (int64_t t = 0; t < n; ++t) {
      if (slots[t] >= 0)
        PutToken(l, c, who[t].first, who[t].second, kv.data() + t * stride,
                 kv.data() + t * stride + kv_dim);
    }
    const std::vector<uint8_t> got_k = c.k.ToHost(), got_v = c.v.ToHost();
    const std::vector<float> got_ks = c.k_scale.ToHost(), got_vs = c.v_scale.ToHost();
    int bad = 0;
    for (size_t i = 0; i < got_k.size() && bad < 10; ++i) {
      if (got_k[i] != c.host_k[i] || got_v[i] != c.host_v[i]) {
        ADD_FAILURE() << "code " << i << ": k got " << int{got_k[i]} << " want " << int{c.host_k[i]}
                      << ", v got " << int{got_v[i]} << " want " << int{c.host_v[i]};
        ++bad;
      }
    }
    for (size_t r = 0; r < got_ks.size() && bad < 10; ++r) {
      if (std::memcmp(&got_ks[r], &c.host_k_scale[r], 4) != 0 ||
          std::memcmp(&got_vs[r], &c.host_v_scale[r], 4) != 0) {
        ADD_FAILURE() << "row " << r << " scales: k got " << got_ks[r] << " want "
                      << c.host_k_scale[r] << ", v got " << got_vs[r] << " want "
                      << c.host_v_scale[r];
        ++bad;
      }
    }
  }
}

TEST_F(Fp8KvDecodeTest, DecodeMatchesTheCpuAttentionOverTheDequantizedCache) {
  for (bool tensor_cores : {true, false}) {
    SCOPED_TRACE(tensor_cores ? "tensor cores" : "SIMT");
    UseTensorCores(tensor_cores);
    CheckDecode({32, 8, 128, 16}, {1, 17, 300, 5000});
    CheckDecode({32, 4, 128, 16}, {15, 16, 31, 32, 33, 0, 2100});  // Llama-3.1-70B over 2 GPUs
    CheckDecode({48, 3, 128, 16}, {33, 700});    // groups of 16: two CTAs a KV head
    CheckDecode({16, 2, 128, 5}, {1, 47, 301});  // blocks of 5 slots: rows of a chunk scattered
  }
  CheckDecode({8, 2, 64, 5}, {0, 64, 1000});
  CheckDecode({4, 4, 96, 16}, {33, 7, 0});  // the fallback kernel
}

TEST_F(Fp8KvDecodeTest, DecodeSeesTheRowTheAppendBeforeItWrote) {
  for (bool tensor_cores : {true, false}) {
    SCOPED_TRACE(tensor_cores ? "tensor cores" : "SIMT");
    UseTensorCores(tensor_cores);
    CheckAppendThenDecode();
  }
}

void Fp8KvDecodeTest::CheckAppendThenDecode() {
  const Shape s{32, 8, 128, 16};
  // Newest positions in the first, second and third tile of a split (the SIMT kernel's
  // pipeline), in the first or a later 16-position chunk of a warp (the tensor-core kernel's:
  // 16 and 17), and further on.
  const std::vector<int64_t> lens = {1, 16, 17, 33, 64, 65, 97, 300, 2000};
  Layout l = MakeLayout(s, lens);
  Fp8Cache c(s, l.total_blocks);
  const int64_t kv_dim = s.n_kv_heads * s.head_dim,
                q_stride = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
  const int64_t batch = static_cast<int64_t>(lens.size());
  // Earlier positions from the host; the newest ones from the kernel, in fused qkv rows.
  for (size_t b = 0; b < lens.size(); ++b) {
    for (int64_t p = 0; p + 1 < lens[b]; ++p) {
      const std::vector<float> kv = RandomFloats(static_cast<size_t>(2 * kv_dim));
      PutToken(l, c, b, p, kv.data(), kv.data() + kv_dim);
    }
  }
  c.Upload();
  const std::vector<float> qkv = RandomFloats(static_cast<size_t>(batch * q_stride), -2.0f, 2.0f);
  std::vector<int64_t> slots;
  for (size_t b = 0; b < lens.size(); ++b) slots.push_back(l.Slot(b, lens[b] - 1));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceBuffer<float> d_qkv(qkv);
  DeviceBuffer<int64_t> d_slots(slots);
  const int64_t q_dim = s.n_heads * s.head_dim;
  ASSERT_STATUS_OK(KvAppend(d_qkv.get() + q_dim, q_stride, d_qkv.get() + q_dim + kv_dim, q_stride,
                            d_slots.get(), batch, s.n_kv_heads, s.head_dim, s.block_size, c.view(),
                            stream));
  for (size_t b = 0; b < lens.size(); ++b) {
    const float* row = qkv.data() + b * q_stride;
    PutToken(l, c, b, lens[b] - 1, row + q_dim, row + q_dim + kv_dim);
  }
  DeviceBuffer<int32_t> d_counters(batch * s.n_heads);
  CUDA_CHECK(cudaMemset(d_counters.get(), 0, batch * s.n_heads * sizeof(int32_t)));
  RunDecode(l, c, qkv, q_stride, std::vector<int32_t>(lens.begin(), lens.end()), stream,
            d_counters.get());
  CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST_F(Fp8KvDecodeTest, NullScalesAreRefused) {
  const Shape s{8, 2, 64, 16};
  Fp8Cache c(s, 2);
  Fp8KvCache view = c.view();
  view.v_scale = nullptr;
  DeviceBuffer<float> q(3 * 16 * 64), ws(1);
  DeviceBuffer<int32_t> tables(2), ctx(1);
  DeviceBuffer<Bf16> out(8 * 64);
  DeviceBuffer<int64_t> slots(1);
  EXPECT_FALSE(PagedDecodeAttention(q.get(), 12 * 64, view, tables.get(), 2, ctx.get(), 1, 8, 2, 64,
                                    16, ws.get(), out.get(), nullptr)
                   .ok());
  EXPECT_FALSE(KvAppend(q.get(), 256, q.get(), 256, slots.get(), 1, 2, 64, 16, view, nullptr).ok());
}

}  // namespace
}  // namespace rag
