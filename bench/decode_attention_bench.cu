// Decode attention over the FP8 KV cache: the tensor-core kernel next to the fp32 SIMT kernel
// (SetDecodeAttentionTensorCores) on the shapes decode steps meet, one call = one layer of one
// step. Caches of random e4m3 codes (no NaN) and row scales in scattered blocks of 16 slots,
// larger than L2, so the calls read HBM as a step does. Prints a table and one JSON line per
// shape: microseconds a call, the cache bytes a call reads over that time, and the largest
// difference between the two kernels' outputs (the GPU tests hold each kernel to the CPU
// reference); then the tensor-core kernel under other split rules ("-": its default tiles cap),
// and both kernels over a bf16 cache of the same shape (the tensor-core one off by default).
//   decode_attention_bench [iterations (50)]
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/bench_fill.cuh"
#include "bench/event_timer.cuh"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

using rag_bench::TimeUs;

uint32_t Hash(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  return h ^ (h >> 16);
}

__global__ void FillCodes(uint8_t* p, size_t count, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    // Bit 3 clear: the exponent stays below 15, never NaN.
    p[i] = static_cast<uint8_t>(rag_bench::HashUniform(i, seed, 0.0f, 255.0f)) & 0xf7u;
  }
}

__global__ void FillFloats(float* p, size_t count, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    p[i] = rag_bench::HashUniform(i, seed, lo, hi);
  }
}

__global__ void FillBf16(__nv_bfloat16* p, size_t count, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    p[i] = __float2bfloat16(rag_bench::HashUniform(i, seed, -1.0f, 1.0f));
  }
}

// The largest difference between two bf16 outputs.
double MaxDiff(const __nv_bfloat16* x, const __nv_bfloat16* y, size_t n);

