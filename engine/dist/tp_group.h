// The tensor-parallel group of the GPUs of this process (issue 8): one NCCL communicator per
// rank, made from one unique id (ncclCommInitRank, so ranks in other processes or on other
// nodes could join the same group given the id through a rendezvous; the peer-memory path below
// is for ranks of one process), and the collectives of engine/cuda/tp_collectives.h:
//  - all-reduces of up to peer_allreduce_max_bytes (decode steps: 32 KB a token at the 70B
//    shape) through peer memory when every pair of GPUs has peer access (NVLink): one kernel
//    that reads the peers' partial sums (kernels/peer_collectives.cu), captured in the decode
//    step's CUDA graph like any kernel;
//  - larger ones (prefill) through NCCL (in place, then the residual add);
//  - the logits gather through peer memory, or NCCL's all-gather without peer access.
// NVLink multicast (NVLS) is never asked for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "engine/cuda/tp_collectives.h"

namespace rag {

struct TpGroupOptions {
  std::vector<int> devices;  // CUDA device of each rank (world = devices.size())
  size_t peer_allreduce_max_bytes = 1u << 20;  // 0: every all-reduce through NCCL
  bool peer_gather = true;                     // false: the logits gather through NCCL
};

class TpGroup : public std::enable_shared_from_this<TpGroup> {
 public:
  static StatusOr<std::shared_ptr<TpGroup>> Create(const TpGroupOptions& options);
  ~TpGroup();

  int world() const { return static_cast<int>(options_.devices.size()); }
  // Whether the peer-memory collectives are in use (known once every rank has joined).
  bool peer_access() const { return peer_access_; }

  // Called on rank `rank`'s own thread, on every rank at the same time (it blocks until all
  // have come): makes the rank's device current, joins the NCCL communicator, enables peer
  // access to the other GPUs and allocates the rank's signal area.
  StatusOr<std::unique_ptr<TpCollectives>> Join(int rank);

 private:
  class Rank;
  explicit TpGroup(TpGroupOptions options) : options_(std::move(options)) {}
  void WaitForAll();  // host barrier of the joining ranks
  Status RegisterBuffer(int rank, void* buffer);
  // The registered buffers of index `index` on every rank; error if one has not registered it.
  StatusOr<std::vector<float*>> PeerBuffers(int rank, const void* mine);

  TpGroupOptions options_;
  char unique_id_[128] = {};  // ncclUniqueId's bytes
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool peer_access_ = false;
  std::vector<bool> rank_peer_ok_;
  std::vector<uint32_t*> signals_;
  std::vector<std::vector<void*>> buffers_;  // [rank][registration index]
};

}  // namespace rag
