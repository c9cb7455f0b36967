// Decode GEMV, y (m, n) = x (m, k) * w^T with w (n, k) bf16, m <= 8: memory-bound on w.
//
// Layout of the work: a block of kWarps warps owns kRowsPerBlock consecutive rows of w; each
// warp owns kRowsPerWarp of them and walks their whole length, each lane loading 16 bytes
// (8 bf16) of every row per step, kUnroll steps issued before the first use, so
// kRowsPerWarp * kUnroll independent 16-byte loads are in flight per lane. x (converted to fp32)
// sits in shared memory, read as float4 by the lanes in order (conflict-free). Each lane keeps
// m * kRowsPerWarp fp32 partial sums; a warp-shuffle reduction ends each row.
//
// x must fit in shared memory (m * k_chunk * 4 bytes <= the device's opt-in limit, 227 KB on
// Hopper, 48 KB where no opt-in exists): longer k is cut into
// chunks of whole 256-element steps, one launch each, later launches adding into y.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = 2;
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
constexpr int kUnroll = 4;
constexpr int kVecElems = 8;                      // bf16 per 16-byte load
constexpr int kStepElems = 32 * kVecElems;        // elements of a row one warp step covers
constexpr int64_t kSmemBudget = 48 * 1024;        // no opt-in needed on any card
constexpr int kMaxDevices = 64;

// Weights are read once per call: stream them past L1 (evict-first).
__device__ __forceinline__ uint4 LoadWeights16(const __nv_bfloat16* p) {
  return __ldcs(reinterpret_cast<const uint4*>(p));
}

// acc[r] += dot(x[0..8), the 8 bf16 packed in w).
__device__ __forceinline__ float Dot8(const float4& xa, const float4& xb, const uint4& w) {
  const float w0 = __uint_as_float(w.x << 16), w1 = __uint_as_float(w.x & 0xffff0000u);
  const float w2 = __uint_as_float(w.y << 16), w3 = __uint_as_float(w.y & 0xffff0000u);
  const float w4 = __uint_as_float(w.z << 16), w5 = __uint_as_float(w.z & 0xffff0000u);
  const float w6 = __uint_as_float(w.w << 16), w7 = __uint_as_float(w.w & 0xffff0000u);
  float s = xa.x * w0;
  s = fmaf(xa.y, w1, s);
  s = fmaf(xa.z, w2, s);
  s = fmaf(xa.w, w3, s);
  s = fmaf(xb.x, w4, s);
  s = fmaf(xb.y, w5, s);
  s = fmaf(xb.z, w6, s);
  s = fmaf(xb.w, w7, s);
  return s;
}

// Stages columns [k0, k0 + k) of the M inputs in shared memory as fp32 (xs is (M, k)).
template <int M, typename XT>
__device__ __forceinline__ void StageX(const XT* __restrict__ x, int64_t ldx, int k0, int k,
                                       float* xs) {
  for (int i = threadIdx.x; i < M * k; i += kThreads) {
    const int mi = i / k, j = k0 + (i - mi * k);
    xs[i] = ToFloat(x[mi * ldx + j]);
  }
  __syncthreads();
}

// x: (M, ldx) row-major; w: (n, ldw) row-major; y: (M, n). Block (bx, by) takes rows
// [bx * kRowsPerBlock, +kRowsPerBlock) over columns [k0, k0 + k) with
// k0 = k_base + by * k_step and k = min(k_step, k_end - k0) (by > 0: split K). y is stored,
// or (accumulate) added to, or (atomic: the splits of one launch) added to atomically.
// kVec: k_step % 8 == 0 and every row of w 16-byte aligned.
template <int M, bool kVec, typename XT>
__global__ void __launch_bounds__(kThreads)
    GemvKernel(const XT* __restrict__ x, int64_t ldx, const __nv_bfloat16* __restrict__ w,
               int64_t ldw, int n, int k_base, int k_step, int k_end, float* __restrict__ y,
               bool accumulate, bool atomic) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int k0 = k_base + static_cast<int>(blockIdx.y) * k_step;
  const int k = min(k_step, k_end - k0);
  w += k0;
  extern __shared__ float4 smem[];
  float* xs = reinterpret_cast<float*>(smem);  // (M, k), rows 16-byte aligned when kVec
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kRowsPerBlock + warp * kRowsPerWarp;
  const __nv_bfloat16* wr[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    // Rows past n (and warps past n altogether): harmless reloads of the last row.
    wr[r] = w + static_cast<int64_t>(min(row0 + r, n - 1)) * ldw;
  }
  // (Issuing the first batch of weight loads before staging x measured 2-3 us slower a GEMV on
  // an H100, 8B shapes: the loads stay in registers across the staging.)
  uint4 wv[kUnroll][kRowsPerWarp];
  auto load_batch = [&](int base) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = base + u * kStepElems;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        wv[u][r] = kk < k ? LoadWeights16(wr[r] + kk) : make_uint4(0, 0, 0, 0);
      }
    }
  };
  StageX<M>(x, ldx, k0, k, xs);
  if (row0 >= n) return;

  float acc[M][kRowsPerWarp];
