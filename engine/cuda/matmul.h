// y (m, n) fp32 = x (m, k) bf16 times w^T, w (n, k) bf16 row-major (nn.Linear layout): the
// projections of the CUDA backend. Small m (decode, up to kGemvMaxM rows) takes our GEMV,
// which reads w once at close to memory bandwidth; larger m (prefill, big decode batches)
// takes cuBLAS's bf16 tensor-core GEMM with fp32 accumulation and output.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "engine/cuda/device_buffer.h"
#include "kernels/kernels.h"

namespace rag {

// Ok for CUBLAS_STATUS_SUCCESS, else Internal naming the call (`what`) and cuBLAS's message.
Status CublasStatus(cublasStatus_t s, const char* what);

class CudaMatMul {
 public:
  // Every call enqueues on `stream`. The cuBLAS workspace is preallocated, so calls can be
  // captured in a CUDA graph.
  // gemv_max_rows: rows up to which our GEMV runs (0..kGemvMaxM); cuBLAS above.
  static StatusOr<std::unique_ptr<CudaMatMul>> Create(cudaStream_t stream, int gemv_max_rows);
  ~CudaMatMul();
  CudaMatMul(const CudaMatMul&) = delete;
  CudaMatMul& operator=(const CudaMatMul&) = delete;

  // accumulate: y += x w^T (the residual add of the o and down projections), else y = x w^T.
  Status Run(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
             float* y, bool accumulate = false);
  // y in bf16 (cuBLAS only: any m): for outputs that are only read by the next kernel.
  Status Run(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
             __nv_bfloat16* y);
  int gemv_max_rows() const { return gemv_max_rows_; }

 private:
  CudaMatMul() = default;
  Status Cublas(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                void* y, cudaDataType_t y_type, bool accumulate);
  int gemv_max_rows_ = kGemvMaxM;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
};

}  // namespace rag
