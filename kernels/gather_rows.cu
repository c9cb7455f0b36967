// Row gather: picks the rows whose logits a forward pass returns (the last token of each
// sequence during prefill), so the vocabulary projection runs on those rows only.
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

// One block per output row; 16-byte copies when the row allows them.
__global__ void GatherRowsKernel(const __nv_bfloat16* __restrict__ in, int64_t dim,
                                 const int32_t* __restrict__ rows, __nv_bfloat16* __restrict__ out) {
  const __nv_bfloat16* src = in + static_cast<int64_t>(rows[blockIdx.x]) * dim;
  __nv_bfloat16* dst = out + static_cast<int64_t>(blockIdx.x) * dim;
  if (dim % 8 == 0) {
    const int4* s = reinterpret_cast<const int4*>(src);
    int4* d = reinterpret_cast<int4*>(dst);
    for (int64_t i = threadIdx.x; i < dim / 8; i += blockDim.x) d[i] = s[i];
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
  }
}

}  // namespace

Status GatherRows(const __nv_bfloat16* in, int64_t dim, const int32_t* rows, int64_t n_rows,
                  __nv_bfloat16* out, cudaStream_t stream) {
  if (dim <= 0 || n_rows < 0 || n_rows > 2147483647) {
    return InvalidArgument("GatherRows: bad shape dim=" + std::to_string(dim) +
                           " n_rows=" + std::to_string(n_rows));
  }
  if (n_rows == 0) return Status::Ok();
  GatherRowsKernel<<<static_cast<unsigned>(n_rows), 128, 0, stream>>>(in, dim, rows, out);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace rag
