// Row gather: picks the rows whose logits a forward pass returns (the last token of each
// sequence during prefill), so the vocabulary projection (and the last layer's o projection
// and MLP) run on those rows only.
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

// One block per output row, rows of row_bytes bytes; 16-byte copies when the rows allow them.
__global__ void GatherRowsKernel(const char* __restrict__ in, int64_t row_bytes,
                                 const int32_t* __restrict__ rows, char* __restrict__ out,
                                 bool vec16) {
  const char* src = in + static_cast<int64_t>(rows[blockIdx.x]) * row_bytes;
  char* dst = out + static_cast<int64_t>(blockIdx.x) * row_bytes;
  if (vec16) {
    const int4* s = reinterpret_cast<const int4*>(src);
    int4* d = reinterpret_cast<int4*>(dst);
    for (int64_t i = threadIdx.x; i < row_bytes / 16; i += blockDim.x) d[i] = s[i];
  } else {
    for (int64_t i = threadIdx.x; i < row_bytes; i += blockDim.x) dst[i] = src[i];
  }
}

Status Gather(const void* in, int64_t dim, size_t elem_bytes, const int32_t* rows, int64_t n_rows,
              void* out, cudaStream_t stream) {
  if (dim <= 0 || n_rows < 0 || n_rows > 2147483647) {
    return InvalidArgument("GatherRows: bad shape dim=" + std::to_string(dim) +
                           " n_rows=" + std::to_string(n_rows));
  }
  if (n_rows == 0) return Status::Ok();
  const int64_t row_bytes = dim * static_cast<int64_t>(elem_bytes);
  const bool vec16 = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(in) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(out) % 16 == 0;
  GatherRowsKernel<<<static_cast<unsigned>(n_rows), 128, 0, stream>>>(
      static_cast<const char*>(in), row_bytes, rows, static_cast<char*>(out), vec16);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

Status GatherRows(const __nv_bfloat16* in, int64_t dim, const int32_t* rows, int64_t n_rows,
                  __nv_bfloat16* out, cudaStream_t stream) {
  return Gather(in, dim, sizeof(__nv_bfloat16), rows, n_rows, out, stream);
}

Status GatherRows(const float* in, int64_t dim, const int32_t* rows, int64_t n_rows, float* out,
                  cudaStream_t stream) {
  return Gather(in, dim, sizeof(float), rows, n_rows, out, stream);
}

}  // namespace rag
