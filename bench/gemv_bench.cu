// Decode GEMV at M = 1 on the Llama-3.1-8B projection shapes: our Gemv (kernels/gemv.cu), the
// decode step's form of each projection (kernels/decode_gemv.cu: RmsNormGemv for qkv and
// lm_head, RmsNormGemvSwiGlu for gate|up, DecodeGemvAccumulate for o and down), cuBLAS
// (cublasGemmEx, bf16 in, fp32 out) and a device-to-device copy of the same bytes.
// Weights rotate among enough copies (>= 2 GB in all) that the 50 MB L2 cannot serve them, as
// ../shared/peers/gemv_probe.py does. Prints a table, then one JSON line per shape. Then the
// decode forms on the 70B shapes with bf16 and with FP8 weights (BenchFp8).
//   gemv_bench [iterations]   (default 200 timed calls after 20 warm-up calls)
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <cuda_fp8.h>

#include "bench/bench_fill.cuh"
#include "bench/event_timer.cuh"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

using rag_bench::TimeUs;

#define CUBLAS_CHECK(expr)                                                   \
  do {                                                                       \
    cublasStatus_t s_ = (expr);                                              \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                       \
      std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #expr, (int)s_); \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

struct Shape {
  const char* name;
  int64_t n, k;  // w (n, k)
};

__global__ void FillBf16(__nv_bfloat16* p, size_t count, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    p[i] = __float2bfloat16(rag_bench::HashUniform(i, seed, -0.05f, 0.05f));
  }
}

