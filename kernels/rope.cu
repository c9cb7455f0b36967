// RoPE, rotate-half layout, in place: a grid of (token, group of heads) blocks, one thread per
// (head, pair), so that a decode step's single token spreads over many SMs instead of one block
// looping over all its heads (10 us -> a few).
// cos/sin are computed per element from the host's inv_freq (precise sinf/cosf, full-range
// argument reduction), so positions far past the 8192 of Llama 3.1's original context are exact
// to a few ulp.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

__global__ void RopeKernel(float* __restrict__ x, int64_t row_stride, int n_heads, int half,
                           const int32_t* __restrict__ positions,
                           const float* __restrict__ inv_freq) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  float* row = x + blockIdx.x * row_stride;
  const float pos = static_cast<float>(positions[blockIdx.x]);
  const int stride = blockDim.x * gridDim.y;
  for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < n_heads * half; p += stride) {
    const int h = p / half, i = p - h * half;
    float* v = row + static_cast<int64_t>(h) * 2 * half;
    RopeRotate(v[i], v[i + half], inv_freq[i], pos, v[i], v[i + half]);
  }
}

__global__ void RopeCosSinTableKernel(const int32_t* __restrict__ positions, int64_t n_tokens,
                                      const float* __restrict__ inv_freq, int half,
                                      float2* __restrict__ table) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t total = n_tokens * half;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = e / half;
    const int i = static_cast<int>(e - t * half);
    table[e] = RopeCosSinAt(inv_freq[i], static_cast<float>(positions[t]));
  }
}

}  // namespace

Status RopeCosSinTable(const int32_t* positions, int64_t n_tokens, const float* inv_freq,
                       int64_t half, float2* table, cudaStream_t stream) {
  if (n_tokens < 0 || half <= 0 || half > INT32_MAX || n_tokens > INT64_MAX / half) {
    return InvalidArgument("RopeCosSinTable: bad shape n_tokens=" + std::to_string(n_tokens) +
                           " half=" + std::to_string(half));
  }
  if (n_tokens == 0) return Status::Ok();
  const int64_t total = n_tokens * half;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 1024);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(RopeCosSinTableKernel, dim3(static_cast<unsigned>(blocks)),
                                           dim3(256), 0, stream, positions, n_tokens, inv_freq,
                                           static_cast<int>(half), table));
  return Status::Ok();
}

Status RopeInplace(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads,
                   int64_t head_dim, const int32_t* positions, const float* inv_freq,
                   cudaStream_t stream) {
  if (n_tokens < 0 || n_tokens > INT32_MAX || n_heads <= 0 || head_dim <= 0 ||
      head_dim % 2 != 0 || n_heads * head_dim > row_stride || n_heads * head_dim > INT32_MAX) {
    return InvalidArgument("RopeInplace: bad shape n_tokens=" + std::to_string(n_tokens) +
                           " row_stride=" + std::to_string(row_stride) +
                           " n_heads=" + std::to_string(n_heads) +
                           " head_dim=" + std::to_string(head_dim));
  }
  if (n_tokens == 0) return Status::Ok();
  const int64_t pairs = n_heads * head_dim / 2;
  const int threads = pairs >= 128 ? 128 : static_cast<int>((pairs + 31) / 32 * 32);
  // Enough blocks in all to fill the GPU, at most one pair per thread.
  const int64_t groups = std::min<int64_t>((pairs + threads - 1) / threads,
                                           std::max<int64_t>(1, 1024 / n_tokens));
  const dim3 grid(static_cast<unsigned>(n_tokens), static_cast<unsigned>(groups));
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(RopeKernel, grid, dim3(threads), 0, stream, x, row_stride,
                                           static_cast<int>(n_heads),
                                           static_cast<int>(head_dim / 2), positions, inv_freq));
  return Status::Ok();
}

}  // namespace rag
