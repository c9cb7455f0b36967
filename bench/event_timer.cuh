// Timing for the GPU micro-benchmarks (bench/*.cu): the mean time of a call, measured with CUDA
// events on the stream the calls use.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>

#include "kernels/cuda_check.h"

namespace rag_bench {

// Mean microseconds over `iters` calls of fn(i) (i counts from 0, so callers can rotate
// buffers), after `warmup` untimed calls.
// The calls run on `stream` (the default stream unless given).
inline float TimeUs(int warmup, int iters, const std::function<void(int)>& fn,
                    cudaStream_t stream = nullptr) {
  for (int i = 0; i < warmup; ++i) fn(i);
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  CUDA_CHECK(cudaEventRecord(a, stream));
  for (int i = 0; i < iters; ++i) fn(i);
  CUDA_CHECK(cudaEventRecord(b, stream));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return ms * 1000.0f / iters;
}

}  // namespace rag_bench
