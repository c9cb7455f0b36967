// SwiGLU over the output of the fused gate|up projection; elementwise, grid-stride.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag {
namespace {

template <typename OutT>
__global__ void SwiGluKernel(const float* __restrict__ gate_up, int64_t n, int64_t inter,
                             OutT* __restrict__ out) {
  const int64_t total = n * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter, j = i - r * inter;
    const float g = gate_up[r * 2 * inter + j];
    const float u = gate_up[r * 2 * inter + inter + j];
    StoreAs(out + i, g / (1.0f + expf(-g)) * u);  // the CPU backend's order of operations
  }
}

template <typename OutT>
Status Launch(const float* gate_up, int64_t n, int64_t inter, OutT* out, cudaStream_t stream) {
  if (n < 0 || inter <= 0) {
    return InvalidArgument("SwiGlu: bad shape n=" + std::to_string(n) +
                           " inter=" + std::to_string(inter));
  }
  if (n == 0) return Status::Ok();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n * inter + threads - 1) / threads, 65536);
  SwiGluKernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(gate_up, n, inter, out);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, float* out, cudaStream_t stream) {
  return Launch(gate_up, n, inter, out, stream);
}

Status SwiGlu(const float* gate_up, int64_t n, int64_t inter, __nv_bfloat16* out,
              cudaStream_t stream) {
  return Launch(gate_up, n, inter, out, stream);
}

}  // namespace rag
