#include "engine/cuda/fp8_matmul.h"

#include <algorithm>
#include <string>

#include "engine/cuda/matmul.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

// The descriptors of one GEMM, destroyed with it.
struct LtGemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~LtGemm() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};

template <typename T>
Status SetAttr(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value, const char* what) {
  return CublasStatus(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)), what);
}

}  // namespace

StatusOr<std::unique_ptr<Fp8MatMul>> Fp8MatMul::Create(cudaStream_t stream, int64_t max_rows,
                                                       int64_t max_cols,
                                                       int64_t max_accumulated_cols) {
  if (max_rows <= 0 || max_cols <= 0) return InvalidArgument("Fp8MatMul: empty capacity");
  int device = 0, major = 0, minor = 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  RAG_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  RAG_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major * 10 + minor < 89) {
    return Unsupported("Fp8MatMul: FP8 tensor cores need compute capability 8.9 or later, this GPU has " +
                       std::to_string(major) + "." + std::to_string(minor));
  }
  std::unique_ptr<Fp8MatMul> mm(new Fp8MatMul());
  mm->stream_ = stream;
  mm->max_rows_ = max_rows;
  mm->max_cols_ = max_cols;
  RAG_RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&mm->handle_), "cublasLtCreate"));
  RAG_ASSIGN_OR_RETURN(mm->x_codes_, DeviceBuffer::Allocate(static_cast<size_t>(max_rows * max_cols),
                                                            "the FP8 activation codes"));
  RAG_ASSIGN_OR_RETURN(mm->x_scales_, DeviceBuffer::Allocate(static_cast<size_t>(max_rows) * 4,
                                                             "the FP8 activation scales"));
  RAG_ASSIGN_OR_RETURN(mm->workspace_,
                       DeviceBuffer::Allocate(kWorkspaceBytes, "the cuBLASLt workspace"));
  RAG_ASSIGN_OR_RETURN(mm->unit_, DeviceBuffer::Allocate(4, "the unit scale"));
  const float one = 1.0f;
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(mm->unit_.get(), &one, sizeof(one), cudaMemcpyHostToDevice));
  const int64_t raw_rows = std::min(max_rows, kDefaultUnitScaleMaxRows);
  const int64_t raw_cols = max_accumulated_cols > 0 ? max_accumulated_cols : max_cols;
  RAG_ASSIGN_OR_RETURN(mm->raw_,
                       DeviceBuffer::Allocate(static_cast<size_t>(raw_rows * raw_cols) * 4,
                                              "the FP8 GEMM products"));
  return mm;
}

