// The GEMMs of an FP8 model's prefill and batched decode steps (issue 8): y = x W^T with W an
// e4m3 matrix of `rag quantize` (one fp32 scale per output row). x (bf16) is quantized per row
// to e4m3 (kernels: QuantizeRowsFp8) and one cuBLASLt FP8 GEMM multiplies the codes on the
// tensor cores (twice bf16's rate on Hopper). Both scale vectors are applied
// - for more than unit_scale_max_rows rows, in cuBLASLt's epilogue
//   (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: y[i][j] = sx[i] * sw[j] * (qx qw^T)[i][j]);
// - for at most unit_scale_max_rows (128: batched decode steps), by a kernel after a GEMM with
//   unit scales (kernels: ScaleFp8Product), since cuBLASLt has a single kernel for the
//   outer-vector scales, tiled for prefills. On an H200 at the 70B shapes of one GPU, 16 rows
//   (a batch of 8) took 437 us a layer in that kernel against 254 in the unit-scale GEMMs alone,
//   and a batch-8 step went from 35.5 to 23.1 ms; from ~256 rows up the epilogue form is as
//   fast or faster (bench/fp8_gemm_bench.cc, docs/BENCHMARKS.md).
// Without FP8 GEMMs every step widened each projection to bf16 first (1 byte read, 2 written a
// weight). Needs compute capability 8.9 or 9.x and a cuBLASLt that offers the outer-vector
// scales; Create fails otherwise (the backend then keeps the widening path).
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "common/status.h"
#include "engine/cuda/device_buffer.h"

namespace rag {

class Fp8MatMul {
 public:
  // Activations of up to max_rows x max_cols; every call enqueues on `stream`. Calls that add
  // into y take the unit-scale form for outputs of up to max_accumulated_cols columns (0:
  // max_cols; it sizes a buffer of kDefaultUnitScaleMaxRows such rows). Weight scale vectors
  // must be 16-byte aligned.
  static StatusOr<std::unique_ptr<Fp8MatMul>> Create(cudaStream_t stream, int64_t max_rows,
                                                     int64_t max_cols,
                                                     int64_t max_accumulated_cols = 0);
  ~Fp8MatMul();
  Fp8MatMul(const Fp8MatMul&) = delete;
  Fp8MatMul& operator=(const Fp8MatMul&) = delete;

  // y (m, n) = x (m, k) W^T, W = diag(w_scale) * w (n, k) row-major; accumulate: y +=.
  Status Run(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale, int64_t n,
             int64_t k, float* y, bool accumulate = false);
  Status Run(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale, int64_t n,
             int64_t k, __nv_bfloat16* y);

  // Benchmarks (bench/fp8_gemm_bench.cc): take cuBLASLt's candidate `rank` (0: its first
  // choice, the default) for the shapes met from now on; a shape for which it offers fewer
  // candidates fails with Unsupported.
  void UseHeuristicCandidate(int rank) {
    candidate_ = rank;
    algos_.clear();
  }
  // Calls of at most this many rows take the unit-scale GEMM and ScaleFp8Product (0: never;
  // benchmarks and tests compare the two forms).
  static constexpr int64_t kDefaultUnitScaleMaxRows = 128;
  void SetUnitScaleMaxRows(int64_t rows) {
    unit_scale_max_rows_ = rows;
    algos_.clear();
  }
  // Calls that took the unit-scale form so far (tests).
  int64_t unit_scale_calls() const { return unit_scale_calls_; }

 private:
  Fp8MatMul() = default;
  Status Gemm(const __nv_bfloat16* x, int64_t m, const __nv_fp8_e4m3* w, const float* w_scale, int64_t n,
              int64_t k, void* y, cudaDataType_t y_type, bool accumulate);
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t handle_ = nullptr;
  int64_t max_rows_ = 0, max_cols_ = 0;
  DeviceBuffer x_codes_;   // (max_rows, max_cols) e4m3
  DeviceBuffer x_scales_;  // (max_rows) fp32
  DeviceBuffer workspace_;
  // cuBLASLt's heuristic choice for each (m, n, k, output type, accumulate), found once.
  std::map<std::tuple<int64_t, int64_t, int64_t, int, bool>, cublasLtMatmulAlgo_t> algos_;
  int candidate_ = 0;
  int64_t unit_scale_max_rows_ = kDefaultUnitScaleMaxRows;
  int64_t unit_scale_calls_ = 0;
  DeviceBuffer unit_;  // one fp32 1.0: the unit-scale GEMMs' scales
  DeviceBuffer raw_;   // (min(max_rows, kDefaultUnitScaleMaxRows), max_accumulated_cols) fp32:
                       // the products of calls that add into y
};

}  // namespace rag
