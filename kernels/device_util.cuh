// Device helpers shared by the kernels (included by .cu files only).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace rag {

// bf16 -> fp32 is exact: the bf16 bits are the high half of the fp32 bits.
__device__ __forceinline__ float Bf16BitsToFloat(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}
__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

// Stores fp32 as the output type (bf16: round to nearest even).
__device__ __forceinline__ void StoreAs(float* p, float v) { *p = v; }
__device__ __forceinline__ void StoreAs(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace rag
