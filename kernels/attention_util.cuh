// Device helpers shared by the attention kernels (decode_attention.cu, prefill_attention.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/device_util.cuh"

namespace rag {

// cp.async (sm_80+): 16 bytes global -> shared, zero-filled when !valid; .cg caches in L2 only
// (K/V tiles are shared between CTAs through L2, not L1). Below sm_80 a plain copy keeps the
// kernels correct there.
__device__ __forceinline__ void CopyAsync16(void* smem, const void* gmem, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem),
               "r"(valid ? 16 : 0)
               : "memory");
#else
  *static_cast<uint4*>(smem) = valid ? *static_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
#endif
}
__device__ __forceinline__ void CopyAsyncCommit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void CopyAsyncWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

// Two floats as bf16 (nearest even), `lo` in the low half: the element with the lower index (the
// packing of mma.sync's bf16 fragments).
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// A K/V cache element as fp32 (bf16: exact; e4m3: exact, before its row's scale).
__device__ __forceinline__ float CacheToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float CacheToFloat(__nv_fp8_e4m3 v) { return static_cast<float>(v); }

// One position of the fp32 online softmax of the simple (fallback) kernels, for one warp: lane l
// holds kDpl dims of the scaled query (qr) and of the accumulator; k_row and v_row point at the
// lane's kDpl dims of the position's key and value, whose elements stand for k_scale * element
// and v_scale * element (the FP8 cache's row scales; 1 for bf16, which changes no bit). Updates
// the running max m and sum l.
template <int kDpl, typename C>
__device__ __forceinline__ void OnlineSoftmaxStep(const float (&qr)[kDpl], const C* k_row,
                                                  const C* v_row, float k_scale, float v_scale,
                                                  float& m, float& l, float (&acc)[kDpl]) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kDpl; ++i) s = fmaf(qr[i], CacheToFloat(k_row[i]), s);
  s = WarpSum(s) * k_scale;
  const float m_new = fmaxf(m, s);
  const float corr = expf(m - m_new);  // first position: exp(-inf) = 0
  const float w = expf(s - m_new);
  l = l * corr + w;
  const float wv = w * v_scale;
#pragma unroll
  for (int i = 0; i < kDpl; ++i) acc[i] = fmaf(wv, CacheToFloat(v_row[i]), acc[i] * corr);
  m = m_new;
}
template <int kDpl>
__device__ __forceinline__ void OnlineSoftmaxStep(const float (&qr)[kDpl],
                                                  const __nv_bfloat16* k_row,
                                                  const __nv_bfloat16* v_row, float& m, float& l,
                                                  float (&acc)[kDpl]) {
  OnlineSoftmaxStep<kDpl>(qr, k_row, v_row, 1.0f, 1.0f, m, l, acc);
}

}  // namespace rag
