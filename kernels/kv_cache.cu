// KV cache append: one block per token.
//  - bf16 cache: threads over (kv head, dim); each element is rounded to bf16 (nearest even) and
//    stored at its slot of the paged cache (layout in kernels.h).
//  - FP8 cache: one warp per row (a kv head of k, or of v): the warp's max |x| gives the row's
//    scale (max / 448, e4m3's largest finite value), then each lane stores its codes. A row is
//    read twice (max, then codes); the second read hits L1.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

__global__ void KvAppendKernel(const float* __restrict__ k, int64_t k_stride,
                               const float* __restrict__ v, int64_t v_stride,
                               const int64_t* __restrict__ slot_mapping, int n_kv_heads,
                               int head_dim, int block_size, __nv_bfloat16* __restrict__ k_cache,
                               __nv_bfloat16* __restrict__ v_cache) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t t = blockIdx.x;
  const int64_t s = slot_mapping[t];
  if (s < 0) return;  // padding token: nothing written
  const int64_t block = s / block_size, slot = s - block * block_size;
  const float* kr = k + t * k_stride;
  const float* vr = v + t * v_stride;
  const int row = n_kv_heads * head_dim;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    const int h = i / head_dim, d = i - h * head_dim;
    const int64_t off = ((block * n_kv_heads + h) * block_size + slot) * head_dim + d;
    StoreAs(k_cache + off, kr[i]);
    StoreAs(v_cache + off, vr[i]);
  }
}

constexpr float kE4m3Max = 448.0f;
constexpr int kFp8Warps = 8;  // warps a block in the FP8 form; they stride over the 2 n_kv rows

__global__ void KvAppendFp8Kernel(const float* __restrict__ k, int64_t k_stride,
                                  const float* __restrict__ v, int64_t v_stride,
                                  const int64_t* __restrict__ slot_mapping, int n_kv_heads,
                                  int head_dim, int block_size, const Fp8KvCache cache) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t t = blockIdx.x;
  const int64_t s = slot_mapping[t];
  if (s < 0) return;  // padding token: nothing written
  const int64_t block = s / block_size, slot = s - block * block_size;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  for (int r = warp; r < 2 * n_kv_heads; r += kFp8Warps) {
    const bool is_v = r >= n_kv_heads;
    const int h = is_v ? r - n_kv_heads : r;
    const float* x =
        (is_v ? v + t * v_stride : k + t * k_stride) + static_cast<int64_t>(h) * head_dim;
    float amax = 0.0f;
    for (int d = lane; d < head_dim; d += 32) amax = fmaxf(amax, fabsf(x[d]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    // IEEE division and product (no fast math), so the host's quantization of the tests
    // reproduces every code.
    const float inv = amax > 0.0f ? kE4m3Max / amax : 0.0f;
    const int64_t row = (block * n_kv_heads + h) * block_size + slot;
    __nv_fp8_e4m3* codes = (is_v ? cache.v : cache.k) + row * head_dim;
    for (int d = lane; d < head_dim; d += 32) {
      codes[d].__x = __nv_cvt_float_to_fp8(x[d] * inv, __NV_SATFINITE, __NV_E4M3);
    }
    if (lane == 0) (is_v ? cache.v_scale : cache.k_scale)[row] = amax / kE4m3Max;
  }
}

Status CheckAppendShape(int64_t n_tokens, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                        int64_t k_stride, int64_t v_stride) {
  if (n_tokens < 0 || n_tokens > INT32_MAX || n_kv_heads <= 0 || head_dim <= 0 ||
      block_size <= 0 || block_size > INT32_MAX || n_kv_heads * head_dim > INT32_MAX ||
      k_stride < n_kv_heads * head_dim || v_stride < n_kv_heads * head_dim) {
    return InvalidArgument("KvAppend: bad shape n_tokens=" + std::to_string(n_tokens) +
                           " n_kv_heads=" + std::to_string(n_kv_heads) +
                           " head_dim=" + std::to_string(head_dim) +
                           " block_size=" + std::to_string(block_size) +
                           " k_stride=" + std::to_string(k_stride) +
                           " v_stride=" + std::to_string(v_stride));
  }
  return Status::Ok();
}

}  // namespace

Status KvAppend(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int64_t* slot_mapping, int64_t n_tokens, int64_t n_kv_heads,
                int64_t head_dim, int64_t block_size, __nv_bfloat16* k_cache,
                __nv_bfloat16* v_cache, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(
      CheckAppendShape(n_tokens, n_kv_heads, head_dim, block_size, k_stride, v_stride));
  if (n_tokens == 0) return Status::Ok();
  const int64_t row = n_kv_heads * head_dim;
  const int threads = row >= 256 ? 256 : static_cast<int>((row + 31) / 32 * 32);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
      KvAppendKernel, dim3(static_cast<unsigned>(n_tokens)), dim3(threads), 0, stream, k, k_stride,
      v, v_stride, slot_mapping, static_cast<int>(n_kv_heads), static_cast<int>(head_dim),
      static_cast<int>(block_size), k_cache, v_cache));
  return Status::Ok();
}

Status KvAppend(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int64_t* slot_mapping, int64_t n_tokens, int64_t n_kv_heads,
                int64_t head_dim, int64_t block_size, const Fp8KvCache& cache,
                cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(
      CheckAppendShape(n_tokens, n_kv_heads, head_dim, block_size, k_stride, v_stride));
  if (cache.k == nullptr || cache.v == nullptr || cache.k_scale == nullptr ||
      cache.v_scale == nullptr) {
    return InvalidArgument("KvAppend: null FP8 cache pointer");
  }
  if (n_tokens == 0) return Status::Ok();
  const int rows = static_cast<int>(std::min<int64_t>(2 * n_kv_heads, kFp8Warps));
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
      KvAppendFp8Kernel, dim3(static_cast<unsigned>(n_tokens)), dim3(32 * rows), 0, stream, k,
      k_stride, v, v_stride, slot_mapping, static_cast<int>(n_kv_heads), static_cast<int>(head_dim),
      static_cast<int>(block_size), cache));
  return Status::Ok();
}

}  // namespace rag
