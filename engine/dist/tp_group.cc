#include "engine/dist/tp_group.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/logging.h"
#include "engine/cuda/device_buffer.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

#define RAG_NCCL_RETURN_IF_ERROR(expr)                                                  \
  do {                                                                                  \
    ncclResult_t rag_nccl_err_ = (expr);                                                \
    if (rag_nccl_err_ != ncclSuccess) {                                                 \
      return ::rag::Internal(std::string("NCCL: ") + #expr + ": " +                     \
                             ncclGetErrorString(rag_nccl_err_));                        \
    }                                                                                   \
  } while (0)

namespace rag {

static_assert(sizeof(ncclUniqueId) <= 128, "ncclUniqueId larger than TpGroup's copy");

// One rank's view of the group: its communicator, its signal area, the group's tables.
class TpGroup::Rank : public TpCollectives {
 public:
  Rank(std::shared_ptr<TpGroup> group, int rank, ncclComm_t comm, uint32_t* signals)
      : group_(std::move(group)), rank_(rank), comm_(comm), signals_(signals) {}
  ~Rank() override {
    ncclCommDestroy(comm_);
    cudaFree(signals_);
  }

  int rank() const override { return rank_; }
  int world() const override { return group_->world(); }

  Status Register(void* buffer, size_t bytes) override {
    if (buffer == nullptr || bytes == 0) return InvalidArgument("TpCollectives::Register: empty buffer");
    return group_->RegisterBuffer(rank_, buffer);
  }

  Status AllReduceAdd(float* partial, float* x, int64_t count, float* zero_next,
                      cudaStream_t stream) override {
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    if (group_->peer_access() && bytes <= group_->options_.peer_allreduce_max_bytes) {
      RAG_ASSIGN_OR_RETURN(TpPeerBuffers peers, Peers(partial));
      return PeerAllReduceAdd(Signals(), peers, x, count, zero_next, count, stream);
    }
    RAG_NCCL_RETURN_IF_ERROR(ncclAllReduce(partial, partial, static_cast<size_t>(count), ncclFloat32,
                                           ncclSum, comm_, stream));
    RAG_RETURN_IF_ERROR(AddInPlace(x, partial, count, stream));
    if (zero_next != nullptr) RAG_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(zero_next, 0, bytes, stream));
    return Status::Ok();
  }

  Status AllReduceAddBf16(__nv_bfloat16* partial, float* x, int64_t count, cudaStream_t stream) override {
    RAG_NCCL_RETURN_IF_ERROR(ncclAllReduce(partial, partial, static_cast<size_t>(count), ncclBfloat16,
                                           ncclSum, comm_, stream));
    return AddInPlace(x, partial, count, stream);
  }

  Status GatherColumns(float* local, float* out, int64_t rows, int64_t cols, int64_t out_cols,
                       cudaStream_t stream) override {
    if (group_->peer_access() && group_->options_.peer_gather) {
      RAG_ASSIGN_OR_RETURN(TpPeerBuffers peers, Peers(local));
      return PeerGatherColumns(Signals(), peers, out, rows, cols, out_cols, stream);
    }
    // NCCL: all slices into a staging buffer (rank after rank), then each into its columns.
    const int W = world();
    const size_t need = static_cast<size_t>(rows * cols * W) * sizeof(float);
    if (gather_staging_.bytes() < need) {  // grown outside graph capture: each decode bucket's
      gather_staging_ = DeviceBuffer{};      // first step runs eagerly before it is captured
      RAG_ASSIGN_OR_RETURN(gather_staging_, DeviceBuffer::Allocate(need, "the logits gather buffer"));
    }
    float* staging = gather_staging_.as<float>();
    RAG_NCCL_RETURN_IF_ERROR(ncclAllGather(local, staging, static_cast<size_t>(rows * cols), ncclFloat32,
                                           comm_, stream));
    for (int r = 0; r < W; ++r) {
      const int64_t width = std::min(cols, out_cols - r * cols);
      if (width <= 0) break;
      RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(out + r * cols, out_cols * 4, staging + r * rows * cols,
                                                 cols * 4, width * 4, rows, cudaMemcpyDeviceToDevice,
                                                 stream));
    }
    return Status::Ok();
  }

 private:
  TpPeerSignals Signals() const {
    TpPeerSignals s;
    s.rank = rank_;
    s.world = world();
    for (int r = 0; r < s.world; ++r) s.signals[r] = group_->signals_[static_cast<size_t>(r)];
    return s;
  }
  StatusOr<TpPeerBuffers> Peers(const float* mine) {
    RAG_ASSIGN_OR_RETURN(std::vector<float*> all, group_->PeerBuffers(rank_, mine));
    TpPeerBuffers b;
    for (size_t r = 0; r < all.size(); ++r) b.p[r] = all[r];
    return b;
  }

  std::shared_ptr<TpGroup> group_;
  int rank_;
  ncclComm_t comm_;
  uint32_t* signals_;
  DeviceBuffer gather_staging_;
};

