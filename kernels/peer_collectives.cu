// Collectives of tensor parallelism over peer memory: the GPUs of one process with peer access
// enabled read each other's buffers directly (NVLink), so a decode step's all-reduce of a few
// tens of KB is one kernel of a few microseconds instead of NCCL's ~20 us (issue 8). The
// synchronisation is a per-block barrier on flags in each rank's signal area:
//  - every block of a collective takes the next epoch of its own counter (each rank launches the
//    same grid for the same call, so block b of every rank is at the same epoch), writes it into
//    slot [b][rank] of every peer's signal area and spins until its own slots [b][peer] have
//    reached it; epochs only grow, so a peer already at the next call (its flag one higher)
//    cannot be missed;
//  - the data a collective reads was written by earlier kernels of the peer's stream, which had
//    completed (and flushed to the peer's memory) before the peer's block could write its flag:
//    so the flags need no release/acquire ordering of their own, and are plain volatile accesses
//    (a system-scope release fence costs microseconds, 160 times a 70B token);
//  - a buffer that peers read may be rewritten once the next collective's barrier has been
//    passed (the peers have then finished the kernel that read it): the caller keeps two partial
//    buffers in turn, and each all-reduce zeroes the other one for the next split-K GEMV.
// Launched with programmatic dependent launch: AwaitPriorGrid before the barrier, and the next
// kernel allowed to launch at once, so that a projection's first weight loads (issued before its
// own AwaitPriorGrid) stream in while this rank waits for its peers.
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

constexpr int kThreads = 256;
constexpr int kEpochs = kTpSignalBlocks * kMaxTpWorld;  // the epoch counters follow the slots

__device__ __forceinline__ void StoreVolatile(uint32_t* p, uint32_t v) {
  asm volatile("st.volatile.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ uint32_t LoadVolatile(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.volatile.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ uint64_t GlobalTimerNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// A peer that never comes (its host thread failed before this step's collectives, its GPU
// faulted) would leave this rank spinning for ever and its host thread waiting with it: after
// kBarrierTimeoutNs the kernel traps instead, so the step fails with a CUDA error.
constexpr uint64_t kBarrierTimeoutNs = 30ull * 1000 * 1000 * 1000;

// Block b of this rank meets block b of every peer.
__device__ void PeerBarrier(const TpPeerSignals& s) {
  __shared__ uint32_t epoch;
  uint32_t* mine = s.signals[s.rank];
  if (threadIdx.x == 0) epoch = ++mine[kEpochs + blockIdx.x];
  __syncthreads();
  if (threadIdx.x < s.world) {
    StoreVolatile(s.signals[threadIdx.x] + blockIdx.x * kMaxTpWorld + s.rank, epoch);
    const uint32_t* arrived = mine + blockIdx.x * kMaxTpWorld + threadIdx.x;
    if (static_cast<int32_t>(LoadVolatile(arrived) - epoch) < 0) {
      const uint64_t start = GlobalTimerNs();
      while (static_cast<int32_t>(LoadVolatile(arrived) - epoch) < 0) {
        if (GlobalTimerNs() - start > kBarrierTimeoutNs) __trap();
      }
    }
  }
  __syncthreads();
}

// x[i] += sum over ranks (in rank order, the same on every rank) of partial_r[i]; then zero.
__global__ void AllReduceAddKernel(TpPeerSignals s, TpPeerBuffers partial, float* x, int64_t n4,
                                   int64_t n, float* zero, int64_t zero_n) {
  AllowDependentLaunch();  // the next kernel's weight loads overlap this barrier (launch.cuh)
  AwaitPriorGrid();
  PeerBarrier(s);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = first; i < n4; i += stride) {
    float4 sum = __ldcg(reinterpret_cast<const float4*>(partial.p[0]) + i);
    for (int r = 1; r < s.world; ++r) {
      const float4 v = __ldcg(reinterpret_cast<const float4*>(partial.p[r]) + i);
      sum.x += v.x;
      sum.y += v.y;
      sum.z += v.z;
      sum.w += v.w;
    }
    float4 acc = reinterpret_cast<float4*>(x)[i];
    acc.x += sum.x;
    acc.y += sum.y;
    acc.z += sum.z;
    acc.w += sum.w;
    reinterpret_cast<float4*>(x)[i] = acc;
  }
  for (int64_t i = 4 * n4 + first; i < n; i += stride) {  // the tail of a count not a multiple of 4
    float sum = __ldcg(partial.p[0] + i);
    for (int r = 1; r < s.world; ++r) sum += __ldcg(partial.p[r] + i);
    x[i] += sum;
  }
  if (zero != nullptr) {
    for (int64_t i = first; i < zero_n; i += stride) zero[i] = 0.0f;
  }
}

// out (rows, out_cols): column j comes from rank j / cols, its column j % cols.
__global__ void GatherColumnsKernel(TpPeerSignals s, TpPeerBuffers local, float* out, int64_t rows,
                                    int64_t cols, int64_t out_cols) {
  AllowDependentLaunch();  // the next kernel's weight loads overlap this barrier (launch.cuh)
  AwaitPriorGrid();
  PeerBarrier(s);
  const int64_t total = rows * out_cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t row = i / out_cols, col = i - row * out_cols;
    const int64_t from = col / cols;
    out[i] = __ldcg(local.p[from] + row * cols + (col - from * cols));
  }
}

