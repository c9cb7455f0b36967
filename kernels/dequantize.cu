// DequantizeFp8Rows: an FP8 (e4m3, one scale a row) matrix to bf16, 16 codes a thread (one
// 16-byte load, two 16-byte stores). Memory-bound: reads 1 byte and writes 2 an element.
#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"

namespace rag {
namespace {

__global__ void DequantizeFp8Kernel(const uint4* __restrict__ codes, const float* __restrict__ scales,
                                    int64_t rows, int64_t cols, uint4* __restrict__ out) {
  const int64_t groups = rows * cols / 16;  // cols % 16 == 0: a group never spans two rows
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float s = scales[g * 16 / cols];
    const uint4 c = codes[g];
    const uint32_t v[4] = {c.x, c.y, c.z, c.w};
    uint32_t packed[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float2 f = Fp8x2ToFloat2(v[i] >> (16 * h));
        const __nv_bfloat162 b = __floats2bfloat162_rn(f.x * s, f.y * s);
        packed[2 * i + h] = *reinterpret_cast<const uint32_t*>(&b);
      }
    }
    out[2 * g] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    out[2 * g + 1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
  }
}

}  // namespace

Status DequantizeFp8Rows(const __nv_fp8_e4m3* codes, const float* scales, int64_t rows,
                         int64_t cols, __nv_bfloat16* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || cols % 16 != 0 || codes == nullptr || scales == nullptr ||
      out == nullptr || reinterpret_cast<uintptr_t>(codes) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(out) % 16 != 0) {
    return InvalidArgument("DequantizeFp8Rows: bad shape " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " (cols % 16 == 0) or pointer");
  }
  const int64_t groups = rows * cols / 16;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((groups + threads - 1) / threads, 8192);
  DequantizeFp8Kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      reinterpret_cast<const uint4*>(codes), scales, rows, cols, reinterpret_cast<uint4*>(out));
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace rag
