// KV cache append: one block per token, threads over (kv head, dim); each element is rounded
// to bf16 (nearest even) and stored at its slot of the paged cache (layout in kernels.h).
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

}  // namespace

Status KvAppend(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int64_t* slot_mapping, int64_t n_tokens, int64_t n_kv_heads,
                int64_t head_dim, int64_t block_size, __nv_bfloat16* k_cache,
                __nv_bfloat16* v_cache, cudaStream_t stream) {
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
  if (n_tokens == 0) return Status::Ok();
  const int64_t row = n_kv_heads * head_dim;
  const int threads = row >= 256 ? 256 : static_cast<int>((row + 31) / 32 * 32);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
      KvAppendKernel, dim3(static_cast<unsigned>(n_tokens)), dim3(threads), 0, stream, k, k_stride,
      v, v_stride, slot_mapping, static_cast<int>(n_kv_heads), static_cast<int>(head_dim),
      static_cast<int>(block_size), k_cache, v_cache));
  return Status::Ok();
}

}  // namespace rag
