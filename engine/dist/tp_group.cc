#include "engine/dist/tp_group.h"

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
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

namespace {

// The same `bytes` from every rank, in rank order, through the communicator (blocking, on the
// current device: joins and registrations only, never inside a step).
StatusOr<std::vector<char>> AllGatherBytes(ncclComm_t comm, int rank, int world, const void* mine,
                                           size_t bytes) {
  RAG_ASSIGN_OR_RETURN(DeviceBuffer all, DeviceBuffer::Allocate(bytes * static_cast<size_t>(world),
                                                                "the tensor-parallel handshake"));
  char* d = all.as<char>();
  RAG_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(d + bytes * static_cast<size_t>(rank), mine, bytes, cudaMemcpyHostToDevice));
  RAG_NCCL_RETURN_IF_ERROR(
      ncclAllGather(d + bytes * static_cast<size_t>(rank), d, bytes, ncclUint8, comm, nullptr));
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
  std::vector<char> host(bytes * static_cast<size_t>(world));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(host.data(), d, host.size(), cudaMemcpyDeviceToHost));
  return host;
}

// The start of the cudaMalloc allocation `p` lies in (what cudaIpcGetMemHandle takes). The
// driver's cuMemGetAddressRange, looked up through the runtime: linking libcuda itself would
// keep a CUDA build of rag from starting on a machine without the driver.
StatusOr<uintptr_t> AllocationBase(const void* p) {
  using AddressRange = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);
  static AddressRange address_range = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<AddressRange>(fn);
  }();
  CUdeviceptr base = 0;
  size_t size = 0;
  if (address_range == nullptr ||
      address_range(&base, &size, reinterpret_cast<CUdeviceptr>(p)) != CUDA_SUCCESS) {
    cudaGetLastError();
    return Internal(
        "tensor parallel: the allocation of a registered buffer is unknown (cuMemGetAddressRange)");
  }
  return static_cast<uintptr_t>(base);
}

// The name of this rank's host: RAG_TP_HOST where set (hosts whose names do not tell them apart,
// such as containers that share one; tests that stand for ranks on other nodes, with NCCL_HOSTID
// likewise for NCCL), else gethostname. At most size - 1 characters into `out`.
void HostName(char* out, size_t size) {
  std::memset(out, 0, size);
  const char* named = std::getenv("RAG_TP_HOST");
  if (named != nullptr && named[0] != '\0') {
    std::strncpy(out, named, size - 1);
  } else {
    gethostname(out, size - 1);
  }
}

// What each rank of a group spread over processes tells the others when it joins.
struct RankCard {
  char host[64];    // HostName: ranks of other hosts never share memory
  char bus_id[32];  // the GPU's PCI bus id (device ordinals differ with CUDA_VISIBLE_DEVICES)
  int32_t peer_ok;  // second round: this rank can map every other rank's memory
  cudaIpcMemHandle_t signals;
};

// A registered buffer as the peers map it: the IPC handle of its allocation and its offset.
struct SharedBuffer {
  cudaIpcMemHandle_t allocation;
  uint64_t offset;
};

}  // namespace

// One rank's view of the group: its communicator, its signal area, the group's tables.
class TpGroup::Rank : public TpCollectives {
 public:
  Rank(std::shared_ptr<TpGroup> group, int rank, ncclComm_t comm, uint32_t* signals,
       std::vector<void*> opened)
      : group_(std::move(group)),
        rank_(rank),
        comm_(comm),
        signals_(signals),
        opened_(std::move(opened)) {}
  ~Rank() override {
    for (void* p : opened_) cudaIpcCloseMemHandle(p);
    if (!aborted_) ncclCommDestroy(comm_);  // which waits for every rank to destroy theirs
    cudaFree(signals_);
  }

  void Abort() override {
    if (!aborted_.exchange(true)) ncclCommAbort(comm_);
  }

  int rank() const override { return rank_; }
  int world() const override { return group_->world(); }

  Status Register(void* buffer, size_t bytes) override {
    if (buffer == nullptr || bytes == 0) return InvalidArgument("TpCollectives::Register: empty buffer");
    if (!group_->spread() || !group_->peer_access()) return group_->RegisterBuffer(rank_, buffer);
    return RegisterAcrossProcesses(buffer);
  }

  StatusOr<int64_t> MinOverRanks(int64_t value) override {
    RAG_ASSIGN_OR_RETURN(std::vector<char> all,
                         AllGatherBytes(comm_, rank_, world(), &value, sizeof value));
    for (int r = 0; r < world(); ++r) {
      int64_t theirs = 0;
      std::memcpy(&theirs, all.data() + sizeof theirs * static_cast<size_t>(r), sizeof theirs);
      value = std::min(value, theirs);
    }
    return value;
  }