#pragma unroll
  for (int mi = 0; mi < M; ++mi)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) acc[mi][r] = 0.0f;

  if constexpr (kVec) {
    for (int base = lane * kVecElems; base < k; base += kStepElems * kUnroll) {
      load_batch(base);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int kk = base + u * kStepElems;
        if (kk < k) {
#pragma unroll
          for (int mi = 0; mi < M; ++mi) {
            const float4* xp = reinterpret_cast<const float4*>(xs + mi * k + kk);
            const float4 xa = xp[0], xb = xp[1];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) acc[mi][r] += Dot8(xa, xb, wv[u][r]);
          }
        }
      }
    }
  } else {
    const uint16_t* wb[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) wb[r] = reinterpret_cast<const uint16_t*>(wr[r]);
    for (int j = lane; j < k; j += 32) {
      float wf[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) wf[r] = Bf16BitsToFloat(wb[r][j]);
#pragma unroll
      for (int mi = 0; mi < M; ++mi)
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) acc[mi][r] = fmaf(xs[mi * k + j], wf[r], acc[mi][r]);
    }
  }

#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float s = WarpSum(acc[mi][r]);
      const int row = row0 + r;
      if (lane == 0 && row < n) {
        float* out = y + static_cast<int64_t>(mi) * n + row;
        if (atomic) {
          atomicAdd(out, s);
        } else {
          *out = accumulate ? *out + s : s;
        }
      }
    }
  }
}

// The shared memory a block of ours may use on the current device: the opt-in maximum
// (227 KB on Hopper) when the device allows more than the default 48 KB. A whole row of x in
// one launch saves the second pass over y that a split K costs (the 8B down projection,
// K = 14336, needs 56 KB at M = 1). Queried once per device.
int64_t SmemBudget() {
  static std::atomic<int64_t> cached[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return kSmemBudget;
  int64_t budget = cached[device].load(std::memory_order_relaxed);
  if (budget == 0) {
    int optin = 0;
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
      optin = 0;
    }
    budget = std::max<int64_t>(kSmemBudget, optin);
    cached[device].store(budget, std::memory_order_relaxed);
  }
  return budget;
}

// Raises the kernel's dynamic shared-memory limit to `budget` once per device (the attribute is
// per function and device; setting it on every launch would cost microseconds per GEMV).
template <int M, bool kVec, typename XT>
Status AllowSmem(int64_t budget) {
  static std::atomic<uint32_t> done_devices{0};
  int device = 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  const uint32_t bit = device < 32 ? (1u << device) : 0;
  if (budget <= kSmemBudget || (done_devices.load() & bit)) return Status::Ok();
  RAG_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(GemvKernel<M, kVec, XT>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(budget)));
  done_devices.fetch_or(bit);
  return Status::Ok();
}

