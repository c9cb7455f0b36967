// The FP8 GEMMs of an FP8 model's batched decode steps and prefills (engine/cuda/fp8_matmul.h:
// the activation rows quantized, then one cuBLASLt FP8 GEMM with per-row scales) on the
// Llama-3.1-70B projection shapes of one GPU of --tp N, at several row counts: microseconds a
// call, the weight bytes a call reads over that time (what limits decode-sized calls) and TFLOPS
// (what limits prefill-sized ones), for cuBLASLt's first candidates, in both of Fp8MatMul's forms:
// the scales in cuBLASLt's epilogue ("per-row") and a unit-scale GEMM followed by
// ScaleFp8Product ("unit", at every row count here; o and down, which add into y, fall back to
// per-row above the 128 rows of its buffer). Weights rotate through copies larger than L2, as a
// step's layers do.
//   fp8_gemm_bench [tp (2)] [candidates (1)] [iterations (20)] [most rows (4096)]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/event_timer.cuh"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/fp8_matmul.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

void Check(const rag::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

template <typename T>
T Value(rag::StatusOr<T> v, const char* what) {
  Check(v.status(), what);
  return std::move(v).value();
}

struct Projection {
  const char* name;
  int64_t n, k;
  bool bf16_out;  // q|k|v and gate|up write bf16; o and down add into the fp32 residual
};

}  // namespace

int main(int argc, char** argv) {
  const int64_t tp = argc > 1 ? std::atoll(argv[1]) : 2;
  const int candidates = argc > 2 ? std::atoi(argv[2]) : 1;
  const int iters = argc > 3 ? std::atoi(argv[3]) : 20;
  const int64_t most_rows = argc > 4 ? std::atoll(argv[4]) : 4096;
  const int64_t hidden = 8192, inter = 28672, heads = 64, kv_heads = 8, hd = 128;
  const Projection projections[] = {
      {"qkv", (heads + 2 * kv_heads) * hd / tp, hidden, true},
      {"o", hidden, heads * hd / tp, false},
      {"gate_up", 2 * inter / tp, hidden, true},
      {"down", hidden, inter / tp, false},
  };
  const int64_t rows_list[] = {16, 64, 128, 256, 512, 904, 1024, 2048, 4096};
  const int64_t max_rows = 4096, max_k = inter / tp > hidden ? inter / tp : hidden;
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreate(&stream));
  std::unique_ptr<rag::Fp8MatMul> mm =
      Value(rag::Fp8MatMul::Create(stream, max_rows, max_k), "Create");
  rag::DeviceBuffer x = Value(rag::DeviceBuffer::Allocate(max_rows * max_k * 2, "x"), "x");
  Check(rag::FillNormalBf16(x.as<__nv_bfloat16>(), max_rows * max_k, 1, 0.0f, 1.0f, stream),
        "fill x");
  int dev = 0;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("FP8 GEMMs, Llama-3.1-70B projections of one GPU of tp %ld, %s\n",
              static_cast<long>(tp), prop.name);
  std::printf("%-8s %6s %6s %6s %5s %-12s %10s %10s %10s\n", "proj", "n", "k", "rows", "cand",
              "form", "us", "weight GB/s", "TFLOPS");
  struct Form {
    const char* name;
    int64_t unit_scale_max_rows;
  };
  const Form forms[] = {{"per-row", 0}, {"unit", max_rows}};
  for (const Projection& p : projections) {
    // Copies of the weight that together exceed L2 (50-60 MB) several times.
    const int64_t bytes = p.n * p.k;
    const int copies = static_cast<int>(std::max<int64_t>(2, (256ll << 20) / bytes + 1));
    std::vector<rag::DeviceBuffer> w, ws;
    for (int c = 0; c < copies; ++c) {
      w.push_back(Value(rag::DeviceBuffer::Allocate(bytes, "w"), "w"));
      ws.push_back(Value(rag::DeviceBuffer::Allocate(p.n * 4, "w scales"), "w scales"));
      Check(rag::FillNormalFp8(w.back().as<__nv_fp8_e4m3>(), ws.back().as<float>(), p.n, p.k, 7 + c,
                               0.02f, stream),
            "fill w");
    }
    rag::DeviceBuffer y = Value(rag::DeviceBuffer::Allocate(max_rows * p.n * 4, "y"), "y");
    for (int64_t rows : rows_list) {
      if (rows > most_rows) break;
      for (const Form& form : forms)
        for (int cand = 0; cand < candidates; ++cand) {
          mm->UseHeuristicCandidate(cand);
          mm->SetUnitScaleMaxRows(form.unit_scale_max_rows);
          auto call = [&](int i) {
            const int c = i % copies;
            if (p.bf16_out) {
              return mm->Run(x.as<__nv_bfloat16>(), rows, w[c].as<__nv_fp8_e4m3>(),
                             ws[c].as<float>(), p.n, p.k, y.as<__nv_bfloat16>());
            }
            return mm->Run(x.as<__nv_bfloat16>(), rows, w[c].as<__nv_fp8_e4m3>(), ws[c].as<float>(),
                           p.n, p.k, y.as<float>(), /*accumulate=*/true);
          };
          const rag::Status first = call(0);
          if (!first.ok()) break;  // fewer candidates for this shape
          for (int i = 1; i < 3; ++i) Check(call(i), "warm up");
          const double us = rag_bench::TimeUs(
              0, iters, [&](int i) { Check(call(i), "Run"); }, stream);
          std::printf("%-8s %6ld %6ld %6ld %5s %-12s %10.1f %10.0f %10.1f\n", p.name,
                      static_cast<long>(p.n), static_cast<long>(p.k), static_cast<long>(rows),
                      std::to_string(cand).c_str(), form.name, us, bytes / us / 1e3,
                      2.0 * rows * p.n * p.k / us / 1e6);
        }
    }
  }
  mm->UseHeuristicCandidate(0);
  CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}