  Status AllReduceAdd(float* partial, float* x, int64_t count, float* zero_next,
                      cudaStream_t stream) override {
    RAG_RETURN_IF_ERROR(Intact());
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
    RAG_RETURN_IF_ERROR(Intact());
    RAG_NCCL_RETURN_IF_ERROR(ncclAllReduce(partial, partial, static_cast<size_t>(count), ncclBfloat16,
                                           ncclSum, comm_, stream));
    return AddInPlace(x, partial, count, stream);
  }

  Status GatherColumns(float* local, float* out, int64_t rows, int64_t cols, int64_t out_cols,
                       cudaStream_t stream) override {
    RAG_RETURN_IF_ERROR(Intact());
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
  Status Intact() const {
    if (aborted_)
      return Unavailable("tensor parallel: the group lost a rank (its communicator was aborted)");
    return Status::Ok();
  }
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

  // Spread over processes: the peers map `buffer` through the IPC handle of the allocation it
  // lies in (the backend's buffers are carved out of one) and its offset there.
  Status RegisterAcrossProcesses(void* buffer) {
    RAG_ASSIGN_OR_RETURN(const uintptr_t base, AllocationBase(buffer));
    SharedBuffer mine{};
    RAG_CUDA_RETURN_IF_ERROR(cudaIpcGetMemHandle(&mine.allocation, reinterpret_cast<void*>(base)));
    mine.offset = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(buffer) - base);
    RAG_ASSIGN_OR_RETURN(std::vector<char> all,
                         AllGatherBytes(comm_, rank_, world(), &mine, sizeof mine));
    for (int r = 0; r < world(); ++r) {
      if (r == rank_) {
        RAG_RETURN_IF_ERROR(group_->RegisterBuffer(r, buffer));
        continue;
      }
      SharedBuffer theirs;
      std::memcpy(&theirs, all.data() + sizeof theirs * static_cast<size_t>(r), sizeof theirs);
      const std::string key(reinterpret_cast<const char*>(&theirs.allocation),
                            sizeof theirs.allocation);
      void*& mapped = mapped_[key];  // an allocation is mapped once, whatever it holds
      if (mapped == nullptr) {
        RAG_CUDA_RETURN_IF_ERROR(
            cudaIpcOpenMemHandle(&mapped, theirs.allocation, cudaIpcMemLazyEnablePeerAccess));
        opened_.push_back(mapped);
      }
      RAG_RETURN_IF_ERROR(group_->RegisterBuffer(r, static_cast<char*>(mapped) + theirs.offset));
    }
    return Status::Ok();
  }

  std::shared_ptr<TpGroup> group_;
  int rank_;
  ncclComm_t comm_;
  uint32_t* signals_;
  std::atomic<bool> aborted_{false};
  std::vector<void*> opened_;            // peers' memory mapped through IPC handles
  std::map<std::string, void*> mapped_;  // by IPC handle
  DeviceBuffer gather_staging_;
};

