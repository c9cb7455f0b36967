// Residual add fused with RMSNorm: one block per row; the sum of squares is reduced in fp32
// (warp shuffles, then across warps through shared memory).
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kThreads = 256;

template <typename OutT>
__global__ void __launch_bounds__(kThreads)
    AddRmsNormKernel(float* __restrict__ x, const float* __restrict__ residual,
                     const __nv_bfloat16* __restrict__ w, int64_t dim, float eps,
                     OutT* __restrict__ y) {
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float inv_rms;
  AllowDependentLaunch();
  AwaitPriorGrid();
  float* xr = x + blockIdx.x * dim;
  const float* rr = residual ? residual + blockIdx.x * dim : nullptr;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    float v = xr[j];
    if (rr) {
      v += rr[j];
      xr[j] = v;
    }
    ss += v * v;
  }
  ss = WarpSum(ss);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.0f;
    s = WarpSum(s);
    // IEEE sqrt and division (no fast math), as the CPU's 1 / sqrt(mean + eps).
    if (threadIdx.x == 0) inv_rms = 1.0f / sqrtf(s / static_cast<float>(dim) + eps);
  }
  __syncthreads();
  const float r = inv_rms;
  OutT* yr = y + blockIdx.x * dim;
  // Each thread rereads only the elements it wrote above.
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) StoreAs(yr + j, ToFloat(w[j]) * (xr[j] * r));
}

template <typename OutT>
Status Launch(float* x, const float* residual, const __nv_bfloat16* w, int64_t n, int64_t dim,
              float eps, OutT* y, cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX || dim <= 0) {
    return InvalidArgument("AddRmsNorm: bad shape n=" + std::to_string(n) +
                           " dim=" + std::to_string(dim));
  }
  if (n == 0) return Status::Ok();
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(AddRmsNormKernel<OutT>, dim3(static_cast<unsigned>(n)),
                                           dim3(kThreads), 0, stream, x, residual, w, dim, eps, y));
  return Status::Ok();
}

}  // namespace

Status AddRmsNorm(float* x, const float* residual, const __nv_bfloat16* w, int64_t n,
                  int64_t dim, float eps, float* y, cudaStream_t stream) {
  return Launch(x, residual, w, n, dim, eps, y, stream);
}

Status AddRmsNorm(float* x, const float* residual, const __nv_bfloat16* w, int64_t n,
                  int64_t dim, float eps, __nv_bfloat16* y, cudaStream_t stream) {
  return Launch(x, residual, w, n, dim, eps, y, stream);
}

}  // namespace rag
