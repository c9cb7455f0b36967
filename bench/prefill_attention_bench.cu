// Prefill attention of the Llama-3.1-8B shape (32 query heads, 8 KV heads, head_dim 128, KV
// blocks of 16 slots) for one prompt: the mma.sync kernel with 16 and with 32 query rows a
// warp and the warpgroup (wgmma) kernel ("64 rows"), with q rotated beforehand or rotated by the
// kernel as it loads it (from the step's table of angles), the same over the FP8 cache (against the
// simple kernel over the same codes), and the RoPE + KV append pass that precedes it, rotating q
// too or leaving q to the attention, computing the angles or reading them from the table (and the
// table's own cost). Prints a table and one JSON line per variant; the largest difference between
// the variants' outputs is printed as a sanity check (the GPU tests hold each variant to the
// reference).
//   prefill_attention_bench [prompt_tokens (2048)] [iterations (50)]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "bench/bench_fill.cuh"
#include "bench/event_timer.cuh"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

using rag_bench::TimeUs;

__global__ void FillUniform(float* p, size_t count, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    p[i] = rag_bench::HashUniform(i, seed, -0.5f * scale, 0.5f * scale);
  }
}

void Check(const rag::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t L = argc > 1 ? std::atoll(argv[1]) : 2048;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 50;
  const int64_t nq = 32, nkv = 8, hd = 128, bs = 16;
  const int64_t qkv_dim = (nq + 2 * nkv) * hd, blocks = (L + bs - 1) / bs;

  float* qkv_src = nullptr;  // the GEMM's output: never modified, copied before each RoPE pass
  float* qkv = nullptr;
  __nv_bfloat16 *k_cache = nullptr, *v_cache = nullptr, *out = nullptr, *out_ref = nullptr;
  CUDA_CHECK(cudaMalloc(&qkv_src, L * qkv_dim * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&qkv, L * qkv_dim * sizeof(float)));
  const size_t cache_elems = static_cast<size_t>(blocks * nkv * bs * hd);
  CUDA_CHECK(cudaMalloc(&k_cache, cache_elems * 2));
  CUDA_CHECK(cudaMalloc(&v_cache, cache_elems * 2));
  CUDA_CHECK(cudaMalloc(&out, L * nq * hd * 2));
  CUDA_CHECK(cudaMalloc(&out_ref, L * nq * hd * 2));
  FillUniform<<<1024, 256>>>(qkv_src, static_cast<size_t>(L * qkv_dim), 7u, 4.0f);

  // Positions 0..L-1, slots = positions (block table = identity), one sequence.
  std::vector<int32_t> positions(L), table(blocks);
  std::vector<int64_t> slots(L);
  for (int64_t i = 0; i < L; ++i) positions[i] = static_cast<int32_t>(i), slots[i] = i;
  for (int64_t b = 0; b < blocks; ++b) table[b] = static_cast<int32_t>(b);
  std::vector<float> inv_freq(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i) inv_freq[i] = std::pow(500000.0f, -2.0f * i / hd);
  const int32_t meta_host[3] = {0, static_cast<int32_t>(L), 0};  // q_offsets, q_lens, start_pos
  int32_t *d_pos = nullptr, *d_table = nullptr, *d_meta = nullptr;
  int64_t* d_slots = nullptr;
  float* d_inv = nullptr;
  float2* d_angles = nullptr;
  CUDA_CHECK(cudaMalloc(&d_angles, L * (hd / 2) * sizeof(float2)));
  CUDA_CHECK(cudaMalloc(&d_pos, L * 4));
  CUDA_CHECK(cudaMalloc(&d_table, blocks * 4));
  CUDA_CHECK(cudaMalloc(&d_meta, sizeof(meta_host)));
  CUDA_CHECK(cudaMalloc(&d_slots, L * 8));
  CUDA_CHECK(cudaMalloc(&d_inv, inv_freq.size() * 4));
  CUDA_CHECK(cudaMemcpy(d_pos, positions.data(), L * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_table, table.data(), blocks * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_meta, meta_host, sizeof(meta_host), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_slots, slots.data(), L * 8, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_inv, inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice));

  Check(rag::RopeCosSinTable(d_pos, L, d_inv, hd / 2, d_angles, nullptr), "RopeCosSinTable");
  auto rope = [&](bool rotate_q, bool table = false) {
    Check(rag::RopeKvAppend(qkv, L, qkv_dim, nq, nkv, hd, d_pos, d_inv, d_slots, bs, k_cache,
                            v_cache, nullptr, rotate_q, table ? d_angles : nullptr),
          "RopeKvAppend");
  };
  auto attention = [&](bool rope_in_kernel, __nv_bfloat16* dst) {
    Check(rag::PagedPrefillAttention(qkv, qkv_dim, k_cache, v_cache, d_table, blocks, d_meta,
                                     d_meta + 1, d_meta + 2, 1, L, nq, nkv, hd, bs, dst, nullptr,
                                     rope_in_kernel ? d_angles : nullptr),
          "PagedPrefillAttention");
  };
  auto max_diff = [&](const __nv_bfloat16* a, const __nv_bfloat16* b) {
    std::vector<__nv_bfloat16> ha(L * nq * hd), hb(L * nq * hd);
    CUDA_CHECK(cudaMemcpy(ha.data(), a, ha.size() * 2, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(hb.data(), b, hb.size() * 2, cudaMemcpyDeviceToHost));
    float d = 0;
    for (size_t i = 0; i < ha.size(); ++i) {
      d = std::max(d, std::fabs(__bfloat162float(ha[i]) - __bfloat162float(hb[i])));
    }
    return d;
  };
  const double flops = 4.0 * nq * hd * (static_cast<double>(L) * (L + 1) / 2);

  std::printf("prefill attention, %lld tokens, 32/8 heads, head_dim 128\n", (long long)L);
  std::printf("%-34s %10s %10s %12s\n", "variant", "us", "TFLOP/s", "max |diff|");
  // Reference: q rotated by the RoPE pass, 16 rows a warp (the kernel before this bench).
  CUDA_CHECK(cudaMemcpy(qkv, qkv_src, L * qkv_dim * 4, cudaMemcpyDeviceToDevice));
  rope(true);
  rag::SetPrefillAttentionRowsPerWarp(16);
  attention(false, out_ref);
  std::printf("warpgroup kernel usable: %s\n", rag::PrefillAttentionWarpgroupKernelUsable()
                                                   ? "yes"
                                                   : "no (64 rows: the 32-row kernel)");
  for (int rows : {16, 32, 64}) {
    for (bool in_kernel : {false, true}) {
      CUDA_CHECK(cudaMemcpy(qkv, qkv_src, L * qkv_dim * 4, cudaMemcpyDeviceToDevice));
      rope(!in_kernel);
      rag::SetPrefillAttentionRowsPerWarp(rows);
      const float us = TimeUs(5, iters, [&](int) { attention(in_kernel, out); });
      const float diff = max_diff(out, out_ref);
      char name[64];
      std::snprintf(name, sizeof(name), "attention %d rows/warp%s", rows,
                    in_kernel ? " + RoPE of q" : "");
      std::printf("%-34s %10.1f %10.1f %12.3g\n", name, us, flops / us * 1e-6, diff);
      std::printf("{\"variant\":\"%s\",\"tokens\":%lld,\"us\":%.1f,\"tflops\":%.1f}\n", name,
                  (long long)L, us, flops / us * 1e-6);
    }
  }
  rag::SetPrefillAttentionRowsPerWarp(0);

  // The FP8 cache (the RAG load's): the rotated k and the v quantized by KvAppend's FP8 form; the
  // tensor-core kernel's output against the simple kernel's over the same codes.
  rag::Fp8KvCache fp8{};
  CUDA_CHECK(cudaMalloc(&fp8.k, cache_elems));
  CUDA_CHECK(cudaMalloc(&fp8.v, cache_elems));
  CUDA_CHECK(cudaMalloc(&fp8.k_scale, cache_elems / hd * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&fp8.v_scale, cache_elems / hd * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(qkv, qkv_src, L * qkv_dim * 4, cudaMemcpyDeviceToDevice));
  rope(true);
  Check(rag::KvAppend(qkv + nq * hd, qkv_dim, qkv + (nq + nkv) * hd, qkv_dim, d_slots, L, nkv, hd,
                      bs, fp8, nullptr),
        "KvAppend (fp8)");
  auto attention_fp8 = [&](bool simple, __nv_bfloat16* dst) {
    if (simple) {
      Check(rag::PagedPrefillAttentionSimple(qkv, qkv_dim, fp8, d_table, blocks, d_meta, d_meta + 1,
                                             d_meta + 2, 1, L, nq, nkv, hd, bs, dst, nullptr,
                                             nullptr),
            "PagedPrefillAttentionSimple (fp8)");
    } else {
      Check(rag::PagedPrefillAttention(qkv, qkv_dim, fp8, d_table, blocks, d_meta, d_meta + 1,
                                       d_meta + 2, 1, L, nq, nkv, hd, bs, dst, nullptr, nullptr),
            "PagedPrefillAttention (fp8)");
    }
  };
  attention_fp8(/*simple=*/true, out_ref);
  for (int rows : {32, 64}) {
    rag::SetPrefillAttentionRowsPerWarp(rows);
    const float us = TimeUs(5, iters, [&](int) { attention_fp8(/*simple=*/false, out); });
    const float diff = max_diff(out, out_ref);
    char name[64];
    std::snprintf(name, sizeof(name), "attention %d rows/warp, fp8 cache", rows);
    std::printf("%-34s %10.1f %10.1f %12.3g\n", name, us, flops / us * 1e-6, diff);
    std::printf("{\"variant\":\"%s\",\"tokens\":%lld,\"us\":%.1f,\"tflops\":%.1f}\n", name,
                (long long)L, us, flops / us * 1e-6);
  }
  rag::SetPrefillAttentionRowsPerWarp(0);

  auto report = [&](const char* name, float us) {
    std::printf("%-34s %10.1f\n", name, us);
    std::printf("{\"variant\":\"%s\",\"tokens\":%lld,\"us\":%.1f}\n", name, (long long)L, us);
  };
  // Re-rotating rotated rows costs what rotating fresh ones does.
  report("RoPE + KV append (q and k)", TimeUs(5, iters, [&](int) { rope(true); }));
  report("RoPE + KV append (k only)", TimeUs(5, iters, [&](int) { rope(false); }));
  report("RoPE + KV append (k, table)", TimeUs(5, iters, [&](int) { rope(false, true); }));
  report("angle table (once a step)", TimeUs(5, iters, [&](int) {
           Check(rag::RopeCosSinTable(d_pos, L, d_inv, hd / 2, d_angles, nullptr), "table");
         }));
  CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}