void Check(const rag::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Case {
  const char* name;
  int64_t batch, context, n_heads, n_kv_heads;
};

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 50;
  const int64_t hd = 128, bs = 16;
  const Case cases[] = {
      {"70B over 2 GPUs, batch 64 x 5250 (the RAG load)", 64, 5250, 32, 4},
      {"70B over 2 GPUs, batch 32 x 5250", 32, 5250, 32, 4},
      {"70B over 2 GPUs, batch 8 x 2048", 8, 2048, 32, 4},
      {"70B over 2 GPUs, batch 1 x 2048", 1, 2048, 32, 4},
      {"70B over 2 GPUs, batch 1 x 5000", 1, 5000, 32, 4},
      {"70B on 1 GPU, batch 1 x 2048", 1, 2048, 64, 8},
      {"70B over 4 GPUs, batch 1 x 2048", 1, 2048, 16, 2},
      {"8B, batch 64 x 5000", 64, 5000, 32, 8},
      {"8B, batch 1 x 2048", 1, 2048, 32, 8},
  };
  std::printf("%-48s %10s %10s %10s %10s %10s\n", "shape", "simt us", "mma us", "simt GB/s",
              "mma GB/s", "max diff");
  for (const Case& c : cases) {
    const int64_t blocks_per_seq = (c.context + 1 + bs - 1) / bs;
    const int64_t total_blocks = c.batch * blocks_per_seq;
    const int64_t rows = total_blocks * c.n_kv_heads * bs;
    const int64_t q_stride = (c.n_heads + 2 * c.n_kv_heads) * hd;
    uint8_t *k = nullptr, *v = nullptr;
    float *ks = nullptr, *vs = nullptr, *q = nullptr, *ws = nullptr;
    int32_t *tables = nullptr, *lens = nullptr, *counters = nullptr;
    __nv_bfloat16 *out_simt = nullptr, *out_mma = nullptr;
    CUDA_CHECK(cudaMalloc(&k, rows * hd));
    CUDA_CHECK(cudaMalloc(&v, rows * hd));
    CUDA_CHECK(cudaMalloc(&ks, rows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&vs, rows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&q, c.batch * q_stride * sizeof(float)));
    FillCodes<<<1024, 256>>>(k, rows * hd, 1u);
    FillCodes<<<1024, 256>>>(v, rows * hd, 2u);
    FillFloats<<<1024, 256>>>(ks, rows, 3u, 0.001f, 0.01f);
    FillFloats<<<1024, 256>>>(vs, rows, 4u, 0.001f, 0.01f);
    FillFloats<<<1024, 256>>>(q, c.batch * q_stride, 5u, -2.0f, 2.0f);
    // Blocks scattered: a fixed shuffle of all of them.
    std::vector<int32_t> order(static_cast<size_t>(total_blocks));
    for (int64_t i = 0; i < total_blocks; ++i) order[i] = static_cast<int32_t>(i);
    for (int64_t i = total_blocks - 1; i > 0; --i) {
      std::swap(order[i], order[Hash(static_cast<uint32_t>(i)) % (i + 1)]);
    }
    CUDA_CHECK(cudaMalloc(&tables, total_blocks * sizeof(int32_t)));
    CUDA_CHECK(
        cudaMemcpy(tables, order.data(), total_blocks * sizeof(int32_t), cudaMemcpyHostToDevice));
    const std::vector<int32_t> host_lens(static_cast<size_t>(c.batch),
                                         static_cast<int32_t>(c.context));
    CUDA_CHECK(cudaMalloc(&lens, c.batch * sizeof(int32_t)));
    CUDA_CHECK(
        cudaMemcpy(lens, host_lens.data(), c.batch * sizeof(int32_t), cudaMemcpyHostToDevice));
    // The split rules of the sweep below (split target, tiles cap); the workspace for the most
    // splits of any.
    const int64_t sweep[4][2] = {{2048, 16}, {2048, 32}, {1024, -1}, {4096, -1}};
    int64_t ws_floats = rag::PagedDecodeAttentionWorkspace(c.batch, c.n_heads, c.n_kv_heads, hd,
                                                           blocks_per_seq, bs);
    for (const auto& rule : sweep) {
      rag::SetDecodeAttentionSplitTarget(rule[0]);
      rag::SetDecodeAttentionMaxTilesPerSplit(rule[1]);
      ws_floats =
          std::max(ws_floats, rag::PagedDecodeAttentionWorkspace(c.batch, c.n_heads, c.n_kv_heads,
                                                                 hd, blocks_per_seq, bs));
    }
    rag::SetDecodeAttentionSplitTarget(0);
    rag::SetDecodeAttentionMaxTilesPerSplit(-1);
    CUDA_CHECK(cudaMalloc(&ws, std::max<int64_t>(ws_floats, 4) * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&counters, c.batch * c.n_heads * sizeof(int32_t)));
    CUDA_CHECK(cudaMemset(counters, 0, c.batch * c.n_heads * sizeof(int32_t)));
    const size_t out_elems = static_cast<size_t>(c.batch * c.n_heads * hd);
    CUDA_CHECK(cudaMalloc(&out_simt, out_elems * 2));
    CUDA_CHECK(cudaMalloc(&out_mma, out_elems * 2));
    const rag::Fp8KvCache cache{reinterpret_cast<__nv_fp8_e4m3*>(k),
                                reinterpret_cast<__nv_fp8_e4m3*>(v), ks, vs};
    auto call = [&](__nv_bfloat16* out) {
      Check(rag::PagedDecodeAttention(q, q_stride, cache, tables, blocks_per_seq, lens, c.batch,
                                      c.n_heads, c.n_kv_heads, hd, bs, ws, out, nullptr, counters),
            "PagedDecodeAttention");
    };
    rag::SetDecodeAttentionTensorCores(false);
    const float simt_us = TimeUs(3, iters, [&](int) { call(out_simt); });
    rag::SetDecodeAttentionTensorCores(true);
    const float mma_us = TimeUs(3, iters, [&](int) { call(out_mma); });
    // The tensor-core kernel under other split rules.
    float sweep_us[4];
    for (int i = 0; i < 4; ++i) {
      rag::SetDecodeAttentionSplitTarget(sweep[i][0]);
      rag::SetDecodeAttentionMaxTilesPerSplit(sweep[i][1]);
      sweep_us[i] = TimeUs(3, iters, [&](int) { call(out_mma); });
    }
    rag::SetDecodeAttentionSplitTarget(0);
    rag::SetDecodeAttentionMaxTilesPerSplit(-1);
    const double max_diff = MaxDiff(out_simt, out_mma, out_elems);
    // The bf16 cache of the same shape (values in [-1, 1]) on both kernels.
    __nv_bfloat16 *k16 = nullptr, *v16 = nullptr;
    CUDA_CHECK(cudaMalloc(&k16, rows * hd * 2));
    CUDA_CHECK(cudaMalloc(&v16, rows * hd * 2));
    FillBf16<<<1024, 256>>>(k16, rows * hd, 6u);
    FillBf16<<<1024, 256>>>(v16, rows * hd, 7u);
    auto call16 = [&](__nv_bfloat16* out) {
      Check(rag::PagedDecodeAttention(q, q_stride, k16, v16, tables, blocks_per_seq, lens, c.batch,
                                      c.n_heads, c.n_kv_heads, hd, bs, ws, out, nullptr, counters),
            "PagedDecodeAttention (bf16)");
    };
    rag::SetDecodeAttentionTensorCores(false);
    const float simt16_us = TimeUs(3, iters, [&](int) { call16(out_simt); });
    rag::SetDecodeAttentionTensorCores(true);
    const float mma16_us = TimeUs(3, iters, [&](int) { call16(out_mma); });
    const double max_diff16 = MaxDiff(out_simt, out_mma, out_elems);
    CUDA_CHECK(cudaFree(k16));
    CUDA_CHECK(cudaFree(v16));
    const double bytes16 = static_cast<double>(c.batch) * c.context * c.n_kv_heads * 2.0 * 2 * hd;
    // Bytes a call reads: the codes and scales of every cached row of every sequence.
    const double bytes = static_cast<double>(c.batch) * c.context * c.n_kv_heads * 2.0 * (hd + 4);
    std::printf("%-48s %10.1f %10.1f %10.0f %10.0f %10.2e\n", c.name, simt_us, mma_us,
                bytes / simt_us / 1e3, bytes / mma_us / 1e3, max_diff);
    std::printf(
        "%-48s   tensor cores, (split target, tiles cap) (2048, 16) %.1f  (2048, 32) "
        "%.1f  (1024, -) %.1f  (4096, -) %.1f us\n",
        "", sweep_us[0], sweep_us[1], sweep_us[2], sweep_us[3]);
    std::printf(
        "%-48s   bf16 cache: SIMT %.1f us (%.0f GB/s), tensor cores %.1f us (%.0f GB/s), "
        "max diff %.2e\n",
        "", simt16_us, bytes16 / simt16_us / 1e3, mma16_us, bytes16 / mma16_us / 1e3, max_diff16);
    std::printf(
        "{\"bench\":\"decode_attention\",\"shape\":\"%s\",\"batch\":%ld,\"context\":%ld,"
        "\"n_heads\":%ld,\"n_kv_heads\":%ld,\"simt_us\":%.2f,\"mma_us\":%.2f,"
        "\"simt_gb_s\":%.1f,\"mma_gb_s\":%.1f,\"max_diff\":%.3e,\"bf16_simt_us\":%.2f,"
        "\"bf16_mma_us\":%.2f,\"bf16_max_diff\":%.3e}\n",
        c.name, static_cast<long>(c.batch), static_cast<long>(c.context),
        static_cast<long>(c.n_heads), static_cast<long>(c.n_kv_heads), simt_us, mma_us,
        bytes / simt_us / 1e3, bytes / mma_us / 1e3, max_diff, simt16_us, mma16_us, max_diff16);
    for (void* p :
         {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(ks),
          static_cast<void*>(vs), static_cast<void*>(q), static_cast<void*>(ws),
          static_cast<void*>(tables), static_cast<void*>(lens), static_cast<void*>(counters),
          static_cast<void*>(out_simt), static_cast<void*>(out_mma)}) {
      CUDA_CHECK(cudaFree(p));
    }
  }
  return 0;
}

namespace {

double MaxDiff(const __nv_bfloat16* x, const __nv_bfloat16* y, size_t n) {
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> a(n), b(n);
  CUDA_CHECK(cudaMemcpy(a.data(), x, n * 2, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(b.data(), y, n * 2, cudaMemcpyDeviceToHost));
  double most = 0.0;
  for (size_t i = 0; i < n; ++i) {
    most = std::max(most, std::fabs(static_cast<double>(Bf16ToFloat(a[i])) - Bf16ToFloat(b[i])));
  }
  return most;
}

}  // namespace
