// SwiGLU over the output of the fused gate|up projection; elementwise, grid-stride.
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

template <typename InT, typename OutT>
__global__ void SwiGluKernel(const InT* __restrict__ gate_up, int64_t n, int64_t inter,
                             OutT* __restrict__ out) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t total = n * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter, j = i - r * inter;
    const float g = ToFloat(gate_up[r * 2 * inter + j]);
    const float u = ToFloat(gate_up[r * 2 * inter + inter + j]);
    StoreAs(out + i, g / (1.0f + expf(-g)) * u);  // the CPU backend's order of operations
  }
}

// bf16 in and out, inter % 8 == 0: 16-byte loads and stores, 8 outputs a thread (the prefill's
// SwiGLU moves ~150 MB per layer at a 2048-token prompt of the 8B shape: it is bandwidth-bound).
__global__ void SwiGluBf16x8Kernel(const uint4* __restrict__ gate_up, int64_t n, int64_t inter8,
                                   uint4* __restrict__ out) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int64_t total = n * inter8;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter8, j = i - r * inter8;
    const uint4 g4 = gate_up[r * 2 * inter8 + j], u4 = gate_up[r * 2 * inter8 + inter8 + j];
    const __nv_bfloat16* g = reinterpret_cast<const __nv_bfloat16*>(&g4);
    const __nv_bfloat16* u = reinterpret_cast<const __nv_bfloat16*>(&u4);
    uint4 o4;
    __nv_bfloat16* o = reinterpret_cast<__nv_bfloat16*>(&o4);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float gf = __bfloat162float(g[e]);
      o[e] = __float2bfloat16_rn(gf / (1.0f + expf(-gf)) * __bfloat162float(u[e]));
    }
    out[i] = o4;
  }
}

template <typename InT, typename OutT>
Status Launch(const InT* gate_up, int64_t n, int64_t inter, OutT* out, cudaStream_t stream) {
  if (n < 0 || inter <= 0) {
    return InvalidArgument("SwiGlu: bad shape n=" + std::to_string(n) +
                           " inter=" + std::to_string(inter));
  }
  if (n == 0) return Status::Ok();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n * inter + threads - 1) / threads, 65536);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(SwiGluKernel<InT, OutT>, dim3(static_cast<unsigned>(blocks)),
                                           dim3(threads), 0, stream, gate_up, n, inter, out));
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

Status SwiGlu(const __nv_bfloat16* gate_up, int64_t n, int64_t inter, __nv_bfloat16* out,
              cudaStream_t stream) {
  const bool aligned = reinterpret_cast<uintptr_t>(gate_up) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (n <= 0 || inter % 8 != 0 || !aligned) return Launch(gate_up, n, inter, out, stream);
  const int threads = 256;
  const int64_t inter8 = inter / 8;
  const int64_t blocks = std::min<int64_t>((n * inter8 + threads - 1) / threads, 65536);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
      SwiGluBf16x8Kernel, dim3(static_cast<unsigned>(blocks)), dim3(threads), 0, stream,
      reinterpret_cast<const uint4*>(gate_up), n, inter8, reinterpret_cast<uint4*>(out)));
  return Status::Ok();
}

}  // namespace rag