StatusOr<std::string> TpGroup::NewUniqueId() {
  ncclUniqueId id;
  RAG_NCCL_RETURN_IF_ERROR(ncclGetUniqueId(&id));
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

StatusOr<std::shared_ptr<TpGroup>> TpGroup::Create(const TpGroupOptions& options) {
  const bool spread = options.process_rank >= 0;
  const int world = spread ? options.world : static_cast<int>(options.devices.size());
  if (world < 1 || world > kMaxTpWorld) {
    return InvalidArgument("tensor parallel: 1 to " + std::to_string(kMaxTpWorld) + " GPUs, not " +
                           std::to_string(world));
  }
  if (spread && (options.devices.size() != 1 || options.process_rank >= world ||
                 options.unique_id.size() != sizeof(ncclUniqueId))) {
    return InvalidArgument(
        "tensor parallel over processes: one GPU a process, a rank below the world "
        "size and rank 0's unique id");
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
  std::string id = options.unique_id;
  if (!spread) {
    RAG_ASSIGN_OR_RETURN(id, NewUniqueId());
  }
  std::memcpy(g->unique_id_, id.data(), id.size());
  g->rank_peer_ok_.assign(static_cast<size_t>(world), false);
  g->signals_.assign(static_cast<size_t>(world), nullptr);
  g->buffers_.resize(static_cast<size_t>(world));
  return g;
}

TpGroup::~TpGroup() = default;

void TpGroup::WaitForAll() {
  std::unique_lock<std::mutex> lock(mu_);
  if (++arrived_ == local_ranks()) {
    if (!spread()) {  // a spread group decided in JoinAcrossProcesses
      peer_access_ =
          std::all_of(rank_peer_ok_.begin(), rank_peer_ok_.end(), [](bool b) { return b; }) &&
          world() > 1;
    }
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return arrived_ >= local_ranks(); });
}

Status TpGroup::JoinAcrossProcesses(int rank, void* nccl_comm, uint32_t* signals,
                                    std::vector<void*>* opened) {
  ncclComm_t comm = static_cast<ncclComm_t>(nccl_comm);
  const int W = world();
  RankCard mine{};
  HostName(mine.host, sizeof mine.host);
  RAG_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetPCIBusId(mine.bus_id, sizeof mine.bus_id, options_.devices[0]));
  RAG_ASSIGN_OR_RETURN(std::vector<char> first, AllGatherBytes(comm, rank, W, &mine, sizeof mine));
  std::vector<RankCard> cards(static_cast<size_t>(W));
  std::memcpy(cards.data(), first.data(), first.size());
  // Peer memory only if every other rank's GPU is on this host, visible here and reachable.
  bool ok = true;
  for (int r = 0; r < W && ok; ++r) {
    if (r == rank) continue;
    const RankCard& other = cards[static_cast<size_t>(r)];
    int device = -1, can = 0;
    ok = std::strcmp(other.host, mine.host) == 0 && std::strcmp(other.bus_id, mine.bus_id) != 0 &&
         cudaDeviceGetByPCIBusId(&device, other.bus_id) == cudaSuccess &&
         cudaDeviceCanAccessPeer(&can, options_.devices[0], device) == cudaSuccess && can;
  }
  cudaGetLastError();  // a GPU not visible here is an answer, not an error
  mine.peer_ok = ok ? 1 : 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaIpcGetMemHandle(&mine.signals, signals));
  RAG_ASSIGN_OR_RETURN(std::vector<char> second, AllGatherBytes(comm, rank, W, &mine, sizeof mine));
  std::memcpy(cards.data(), second.data(), second.size());
  const bool all_ok = W > 1 && std::all_of(cards.begin(), cards.end(),
                                           [](const RankCard& c) { return c.peer_ok != 0; });
  std::lock_guard<std::mutex> lock(mu_);  // this rank's own signal area is in signals_ already
  peer_access_ = all_ok;
  if (!all_ok) return Status::Ok();
  for (int r = 0; r < W; ++r) {
    if (r == rank) continue;
    void* p = nullptr;
    RAG_CUDA_RETURN_IF_ERROR(cudaIpcOpenMemHandle(&p, cards[static_cast<size_t>(r)].signals,
                                                  cudaIpcMemLazyEnablePeerAccess));
    opened->push_back(p);
    signals_[static_cast<size_t>(r)] = static_cast<uint32_t*>(p);
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<TpCollectives>> TpGroup::Join(int rank) {
  const int W = world();
  if (rank < 0 || rank >= W || (spread() && rank != options_.process_rank)) {
    return InvalidArgument("tensor parallel: bad rank " + std::to_string(rank));
  }
  const int device = options_.devices[spread() ? 0 : static_cast<size_t>(rank)];
  RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  // Peer access to every other GPU of the group; any pair without it sends every collective
  // through NCCL (on every rank alike: decided once all have joined). A spread group decides it
  // after NCCL's join, from what the ranks tell each other.
  bool peer_ok = true;
  for (int r = 0; r < W && !spread(); ++r) {
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
  std::vector<void*> opened;
  if (spread()) {
    const Status joined = JoinAcrossProcesses(rank, comm, static_cast<uint32_t*>(signals), &opened);
    if (!joined.ok()) {
      for (void* p : opened) cudaIpcCloseMemHandle(p);
      ncclCommDestroy(comm);
      cudaFree(signals);
      return joined;
    }
  }
  WaitForAll();
  if (rank == 0) {
    RAG_LOG(INFO) << "tensor parallel: " << W << " GPUs joined"
                  << (spread() ? " (one process each)" : "") << "; all-reduces up to "
                  << (options_.peer_allreduce_max_bytes >> 10) << " KiB "
                  << (peer_access_ ? "through peer memory, larger through NCCL"
                                   : "and larger through NCCL (no peer access)");
  }
  return std::unique_ptr<TpCollectives>(
      new Rank(shared_from_this(), rank, comm, static_cast<uint32_t*>(signals), std::move(opened)));
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
