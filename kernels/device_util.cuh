// Device helpers shared by the kernels (included by .cu files only).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

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

// Whether this CTA is the last of `expected` CTAs to arrive at `counter` (the pattern of CUDA's
// threadFenceReduction sample), the same answer in every thread: each thread's global stores are
// made visible device-wide before thread 0 counts the CTA in; the last one resets the counter for
// the next call (zero between calls) and, after a fence, may read what the others stored
// (through L2: __ldcg). Call it once a kernel, from every thread of the CTA.
__device__ __forceinline__ bool LastCtaToArrive(int32_t* counter, int expected) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1) == expected - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// RoPE of one pair of a head: (x1, x2) = dims (i, i + head_dim / 2) at position pos, with angle
// inv_freq_i * pos rounded once in fp32 (as the CPU backend) and precise cosf/sinf (angles reach
// thousands of radians). Every kernel that rotates goes through here (or reads RopeCosSinTable's
// values, made by RopeCosSinAt) so that they agree bit for bit (the tests hold the fused kernels
// to RopeInplace exactly).
__device__ __forceinline__ float2 RopeCosSinAt(float inv_freq_i, float pos) {
  const float angle = __fmul_rn(inv_freq_i, pos);
  return make_float2(cosf(angle), sinf(angle));
}
// The multiply-adds are spelled out: left to the compiler, x1 * c - x2 * s contracts to either
// of two fmas depending on the surrounding code, and kernels would differ in the last bit.
__device__ __forceinline__ void RopeRotateCs(float x1, float x2, float2 cs, float& y1, float& y2) {
  y1 = __fmaf_rn(x1, cs.x, -__fmul_rn(x2, cs.y));
  y2 = __fmaf_rn(x2, cs.x, __fmul_rn(x1, cs.y));
}
__device__ __forceinline__ void RopeRotate(float x1, float x2, float inv_freq_i, float pos,
                                           float& y1, float& y2) {
  RopeRotateCs(x1, x2, RopeCosSinAt(inv_freq_i, pos), y1, y2);
}

// Two e4m3 codes (the lower address in the low byte of `pair`) as floats; exact (through fp16,
// one instruction on sm_89+).
__device__ __forceinline__ float2 Fp8x2ToFloat2(uint32_t pair) {
  const __half2_raw raw =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair & 0xffffu), __NV_E4M3);
  return __half22float2(*reinterpret_cast<const __half2*>(&raw));
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// 8 bf16 (16 bytes, lowest address first) to fp32.
__device__ __forceinline__ void UnpackBf16x8(const uint4 u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// 8 fp32 to bf16 (round to nearest even), lowest address first: UnpackBf16x8's inverse.
__device__ __forceinline__ uint4 PackBf16x8(const float (&f)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_bfloat162 b = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    w[i] = *reinterpret_cast<const uint32_t*>(&b);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Sum over a block of kThreads threads (a multiple of 32, at most 1024) of each thread's v,
// returned to every thread. A second call may follow at once: its writes to the shared slots
// come after barriers that every read of this call's values precedes.
template <int kThreads>
__device__ __forceinline__ float BlockSum(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024);
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float total;
  v = WarpSum(v);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.0f;
    t = WarpSum(t);
    if (threadIdx.x == 0) total = t;
  }
  __syncthreads();
  return total;
}

}  // namespace rag
