#include "engine/cuda/matmul.h"

#include <string>

#include "kernels/kernels.h"

namespace rag {

Status CublasStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Internal(std::string("cuBLAS: ") + what + ": " + cublasGetStatusString(s));
}

StatusOr<std::unique_ptr<CudaMatMul>> CudaMatMul::Create(cudaStream_t stream, int gemv_max_rows) {
  if (gemv_max_rows < 0 || gemv_max_rows > kGemvMaxM) {
    return InvalidArgument("CudaMatMul: gemv_max_rows must be 0.." + std::to_string(kGemvMaxM));
  }
  std::unique_ptr<CudaMatMul> mm(new CudaMatMul());
  mm->stream_ = stream;
  mm->gemv_max_rows_ = gemv_max_rows;
  RAG_RETURN_IF_ERROR(CublasStatus(cublasCreate(&mm->handle_), "cublasCreate"));
  // A fixed workspace: cuBLAS must not allocate while a graph is being captured (32 MiB is
  // what NVIDIA recommends for Hopper).
  RAG_ASSIGN_OR_RETURN(mm->workspace_, DeviceBuffer::Allocate(32u << 20, "the cuBLAS workspace"));
  RAG_RETURN_IF_ERROR(CublasStatus(cublasSetStream(mm->handle_, stream), "cublasSetStream"));
  RAG_RETURN_IF_ERROR(CublasStatus(
      cublasSetWorkspace(mm->handle_, mm->workspace_.get(), mm->workspace_.bytes()),
      "cublasSetWorkspace"));
  return mm;
}

CudaMatMul::~CudaMatMul() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

Status CudaMatMul::Run(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n,
                       int64_t k, float* y, bool accumulate) {
  if (m <= gemv_max_rows_) {
    return accumulate ? GemvAccumulate(x, w, m, n, k, y, stream_) : Gemv(x, w, m, n, k, y, stream_);
  }
  return Cublas(x, m, w, n, k, y, CUDA_R_32F, accumulate);
}

Status CudaMatMul::Run(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n,
                       int64_t k, __nv_bfloat16* y) {
  return Cublas(x, m, w, n, k, y, CUDA_R_16BF, false);
}

Status CudaMatMul::Cublas(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n,
                          int64_t k, void* y, cudaDataType_t y_type, bool accumulate) {
  if (n > INT32_MAX || m > INT32_MAX || k > INT32_MAX) {
    return InvalidArgument("CudaMatMul: shape too large for cuBLAS");
  }
  // cuBLAS is column-major: y^T (n, m) = w (n, k) [w row-major is w^T column-major, so op T]
  // times x^T (k, m) [x row-major (m, k) is x^T column-major, op N].
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  cublasStatus_t s = cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                  static_cast<int>(m), static_cast<int>(k), &alpha, w,
                                  CUDA_R_16BF, static_cast<int>(k), x, CUDA_R_16BF,
                                  static_cast<int>(k), &beta, y, y_type, static_cast<int>(n),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  return CublasStatus(s, "cublasGemmEx");
}

}  // namespace rag
