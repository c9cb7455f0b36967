// Residual add fused with RMSNorm: one block per row; the sum of squares is reduced in fp32
// (warp shuffles, then across warps through shared memory).
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kThreads = 256;

// 1 / sqrt(mean + eps) of the row whose squares this block's threads summed into ss (IEEE sqrt
// and division, no fast math, as the CPU's), to every thread.
__device__ __forceinline__ float InvRms(float ss, int64_t dim, float eps) {
  return 1.0f / sqrtf(BlockSum<kThreads>(ss) / static_cast<float>(dim) + eps);
}

template <typename OutT>
__global__ void __launch_bounds__(kThreads)
    AddRmsNormKernel(float* __restrict__ x, const float* __restrict__ residual,
                     const __nv_bfloat16* __restrict__ w, int64_t dim, float eps,
                     OutT* __restrict__ y) {
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
  const float r = InvRms(ss, dim, eps);
  OutT* yr = y + blockIdx.x * dim;
  // Each thread rereads only the elements it wrote above.
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) StoreAs(yr + j, ToFloat(w[j]) * (xr[j] * r));
}

// The same for dim % 4 == 0 up to kMaxVec4 * 4 * kThreads (8192) with 16-byte aligned rows:
// float4 loads, the row held in registers between the two passes (the prefill's norms are
// bandwidth-bound: 2048 rows of 4096 read as fp32, written as bf16).
constexpr int kMaxVec4 = 8;

template <typename OutT>
__global__ void __launch_bounds__(kThreads)
    AddRmsNormVec4Kernel(float* __restrict__ x, const float* __restrict__ residual,
                         const __nv_bfloat16* __restrict__ w, int64_t dim, float eps,
                         OutT* __restrict__ y) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t n4 = dim / 4;
  float4* xr = reinterpret_cast<float4*>(x + blockIdx.x * dim);
  const float4* rr = residual ? reinterpret_cast<const float4*>(residual + blockIdx.x * dim) : nullptr;
  float4 v[kMaxVec4];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxVec4; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * kThreads;
    if (j < n4) {
      v[i] = xr[j];
      if (rr) {
        const float4 r4 = rr[j];
        v[i].x += r4.x;
        v[i].y += r4.y;
        v[i].z += r4.z;
        v[i].w += r4.w;
        xr[j] = v[i];
      }
      ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
    }
  }
  const float r = InvRms(ss, dim, eps);
  OutT* yr = y + blockIdx.x * dim;
#pragma unroll
  for (int i = 0; i < kMaxVec4; ++i) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(i) * kThreads;
    if (j < n4) {
      const float4 o = v[i];
      const __nv_bfloat16* wj = w + 4 * j;
      StoreAs(yr + 4 * j, ToFloat(wj[0]) * (o.x * r));
      StoreAs(yr + 4 * j + 1, ToFloat(wj[1]) * (o.y * r));
      StoreAs(yr + 4 * j + 2, ToFloat(wj[2]) * (o.z * r));
      StoreAs(yr + 4 * j + 3, ToFloat(wj[3]) * (o.w * r));
    }
  }
}

template <typename OutT>
Status Launch(float* x, const float* residual, const __nv_bfloat16* w, int64_t n, int64_t dim,
              float eps, OutT* y, cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX || dim <= 0) {
    return InvalidArgument("AddRmsNorm: bad shape n=" + std::to_string(n) +
                           " dim=" + std::to_string(dim));
  }
  if (n == 0) return Status::Ok();
  const bool vec4 = dim % 4 == 0 && dim <= int64_t{kMaxVec4} * 4 * kThreads &&
                    reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(residual) % 16 == 0;
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(vec4 ? AddRmsNormVec4Kernel<OutT> : AddRmsNormKernel<OutT>,
                                           dim3(static_cast<unsigned>(n)), dim3(kThreads), 0,
                                           stream, x, residual, w, dim, eps, y));
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