// The decode forms on the Llama-3.1-70B projection shapes with bf16 and with FP8 (e4m3, one
// scale a row) weights: the time of each and the weight bytes it streams per microsecond against
// the copy bandwidth. FP8 halves the bytes; the question is whether the kernels still stream
// them at the same fraction of the bandwidth (twice the arithmetic per byte).
void BenchFp8(int warmup, int iters, double copy_gbs) {
  struct Shape70 { const char* name; int64_t n, k; int form; };  // form 0 norm, 1 swiglu, 2 acc
  const Shape70 shapes[] = {{"70b.qkv", 10240, 8192, 0}, {"70b.o", 8192, 8192, 2},
                            {"70b.gate_up", 57344, 8192, 1}, {"70b.down", 8192, 28672, 2}};
  std::printf("\n%-12s %10s %10s %8s %10s %10s %8s\n", "shape", "bf16_MB", "bf16_us", "of_copy",
              "fp8_MB", "fp8_us", "of_copy");
  for (const Shape70& s : shapes) {
    const size_t elems = static_cast<size_t>(s.n) * s.k;
    float times[2];
    for (int fp8 = 0; fp8 < 2; ++fp8) {
      const size_t w_bytes = elems * (fp8 ? 1 : 2);
      const int copies = static_cast<int>(std::max<size_t>(2, size_t{2000000000} / w_bytes));
      std::vector<void*> ws(copies);
      for (int c = 0; c < copies; ++c) {
        CUDA_CHECK(cudaMalloc(&ws[c], w_bytes));
        // Random bytes: as bf16 or as e4m3 codes (NaN codes included: timing only).
        FillBf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(ws[c]), w_bytes / 2, 31u + c);
      }
      float *x32, *y, *scale;
      __nv_bfloat16 *x, *act;
      CUDA_CHECK(cudaMalloc(&x32, s.k * 4));
      CUDA_CHECK(cudaMalloc(&x, s.k * 2));
      CUDA_CHECK(cudaMalloc(&y, s.n * 4));
      CUDA_CHECK(cudaMalloc(&scale, s.n * 4));
      CUDA_CHECK(cudaMalloc(&act, s.n * 2));
      CUDA_CHECK(cudaMemset(x32, 0, s.k * 4));
      CUDA_CHECK(cudaMemset(x, 0, s.k * 2));
      CUDA_CHECK(cudaMemset(scale, 0, s.n * 4));
      auto run = [&](int i) {
        void* w = ws[i % copies];
        rag::Status st;
        const auto* w8 = static_cast<const __nv_fp8_e4m3*>(w);
        const auto* w16 = static_cast<const __nv_bfloat16*>(w);
        if (s.form == 0) {
          st = fp8 ? rag::RmsNormGemv(x32, x, 1e-5f, w8, scale, s.n, s.k, y, nullptr)
                   : rag::RmsNormGemv(x32, x, 1e-5f, w16, s.n, s.k, y, nullptr);
        } else if (s.form == 1) {
          st = fp8 ? rag::RmsNormGemvSwiGlu(x32, x, 1e-5f, w8, scale, s.n / 2, s.k, act, nullptr)
                   : rag::RmsNormGemvSwiGlu(x32, x, 1e-5f, w16, s.n / 2, s.k, act, nullptr);
        } else {
          st = fp8 ? rag::DecodeGemvAccumulate(x, w8, scale, s.n, s.k, y, nullptr)
                   : rag::DecodeGemvAccumulate(x, w16, s.n, s.k, y, nullptr);
        }
        if (!st.ok()) {
          std::fprintf(stderr, "%s\n", st.ToString().c_str());
          std::abort();
        }
      };
      times[fp8] = TimeUs(warmup, iters, run);
      for (void* w : ws) CUDA_CHECK(cudaFree(w));
      for (void* p : {static_cast<void*>(x32), static_cast<void*>(x), static_cast<void*>(y),
                      static_cast<void*>(scale), static_cast<void*>(act)}) {
        CUDA_CHECK(cudaFree(p));
      }
    }
    const double mb16 = elems * 2 / 1e6, mb8 = elems / 1e6;
    const double f16 = mb16 * 1e6 / (times[0] * 1e3) / copy_gbs, f8 = mb8 * 1e6 / (times[1] * 1e3) / copy_gbs;
    std::printf("%-12s %10.1f %10.1f %7.0f%% %10.1f %10.1f %7.0f%%\n", s.name, mb16, times[0],
                100 * f16, mb8, times[1], 100 * f8);
    std::printf("{\"shape\":\"%s\",\"bf16_us\":%.2f,\"bf16_frac_of_copy\":%.3f,\"fp8_us\":%.2f,"
                "\"fp8_frac_of_copy\":%.3f}\n", s.name, times[0], f16, times[1], f8);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  const int warmup = 20;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));

  // The card's copy bandwidth: a large device-to-device copy (read + write bytes).
  const size_t copy_bytes = size_t{1} << 30;
  void *src, *dst;
  CUDA_CHECK(cudaMalloc(&src, copy_bytes));
  CUDA_CHECK(cudaMalloc(&dst, copy_bytes));
  const float copy_us = TimeUs(5, 50, [&](int) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice));
  });
  const double copy_gbs = 2.0 * copy_bytes / (copy_us * 1e3);
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));

  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  const Shape shapes[] = {{"8b.qkv", 6144, 4096}, {"8b.o", 4096, 4096},
                          {"8b.gate_up", 28672, 4096}, {"8b.down", 4096, 14336},
                          {"8b.lm_head", 128256, 4096}};
  std::printf("%s, copy bandwidth %.0f GB/s (1 GiB device-to-device, read + write)\n", prop.name,
              copy_gbs);
  std::printf("%-12s %8s %10s %8s %10s %10s %8s %10s %8s %10s\n", "shape", "MB", "ours_us", "GB/s",
              "of_copy", "decode_us", "of_copy", "cublas_us", "of_copy", "copy_us");
  std::vector<std::string> lines;
  for (const Shape& s : shapes) {
    const size_t w_bytes = static_cast<size_t>(s.n) * s.k * 2;
    const int copies = static_cast<int>(std::max<size_t>(2, size_t{2000000000} / w_bytes));
    std::vector<__nv_bfloat16*> ws(copies);
    for (int c = 0; c < copies; ++c) {
      CUDA_CHECK(cudaMalloc(&ws[c], w_bytes));
      FillBf16<<<1024, 256>>>(ws[c], w_bytes / 2, 17u + c);
    }
    __nv_bfloat16* x;
    float *y, *y_ref;
    CUDA_CHECK(cudaMalloc(&x, s.k * 2));
    CUDA_CHECK(cudaMalloc(&y, s.n * 4));
    CUDA_CHECK(cudaMalloc(&y_ref, s.n * 4));
    FillBf16<<<64, 256>>>(x, s.k, 99u);
    CUDA_CHECK(cudaGetLastError());
    // The decode form's inputs: the fp32 residual (the bf16 x widened), the norm weight (x
    // again: any values), the SwiGLU output.
    float* x32;
    __nv_bfloat16* act;
    CUDA_CHECK(cudaMalloc(&x32, s.k * 4));
    CUDA_CHECK(cudaMalloc(&act, s.n * 2));
    {
      std::vector<__nv_bfloat16> xh(s.k);
      CUDA_CHECK(cudaMemcpy(xh.data(), x, s.k * 2, cudaMemcpyDeviceToHost));
      std::vector<float> xf(s.k);
      for (int64_t j = 0; j < s.k; ++j) xf[j] = __bfloat162float(xh[j]);
      CUDA_CHECK(cudaMemcpy(x32, xf.data(), s.k * 4, cudaMemcpyHostToDevice));
    }
    const std::string name = s.name;
    auto decode = [&](int i) {
      rag::Status st;
      __nv_bfloat16* w = ws[i % copies];
      if (name == "8b.qkv" || name == "8b.lm_head") {
        st = rag::RmsNormGemv(x32, x, 1e-5f, w, s.n, s.k, y, nullptr);
      } else if (name == "8b.gate_up") {
        st = rag::RmsNormGemvSwiGlu(x32, x, 1e-5f, w, s.n / 2, s.k, act, nullptr);
      } else {
        st = rag::DecodeGemvAccumulate(x, w, s.n, s.k, y, nullptr);
      }
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        std::abort();
      }
    };

    const float alpha = 1.0f, beta = 0.0f;
    // Column-major view: w (n, k) row-major is A (k x n), lda k; y^T (n x 1) = A^T x.
    auto cublas = [&](int i, float* out) {
      CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(s.n), 1,
                                static_cast<int>(s.k), &alpha, ws[i % copies], CUDA_R_16BF,
                                static_cast<int>(s.k), x, CUDA_R_16BF, static_cast<int>(s.k),
                                &beta, out, CUDA_R_32F, static_cast<int>(s.n),
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    auto ours = [&](int i) {
      rag::Status st = rag::Gemv(x, ws[i % copies], 1, s.n, s.k, y, nullptr);
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        std::abort();
      }
    };
    // Agreement check on copy 0 before timing.
    ours(0);
    cublas(0, y_ref);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> a(s.n), b(s.n);
    CUDA_CHECK(cudaMemcpy(a.data(), y, s.n * 4, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(b.data(), y_ref, s.n * 4, cudaMemcpyDeviceToHost));
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < s.n; ++i) {
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
    }

    const float ours_us = TimeUs(warmup, iters, ours);
    const float cublas_us = TimeUs(warmup, iters, [&](int i) { cublas(i, y_ref); });
    const float decode_us = TimeUs(warmup, iters, decode);
    const double decode_gbs = w_bytes / (decode_us * 1e3);
    // The same bytes through the copy engine path: w_bytes read + w_bytes written.
    __nv_bfloat16* scratch;
    CUDA_CHECK(cudaMalloc(&scratch, w_bytes));
    const float copy_same_us = TimeUs(5, 20, [&](int i) {
      CUDA_CHECK(cudaMemcpyAsync(scratch, ws[i % copies], w_bytes, cudaMemcpyDeviceToDevice));
    });
    const double mb = w_bytes / 1e6;
    const double ours_gbs = w_bytes / (ours_us * 1e3), cublas_gbs = w_bytes / (cublas_us * 1e3);
    std::printf("%-12s %8.1f %10.1f %8.0f %9.0f%% %10.1f %7.0f%% %10.1f %7.0f%% %10.1f\n", s.name,
                mb, ours_us, ours_gbs, 100 * ours_gbs / copy_gbs, decode_us,
                100 * decode_gbs / copy_gbs, cublas_us, 100 * cublas_gbs / copy_gbs, copy_same_us);
    char line[512];
    std::snprintf(line, sizeof(line),
                  "{\"shape\":\"%s\",\"m\":1,\"n\":%lld,\"k\":%lld,\"mb\":%.1f,\"ours_us\":%.2f,"
                  "\"ours_gbs\":%.0f,\"ours_frac_of_copy\":%.3f,\"decode_us\":%.2f,\"cublas_us\":%.2f,"
                  "\"cublas_gbs\":%.0f,\"cublas_frac_of_copy\":%.3f,\"copy_same_bytes_us\":%.2f,"
                  "\"max_abs_diff_vs_cublas\":%.3g,\"max_abs_ref\":%.3g}",
                  s.name, static_cast<long long>(s.n), static_cast<long long>(s.k), mb, ours_us,
                  ours_gbs, ours_gbs / copy_gbs, decode_us, cublas_us, cublas_gbs, cublas_gbs / copy_gbs,
                  copy_same_us, max_diff, max_ref);
    lines.emplace_back(line);
    CUDA_CHECK(cudaFree(scratch));
    for (auto* w : ws) CUDA_CHECK(cudaFree(w));
    CUDA_CHECK(cudaFree(x));
    CUDA_CHECK(cudaFree(x32));
    CUDA_CHECK(cudaFree(act));
    CUDA_CHECK(cudaFree(y));
    CUDA_CHECK(cudaFree(y_ref));
  }
  std::printf("{\"gpu\":\"%s\",\"copy_gbs\":%.0f,\"iterations\":%d}\n", prop.name, copy_gbs, iters);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  CUBLAS_CHECK(cublasDestroy(handle));
  BenchFp8(warmup, iters, copy_gbs);
  return 0;
}
