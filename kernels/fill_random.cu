// Device-side fills for dummy weights (`--load-format dummy`): a 70B model's 141 GB of random
// weights are drawn on the GPU in seconds instead of being generated and copied by the host.
// Element i gets a value from a counter-based hash of (seed, i), so a fill is reproducible and
// independent of the launch geometry.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

__device__ __forceinline__ uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Standard normal z_i of (seed, i) by Box-Muller from the two 32-bit halves of one hash.
__device__ __forceinline__ float HashNormal(uint64_t seed, int64_t i) {
  const uint64_t h = SplitMix64(seed * 0x100000001b3ull ^ static_cast<uint64_t>(i));
  const float u1 = (static_cast<float>(h >> 40) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
  const float u2 = static_cast<float>((h >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

__global__ void FillNormalKernel(__nv_bfloat16* __restrict__ out, int64_t n, uint64_t seed,
                                 float mean, float stddev) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16_rn(mean + stddev * HashNormal(seed, i));
  }
}

// FP8 dummy weights: code i = e4m3(z_i * 448 / 4) (normal, saturating past 4 sigma), and
// every row's scale stddev * 4 / 448, so that scale * code is about normal(0, stddev).
__global__ void FillNormalFp8Kernel(__nv_fp8_e4m3* __restrict__ codes, float* __restrict__ scales,
                                    int64_t rows, int64_t cols, uint64_t seed, float stddev) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    codes[i] = __nv_fp8_e4m3(HashNormal(seed, i) * (448.0f / 4.0f));  // satfinite
    if (i < rows) scales[i] = stddev * (4.0f / 448.0f);
  }
}

}  // namespace

Status FillNormalFp8(__nv_fp8_e4m3* codes, float* scales, int64_t rows, int64_t cols, uint64_t seed,
                     float stddev, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || !(stddev >= 0.0f) || codes == nullptr || scales == nullptr) {
    return InvalidArgument("FillNormalFp8: bad shape or pointer");
  }
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((rows * cols + threads - 1) / threads, 65536);
  FillNormalFp8Kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(codes, scales, rows,
                                                                              cols, seed, stddev);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

Status FillNormalBf16(__nv_bfloat16* out, int64_t n, uint64_t seed, float mean, float stddev,
                      cudaStream_t stream) {
  if (n < 0 || !(stddev >= 0.0f)) {
    return InvalidArgument("FillNormalBf16: bad n=" + std::to_string(n) +
                           " or stddev=" + std::to_string(stddev));
  }
  if (n == 0) return Status::Ok();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
  FillNormalKernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(out, n, seed, mean,
                                                                           stddev);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace rag