template <typename Y>
__global__ void AddInPlaceKernel(float* x, const Y* y, int64_t n) {
  AwaitPriorGrid();
  AllowDependentLaunch();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    x[i] += static_cast<float>(y[i]);
  }
}

unsigned Blocks(int64_t work, int64_t max_blocks) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > max_blocks ? max_blocks : b));
}

Status CheckPeers(const char* what, const TpPeerSignals& s, const TpPeerBuffers& b) {
  if (s.world < 1 || s.world > kMaxTpWorld || s.rank < 0 || s.rank >= s.world) {
    return InvalidArgument(std::string(what) + ": bad rank " + std::to_string(s.rank) + " of " +
                           std::to_string(s.world));
  }
  for (int r = 0; r < s.world; ++r) {
    if (s.signals[r] == nullptr || b.p[r] == nullptr) {
      return InvalidArgument(std::string(what) + ": rank " + std::to_string(r) + " has no buffer");
    }
  }
  return Status::Ok();
}

template <typename Y>
Status AddInPlaceOf(float* x, const Y* y, int64_t count, cudaStream_t stream) {
  if (count <= 0 || x == nullptr || y == nullptr) return InvalidArgument("AddInPlace: empty or null");
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(AddInPlaceKernel<Y>, dim3(Blocks(count, 1024)), dim3(kThreads),
                                           0, stream, x, y, count));
  return Status::Ok();
}

}  // namespace

size_t TpSignalBytes() { return static_cast<size_t>(kEpochs + kTpSignalBlocks) * sizeof(uint32_t); }

Status PeerAllReduceAdd(const TpPeerSignals& signals, const TpPeerBuffers& partial, float* x,
                        int64_t count, float* zero, int64_t zero_count, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckPeers("PeerAllReduceAdd", signals, partial));
  if (count <= 0 || x == nullptr) return InvalidArgument("PeerAllReduceAdd: empty or null x");
  bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
  for (int r = 0; r < signals.world; ++r) aligned = aligned && reinterpret_cast<uintptr_t>(partial.p[r]) % 16 == 0;
  const int64_t n4 = aligned ? count / 4 : 0;
  // Enough blocks for one float4 a thread up to the signal area's blocks.
  const unsigned blocks = Blocks(std::max<int64_t>(n4, count - 4 * n4), kTpSignalBlocks);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(AllReduceAddKernel, dim3(blocks), dim3(kThreads), 0, stream,
                                           signals, partial, x, n4, count, zero, zero_count));
  return Status::Ok();
}

Status PeerGatherColumns(const TpPeerSignals& signals, const TpPeerBuffers& local, float* out,
                         int64_t rows, int64_t cols, int64_t out_cols, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckPeers("PeerGatherColumns", signals, local));
  if (rows <= 0 || cols <= 0 || out_cols <= 0 || out_cols > cols * signals.world || out == nullptr) {
    return InvalidArgument("PeerGatherColumns: bad shape rows=" + std::to_string(rows) + " cols=" +
                           std::to_string(cols) + " out_cols=" + std::to_string(out_cols));
  }
  const unsigned blocks = Blocks(rows * out_cols, kTpSignalBlocks);
  RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(GatherColumnsKernel, dim3(blocks), dim3(kThreads), 0,
                                           stream, signals, local, out, rows, cols, out_cols));
  return Status::Ok();
}

Status AddInPlace(float* x, const float* y, int64_t count, cudaStream_t stream) {
  return AddInPlaceOf(x, y, count, stream);
}

Status AddInPlace(float* x, const __nv_bfloat16* y, int64_t count, cudaStream_t stream) {
  return AddInPlaceOf(x, y, count, stream);
}

}  // namespace rag
