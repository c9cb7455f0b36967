// Error handling around CUDA runtime calls (DESIGN.md section 8: CUDA_CHECK around every call).
//   RAG_CUDA_RETURN_IF_ERROR(expr)  in functions returning Status: a failed call becomes
//                                   Internal("file:line: expr: cudaErrorName: message").
//   CUDA_CHECK(expr)                in tests and benchmarks: a failed call aborts with the same.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

#include "common/status.h"

namespace rag {

// The Status of a failed CUDA call (`what` names the expression and its place).
Status CudaError(cudaError_t err, const char* what, const char* file, int line);

}  // namespace rag

#define RAG_CUDA_RETURN_IF_ERROR(expr)                                  \
  do {                                                                  \
    cudaError_t rag_cuda_err_ = (expr);                                 \
    if (rag_cuda_err_ != cudaSuccess)                                   \
      return ::rag::CudaError(rag_cuda_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK(expr)                                                          \
  do {                                                                            \
    cudaError_t rag_cuda_err_ = (expr);                                           \
    if (rag_cuda_err_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #expr,     \
                   cudaGetErrorName(rag_cuda_err_), cudaGetErrorString(rag_cuda_err_)); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// After a kernel launch: reports launch-configuration errors (not asynchronous faults, which
// surface at the next synchronising call).
#define RAG_CUDA_RETURN_IF_LAUNCH_FAILED() RAG_CUDA_RETURN_IF_ERROR(cudaGetLastError())