Fp8MatMul::~Fp8MatMul() {
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

Status Fp8MatMul::Run(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale,
                      int64_t n, int64_t k, float* y, bool accumulate) {
  return Gemm(x, m, w, w_scale, n, k, y, CUDA_R_32F, accumulate);
}

Status Fp8MatMul::Run(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale,
                      int64_t n, int64_t k, __nv_bfloat16* y) {
  return Gemm(x, m, w, w_scale, n, k, y, CUDA_R_16BF, false);
}

Status Fp8MatMul::Gemm(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale,
                       int64_t n, int64_t k, void* y, cudaDataType_t y_type, bool accumulate) {
  if (m <= 0 || m > max_rows_ || k <= 0 || k > max_cols_ || n <= 0 || n > INT32_MAX || k % 16 != 0) {
    return InvalidArgument("Fp8MatMul: shape " + std::to_string(m) + "x" + std::to_string(k) + " times " +
                           std::to_string(n) + "x" + std::to_string(k) + " outside its buffers or not k % 16 == 0");
  }
  if (reinterpret_cast<uintptr_t>(w_scale) % 16 != 0) {  // cuBLASLt's scale vectors, and ours
    return InvalidArgument("Fp8MatMul: the weight scales must be 16-byte aligned");
  }
  __nv_fp8_e4m3* x_codes = x_codes_.as<__nv_fp8_e4m3>();
  float* x_scales = x_scales_.as<float>();
  RAG_RETURN_IF_ERROR(QuantizeRowsFp8(x, m, k, x_codes, x_scales, stream_));

  // Few rows: unit scales, the products written to y itself (or, to add them into y, to raw_),
  // then scaled by ScaleFp8Product.
  const bool unit = m <= unit_scale_max_rows_ && n % 8 == 0 &&
                    reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                    (!accumulate || m * n <= static_cast<int64_t>(raw_.bytes() / 4));
  void* d = unit && accumulate ? raw_.get() : y;

  // Column-major, as cuBLAS sees it: y^T (n, m) = W (k x n column-major = W row-major, op T)^T
  // times x^T (k x m column-major = x row-major, op N): the "TN" form FP8 GEMMs require.
  LtGemm g;
  RAG_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulDescCreate(&g.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                                   "cublasLtMatmulDescCreate"));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  RAG_RETURN_IF_ERROR(SetAttr(g.desc, CUBLASLT_MATMUL_DESC_TRANSA, op_t, "TRANSA"));
  RAG_RETURN_IF_ERROR(SetAttr(g.desc, CUBLASLT_MATMUL_DESC_TRANSB, op_n, "TRANSB"));
  const int32_t mode =
      unit ? CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
  RAG_RETURN_IF_ERROR(SetAttr(g.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, mode, "A_SCALE_MODE"));
  RAG_RETURN_IF_ERROR(SetAttr(g.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, mode, "B_SCALE_MODE"));
  const float* a_scale = unit ? unit_.as<float>() : w_scale;
  const float* b_scale = unit ? unit_.as<float>() : x_scales;
  RAG_RETURN_IF_ERROR(
      SetAttr(g.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a_scale, "A_SCALE_POINTER"));
  RAG_RETURN_IF_ERROR(
      SetAttr(g.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b_scale, "B_SCALE_POINTER"));
  RAG_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&g.a, CUDA_R_8F_E4M3, k, n, k), "layout A"));
  RAG_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&g.b, CUDA_R_8F_E4M3, k, m, k), "layout B"));
  RAG_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&g.c, y_type, n, m, n), "layout C"));

  const auto key = std::make_tuple(m, n, k, static_cast<int>(y_type), accumulate);
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    cublasLtMatmulPreference_t pref = nullptr;
    RAG_RETURN_IF_ERROR(CublasStatus(cublasLtMatmulPreferenceCreate(&pref), "preference"));
    const uint64_t ws = workspace_.bytes();
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulHeuristicResult_t results[8] = {};
    int found = 0;
    const int wanted = std::min(candidate_ + 1, 8);
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle_, g.desc, g.a, g.b, g.c, g.c,
                                                            pref, wanted, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || found < wanted) {
      return Unsupported(
          std::string("Fp8MatMul: cuBLASLt has no FP8 GEMM ") +
          (unit ? "with unit scales" : "with per-row scales") + " for " + std::to_string(m) + "x" +
          std::to_string(n) + "x" + std::to_string(k) + " (" + cublasGetStatusString(s) +
          (s == CUBLAS_STATUS_SUCCESS ? ", candidate " + std::to_string(wanted - 1) : "") + ")");
    }
    it = algos_.emplace(key, results[wanted - 1].algo).first;
  }
  const float alpha = 1.0f, beta = accumulate && !unit ? 1.0f : 0.0f;
  RAG_RETURN_IF_ERROR(
      CublasStatus(cublasLtMatmul(handle_, g.desc, &alpha, w, g.a, x_codes, g.b, &beta, d, g.c, d,
                                  g.c, &it->second, workspace_.get(), workspace_.bytes(), stream_),
                   "cublasLtMatmul (FP8)"));
  if (!unit) return Status::Ok();
  ++unit_scale_calls_;
  if (y_type == CUDA_R_16BF) {
    return ScaleFp8Product(static_cast<const __nv_bfloat16*>(d), m, n, x_scales, w_scale,
                           static_cast<__nv_bfloat16*>(y), stream_);
  }
  return ScaleFp8Product(static_cast<const float*>(d), m, n, x_scales, w_scale,
                         static_cast<float*>(y), accumulate, stream_);
}

}  // namespace rag
