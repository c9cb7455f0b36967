// DequantizeFp8Rows: an FP8 (e4m3, one scale a row) matrix to bf16, 16 codes a thread (one
// 16-byte load, two 16-byte stores). Memory-bound: reads 1 byte and writes 2 an element.
// QuantizeRowsFp8: the activations of an FP8 GEMM, one scale a row (amax / 448, e4m3's largest
// finite value): a block a row, the row read twice (the second time from L2).
// ScaleFp8Product: the epilogue of an FP8 GEMM run with unit scales, y = sx[i] sw[j] raw[i][j],
// 8 elements a thread.
#include <algorithm>
#include <string>
#include <type_traits>

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

constexpr int kQuantizeThreads = 256;
constexpr float kE4m3Max = 448.0f;

__global__ void __launch_bounds__(kQuantizeThreads)
    QuantizeRowsFp8Kernel(const uint4* __restrict__ x, int64_t k8, uint2* __restrict__ q,
                          float* __restrict__ scale) {
  const int64_t row = blockIdx.x;
  const uint4* xr = x + row * k8;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < k8; i += kQuantizeThreads) {
    float f[8];
    UnpackBf16x8(xr[i], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(f[j]));
  }
  __shared__ float warp_max[kQuantizeThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  amax = warp_max[0];
#pragma unroll
  for (int w = 1; w < kQuantizeThreads / 32; ++w) amax = fmaxf(amax, warp_max[w]);
  // An all-zero row keeps scale 1 (its codes are zeros); a non-finite one stays non-finite.
  const float s = amax > 0.0f ? amax / kE4m3Max : 1.0f;
  const float inv = 1.0f / s;
  if (threadIdx.x == 0) scale[row] = s;
  uint2* qr = q + row * k8;
  for (int64_t i = threadIdx.x; i < k8; i += kQuantizeThreads) {
    float f[8];
    UnpackBf16x8(xr[i], f);
    uint32_t packed[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const __nv_fp8x4_e4m3 v(make_float4(f[4 * h] * inv, f[4 * h + 1] * inv, f[4 * h + 2] * inv,
                                          f[4 * h + 3] * inv));
      packed[h] = v.__x;
    }
    qr[i] = make_uint2(packed[0], packed[1]);
  }
}

// raw may be y (in place): no __restrict__ on either.
template <typename Raw, typename Out, bool kAccumulate>
__global__ void ScaleFp8ProductKernel(const Raw* raw, int64_t m, int64_t n,
                                      const float* __restrict__ sx, const float* __restrict__ sw,
                                      Out* y) {
  const int64_t groups = m * n / 8;  // n % 8 == 0: a group never spans two rows
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = g * 8, row = at / n, col = at % n;
    float v[8];
    if constexpr (std::is_same_v<Raw, float>) {
      const float4 a = reinterpret_cast<const float4*>(raw + at)[0];
      const float4 b = reinterpret_cast<const float4*>(raw + at)[1];
      v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z,
      v[7] = b.w;
    } else {
      UnpackBf16x8(*reinterpret_cast<const uint4*>(raw + at), v);
    }
    const float4 w0 = reinterpret_cast<const float4*>(sw + col)[0];
    const float4 w1 = reinterpret_cast<const float4*>(sw + col)[1];
    const float s = sx[row];
    const float w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] *= s * w[j];
    if constexpr (std::is_same_v<Out, float>) {
      float4* out = reinterpret_cast<float4*>(y + at);
      if constexpr (kAccumulate) {
        const float4 a = out[0], b = out[1];
        v[0] += a.x, v[1] += a.y, v[2] += a.z, v[3] += a.w, v[4] += b.x, v[5] += b.y, v[6] += b.z,
            v[7] += b.w;
      }
      out[0] = make_float4(v[0], v[1], v[2], v[3]);
      out[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      *reinterpret_cast<uint4*>(y + at) = PackBf16x8(v);
    }
  }
}

template <typename Raw, typename Out, bool kAccumulate>
Status LaunchScaleFp8Product(const Raw* raw, int64_t m, int64_t n, const float* sx, const float* sw,
                             Out* y, cudaStream_t stream) {
  if (m <= 0 || n <= 0 || n % 8 != 0 || raw == nullptr || sx == nullptr || sw == nullptr ||
      y == nullptr || reinterpret_cast<uintptr_t>(raw) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(y) % 16 != 0 || reinterpret_cast<uintptr_t>(sw) % 16 != 0) {
    return InvalidArgument("ScaleFp8Product: bad shape " + std::to_string(m) + "x" +
                           std::to_string(n) + " (n % 8 == 0) or pointer");
  }
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((m * n / 8 + threads - 1) / threads, 8192);
  ScaleFp8ProductKernel<Raw, Out, kAccumulate>
      <<<static_cast<unsigned>(blocks), threads, 0, stream>>>(raw, m, n, sx, sw, y);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

Status ScaleFp8Product(const float* raw, int64_t m, int64_t n, const float* sx, const float* sw,
                       float* y, bool accumulate, cudaStream_t stream) {
  if (accumulate && raw == y) return InvalidArgument("ScaleFp8Product: accumulating in place");
  return accumulate ? LaunchScaleFp8Product<float, float, true>(raw, m, n, sx, sw, y, stream)
                    : LaunchScaleFp8Product<float, float, false>(raw, m, n, sx, sw, y, stream);
}

Status ScaleFp8Product(const __nv_bfloat16* raw, int64_t m, int64_t n, const float* sx,
                       const float* sw, __nv_bfloat16* y, cudaStream_t stream) {
  return LaunchScaleFp8Product<__nv_bfloat16, __nv_bfloat16, false>(raw, m, n, sx, sw, y, stream);
}

Status QuantizeRowsFp8(const __nv_bfloat16* x, int64_t rows, int64_t cols, __nv_fp8_e4m3* q,
                       float* scale, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || cols % 8 != 0 || rows > INT32_MAX || x == nullptr || q == nullptr ||
      scale == nullptr || reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(q) % 8 != 0) {
    return InvalidArgument("QuantizeRowsFp8: bad shape " + std::to_string(rows) + "x" + std::to_string(cols) +
                           " (cols % 8 == 0) or pointer");
  }
  QuantizeRowsFp8Kernel<<<static_cast<unsigned>(rows), kQuantizeThreads, 0, stream>>>(
      reinterpret_cast<const uint4*>(x), cols / 8, reinterpret_cast<uint2*>(q), scale);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

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
