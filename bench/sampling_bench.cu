// ArgmaxRows and SampleRows (kernels/sampling.cu) time per call at rows 1, 8, 64 over Llama 3's
// vocabulary (128256), for the sampling settings a server sees. Each call is bracketed by CUDA
// events; the calls are queued behind a short spin kernel so that the GPU never waits for the
// CPU to launch the next one (the times are GPU time, as inside a CUDA graph). Prints the median
// and the 10th / 90th percentiles of `iterations` calls per cell.
//   sampling_bench [iterations]   (default 200 timed calls after 20 warm-up calls)
//
// Logits: N(0, 2.5) with a few tokens lifted to 8..16 (a confident next-token distribution, the
// usual case at decode); the logits stay in L2 between calls, as they do after the lm_head.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

constexpr int64_t kVocab = 128256;
constexpr int kRows[] = {1, 8, 64};

// Keeps the GPU busy for about `ns` nanoseconds while the CPU queues the timed calls.
__global__ void Spin(long long ns) {
  const long long start = clock64();
  // clock64 counts SM cycles; 2 GHz is an upper bound, so this waits at least ns.
  while (clock64() - start < ns * 2) {
  }
}

struct Stats {
  float p10, median, p90;
};

Stats TimeCalls(int warmup, int iters, const std::function<void()>& call) {
  for (int i = 0; i < warmup; ++i) call();
  std::vector<cudaEvent_t> ev(2 * iters);
  for (auto& e : ev) CUDA_CHECK(cudaEventCreate(&e));
  Spin<<<1, 1>>>(20'000'000);  // 20 ms
  CUDA_CHECK(cudaGetLastError());
  for (int i = 0; i < iters; ++i) {
    CUDA_CHECK(cudaEventRecord(ev[2 * i]));
    call();
    CUDA_CHECK(cudaEventRecord(ev[2 * i + 1]));
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> us(iters);
  for (int i = 0; i < iters; ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    us[i] = ms * 1000.0f;
  }
  for (auto& e : ev) CUDA_CHECK(cudaEventDestroy(e));
  std::sort(us.begin(), us.end());
  return {us[iters / 10], us[iters / 2], us[iters * 9 / 10]};
}

void Check(const rag::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    std::abort();
  }
}

struct Setting {
  const char* name;
  float temperature;
  int top_k;
  float top_p;
};

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::max(10, std::atoi(argv[1])) : 200;
  const int warmup = 20;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));

  const int max_rows = 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.5f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> logits(max_rows * kVocab);
  for (float& x : logits) x = normal(rng);
  for (int r = 0; r < max_rows; ++r) {
    for (int j = 0; j < 8; ++j) logits[r * kVocab + rng() % kVocab] = 8.0f + 8.0f * unit(rng);
  }
  std::vector<float> uniforms(max_rows);
  for (float& u : uniforms) u = unit(rng);

  float *d_logits, *d_t, *d_p, *d_u;
  int32_t *d_k, *d_ids;
  CUDA_CHECK(cudaMalloc(&d_logits, logits.size() * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_t, max_rows * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_p, max_rows * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_u, max_rows * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_k, max_rows * sizeof(int32_t)));
  CUDA_CHECK(cudaMalloc(&d_ids, max_rows * sizeof(int32_t)));
  CUDA_CHECK(
      cudaMemcpy(d_logits, logits.data(), logits.size() * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_u, uniforms.data(), max_rows * sizeof(float), cudaMemcpyHostToDevice));
  const int64_t ws_floats = rag::SampleRowsWorkspace(max_rows, kVocab);
  float* d_ws = nullptr;
  if (ws_floats > 0) CUDA_CHECK(cudaMalloc(&d_ws, ws_floats * sizeof(float)));

  const Setting settings[] = {
      {"greedy (t=0)", 0.0f, 0, 1.0f},
      {"t=1 no filter", 1.0f, 0, 1.0f},
      {"t=0.7 k=50", 0.7f, 50, 1.0f},
      {"t=0.7 p=0.9", 0.7f, 0, 0.9f},
      {"t=0.7 k=50 p=0.9", 0.7f, 50, 0.9f},
      {"t=1 p=0.99", 1.0f, 0, 0.99f},
      {"t=1 k=5000 p=0.999", 1.0f, 5000, 0.999f},
  };

  std::printf("%s, vocab %lld, %d calls per cell; GPU time per call in us: median [p10, p90]\n",
              prop.name, static_cast<long long>(kVocab), iters);
  std::printf("%-32s", "call");
  for (int rows : kRows) std::printf("   rows=%-2d %-16s", rows, "");
  std::printf("\n");

  auto print_row = [&](const char* name, const std::function<void(int)>& call) {
    std::printf("%-32s", name);
    for (int rows : kRows) {
      const Stats s = TimeCalls(warmup, iters, [&] { call(rows); });
      std::printf("   %7.1f [%6.1f, %6.1f]", s.median, s.p10, s.p90);
    }
    std::printf("\n");
  };

  print_row("ArgmaxRows",
            [&](int rows) { Check(rag::ArgmaxRows(d_logits, rows, kVocab, d_ids, nullptr)); });
  for (const Setting& s : settings) {
    const std::vector<float> t(max_rows, s.temperature), p(max_rows, s.top_p);
    const std::vector<int32_t> k(max_rows, s.top_k);
    CUDA_CHECK(cudaMemcpy(d_t, t.data(), max_rows * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_p, p.data(), max_rows * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_k, k.data(), max_rows * sizeof(int32_t), cudaMemcpyHostToDevice));
    const std::string name = std::string("SampleRows ") + s.name;
    print_row(name.c_str(), [&](int rows) {
      Check(rag::SampleRows(d_logits, rows, kVocab, d_t, d_k, d_p, d_u, d_ws, d_ids, nullptr));
    });
  }

  CUDA_CHECK(cudaFree(d_logits));
  CUDA_CHECK(cudaFree(d_t));
  CUDA_CHECK(cudaFree(d_p));
  CUDA_CHECK(cudaFree(d_u));
  CUDA_CHECK(cudaFree(d_k));
  CUDA_CHECK(cudaFree(d_ids));
  if (d_ws != nullptr) CUDA_CHECK(cudaFree(d_ws));
  return 0;
}
