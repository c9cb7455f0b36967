// Embedding gather: one block per token copies its bf16 row of the table, converted.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag {
namespace {

template <typename OutT>
__global__ void EmbeddingGatherKernel(const __nv_bfloat16* __restrict__ table, int64_t vocab,
                                      int64_t dim, const int32_t* __restrict__ ids,
                                      OutT* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int64_t id = ids[t];
  OutT* dst = out + t * dim;
  if (id < 0 || id >= vocab) {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) StoreAs(dst + j, 0.0f);
    return;
  }
  const __nv_bfloat16* src = table + id * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) StoreAs(dst + j, ToFloat(src[j]));
}

template <typename OutT>
Status Launch(const __nv_bfloat16* table, int64_t vocab, int64_t dim, const int32_t* ids,
              int64_t n, OutT* out, cudaStream_t stream) {
  if (vocab <= 0 || dim <= 0 || n < 0 || n > INT32_MAX) {
    return InvalidArgument("EmbeddingGather: bad shape vocab=" + std::to_string(vocab) +
                           " dim=" + std::to_string(dim) + " n=" + std::to_string(n));
  }
  if (n == 0) return Status::Ok();
  const int threads = dim >= 1024 ? 256 : 128;
  EmbeddingGatherKernel<<<static_cast<unsigned>(n), threads, 0, stream>>>(table, vocab, dim,
                                                                           ids, out);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

Status EmbeddingGather(const __nv_bfloat16* table, int64_t vocab, int64_t dim,
                       const int32_t* ids, int64_t n, float* out, cudaStream_t stream) {
  return Launch(table, vocab, dim, ids, n, out, stream);
}

Status EmbeddingGather(const __nv_bfloat16* table, int64_t vocab, int64_t dim,
                       const int32_t* ids, int64_t n, __nv_bfloat16* out, cudaStream_t stream) {
  return Launch(table, vocab, dim, ids, n, out, stream);
}

}  // namespace rag