// One GEMV: x (m, k), y (m, n) stored or accumulated.
template <int M, typename XT>
Status LaunchM(const XT* x, const __nv_bfloat16* w, int64_t n, int64_t k, float* y,
               bool accumulate, cudaStream_t stream) {
  const bool vec = k % kVecElems == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  const int64_t budget = SmemBudget();
  RAG_RETURN_IF_ERROR((vec ? AllowSmem<M, true, XT>(budget) : AllowSmem<M, false, XT>(budget)));
  // Chunks of whole warp steps, balanced, each fitting the shared-memory budget.
  const int64_t max_chunk =
      std::max<int64_t>(kStepElems, budget / (M * 4) / kStepElems * kStepElems);
  const int64_t chunks = (k + max_chunk - 1) / max_chunk;
  const int64_t chunk = (k + chunks - 1) / chunks;
  const int64_t step = (chunk + kStepElems - 1) / kStepElems * kStepElems;
  const unsigned blocks = static_cast<unsigned>((n + kRowsPerBlock - 1) / kRowsPerBlock);
  auto launch = [&](dim3 grid, int64_t k_base, int64_t k_step, bool add, bool atomic) -> cudaError_t {
    const size_t smem = static_cast<size_t>(M) * std::min(k_step, k - k_base) * sizeof(float);
    if (vec) {
      return LaunchDependent(GemvKernel<M, true, XT>, grid, dim3(kThreads), smem, stream, x, k, w,
                             k, static_cast<int>(n), static_cast<int>(k_base),
                             static_cast<int>(k_step), static_cast<int>(k), y, add, atomic);
    }
    return LaunchDependent(GemvKernel<M, false, XT>, grid, dim3(kThreads), smem, stream, x, k, w,
                           k, static_cast<int>(n), static_cast<int>(k_base),
                           static_cast<int>(k_step), static_cast<int>(k), y, add, atomic);
  };
  if (accumulate) {
    // y already holds a sum to add to: split K over one launch (atomics into y), so that the
    // small projections (o: 256 blocks of rows on 132 SMs) fill the GPU and each block stages
    // a shorter x. About four blocks an SM, whole warp steps per split.
    const int64_t want = (4 * DeviceSmCount() + blocks - 1) / blocks;
    const int64_t by_k = std::max<int64_t>(1, k / (4 * kStepElems));  // >= 4 warp steps a split
    int64_t splits = std::max(chunks, std::min(want, by_k));
    const int64_t per = (k + splits - 1) / splits;
    const int64_t k_step = (per + kStepElems - 1) / kStepElems * kStepElems;
    splits = (k + k_step - 1) / k_step;
    RAG_CUDA_RETURN_IF_ERROR(launch(dim3(blocks, static_cast<unsigned>(splits)), 0, k_step, true, splits > 1));
    return Status::Ok();
  }
  for (int64_t k0 = 0; k0 < k; k0 += step) {  // chunks only where x exceeds shared memory
    RAG_CUDA_RETURN_IF_ERROR(launch(dim3(blocks), k0, step, k0 > 0, false));
  }
  return Status::Ok();
}

Status CheckShape(const char* what, int64_t m, int64_t n, int64_t k) {
  if (m < 1 || m > kGemvMaxM || n <= 0 || k <= 0 || n > INT32_MAX || k > INT32_MAX / kGemvMaxM) {
    return InvalidArgument(std::string(what) + ": bad shape m=" + std::to_string(m) + " n=" +
                           std::to_string(n) + " k=" + std::to_string(k) + " (m must be 1.." +
                           std::to_string(kGemvMaxM) + ")");
  }
  return Status::Ok();
}

template <typename XT>
Status Dispatch(const char* what, const XT* x, const __nv_bfloat16* w, int64_t m, int64_t n,
                int64_t k, float* y, bool accumulate, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckShape(what, m, n, k));
  switch (m) {
    case 1: return LaunchM<1>(x, w, n, k, y, accumulate, stream);
    case 2: return LaunchM<2>(x, w, n, k, y, accumulate, stream);
    case 3: return LaunchM<3>(x, w, n, k, y, accumulate, stream);
    case 4: return LaunchM<4>(x, w, n, k, y, accumulate, stream);
    case 5: return LaunchM<5>(x, w, n, k, y, accumulate, stream);
    case 6: return LaunchM<6>(x, w, n, k, y, accumulate, stream);
    case 7: return LaunchM<7>(x, w, n, k, y, accumulate, stream);
    default: return LaunchM<8>(x, w, n, k, y, accumulate, stream);
  }
}

}  // namespace

Status Gemv(const float* x, const __nv_bfloat16* w, int64_t m, int64_t n, int64_t k, float* y,
            cudaStream_t stream) {
  return Dispatch("Gemv", x, w, m, n, k, y, false, stream);
}

Status Gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t m, int64_t n, int64_t k,
            float* y, cudaStream_t stream) {
  return Dispatch("Gemv", x, w, m, n, k, y, false, stream);
}

Status GemvAccumulate(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t m, int64_t n,
                      int64_t k, float* y, cudaStream_t stream) {
  return Dispatch("GemvAccumulate", x, w, m, n, k, y, true, stream);
}

}  // namespace rag