StatusOr<std::shared_ptr<TpGroup>> TpGroup::Create(const TpGroupOptions& options) {
  const int world = static_cast<int>(options.devices.size());
  if (world < 1 || world > kMaxTpWorld) {
    return InvalidArgument("tensor parallel: 1 to " + std::to_string(kMaxTpWorld) + " GPUs, not " +
                           std::to_string(world));
  }
  int count = 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count));
  for (int d : options.devices) {
    if (d < 0 || d >= count) {
      return InvalidArgument("tensor parallel over " + std::to_string(world) + " GPUs: device " +
                             std::to_string(d) + " does not exist (" + std::to_string(count) +
                             " CUDA devices here)");
    }
  }
  std::shared_ptr<TpGroup> g(new TpGroup(options));
  ncclUniqueId id;
  RAG_NCCL_RETURN_IF_ERROR(ncclGetUniqueId(&id));
  std::memcpy(g->unique_id_, &id, sizeof id);
  g->rank_peer_ok_.assign(static_cast<size_t>(world), false);
  g->signals_.assign(static_cast<size_t>(world), nullptr);
  g->buffers_.resize(static_cast<size_t>(world));
  return g;
}

TpGroup::~TpGroup() = default;

void TpGroup::WaitForAll() {
  std::unique_lock<std::mutex> lock(mu_);
  if (++arrived_ == world()) {
    peer_access_ = std::all_of(rank_peer_ok_.begin(), rank_peer_ok_.end(), [](bool b) { return b; }) &&
                   world() > 1;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return arrived_ >= world(); });
}

StatusOr<std::unique_ptr<TpCollectives>> TpGroup::Join(int rank) {
  const int W = world();
  if (rank < 0 || rank >= W) return InvalidArgument("tensor parallel: bad rank " + std::to_string(rank));
  const int device = options_.devices[static_cast<size_t>(rank)];
  RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  // Peer access to every other GPU of the group; any pair without it sends every collective
  // through NCCL (on every rank alike: decided once all have joined).
  bool peer_ok = true;
  for (int r = 0; r < W; ++r) {
    const int other = options_.devices[static_cast<size_t>(r)];
    if (r == rank || other == device) continue;
    int can = 0;
    RAG_CUDA_RETURN_IF_ERROR(cudaDeviceCanAccessPeer(&can, device, other));
    if (!can) {
      peer_ok = false;
      continue;
    }
    const cudaError_t err = cudaDeviceEnablePeerAccess(other, 0);
    if (err == cudaErrorPeerAccessAlreadyEnabled) {
      cudaGetLastError();
    } else if (err != cudaSuccess) {
      cudaGetLastError();
      peer_ok = false;
    }
  }
  void* signals = nullptr;
  RAG_CUDA_RETURN_IF_ERROR(cudaMalloc(&signals, TpSignalBytes()));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemset(signals, 0, TpSignalBytes()));
  RAG_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  {
    std::lock_guard<std::mutex> lock(mu_);
    rank_peer_ok_[static_cast<size_t>(rank)] = peer_ok;
    signals_[static_cast<size_t>(rank)] = static_cast<uint32_t*>(signals);
  }
  ncclUniqueId id;
  std::memcpy(&id, unique_id_, sizeof id);
  ncclComm_t comm = nullptr;
  const ncclResult_t init = ncclCommInitRank(&comm, W, id, rank);  // blocks until all ranks come
  if (init != ncclSuccess) {
    cudaFree(signals);
    return Internal(std::string("NCCL: ncclCommInitRank (rank ") + std::to_string(rank) + " of " +
                    std::to_string(W) + "): " + ncclGetErrorString(init));
  }
  WaitForAll();
  if (rank == 0) {
    RAG_LOG(INFO) << "tensor parallel: " << W << " GPUs joined; all-reduces up to "
                  << (options_.peer_allreduce_max_bytes >> 10) << " KiB "
                  << (peer_access_ ? "through peer memory, larger through NCCL" : "and larger through NCCL (no peer access)");
  }
  return std::unique_ptr<TpCollectives>(
      new Rank(shared_from_this(), rank, comm, static_cast<uint32_t*>(signals)));
}

Status TpGroup::RegisterBuffer(int rank, void* buffer) {
  std::lock_guard<std::mutex> lock(mu_);
  buffers_[static_cast<size_t>(rank)].push_back(buffer);
  return Status::Ok();
}

StatusOr<std::vector<float*>> TpGroup::PeerBuffers(int rank, const void* mine) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<void*>& own = buffers_[static_cast<size_t>(rank)];
  const auto it = std::find(own.begin(), own.end(), mine);
  if (it == own.end()) return InvalidArgument("tensor parallel: a collective on an unregistered buffer");
  const size_t index = static_cast<size_t>(it - own.begin());
  std::vector<float*> all;
  for (size_t r = 0; r < buffers_.size(); ++r) {
    if (buffers_[r].size() <= index) {
      return FailedPrecondition("tensor parallel: rank " + std::to_string(r) +
                                " has not registered its buffer " + std::to_string(index) + " yet");
    }
    all.push_back(static_cast<float*>(buffers_[r][index]));
  }
  return all;
}

}  // namespace rag
