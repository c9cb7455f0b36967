// A tensor-parallel group (issue 8): one NCCL communicator per rank, made from one unique id
// (ncclCommInitRank), and the collectives of engine/cuda/tp_collectives.h. Either every rank is
// a GPU of this process (one thread each), or the group is spread over processes, one rank each
// (engine/dist/tp_process.h: the unique id comes from rank 0 through a rendezvous); then the
// ranks tell each other their host (its name, or RAG_TP_HOST where set: hosts that share a name)
// and GPU through NCCL, and ranks of one host with peer access map each other's buffers with
// CUDA IPC handles, so both kinds of group take the same paths (ranks on several hosts: NCCL for
// every collective):
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
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/cuda/tp_collectives.h"

namespace rag {

struct TpGroupOptions {
  std::vector<int> devices;  // CUDA device of each rank of this process
  // A group spread over processes: this process is rank `process_rank` (devices holds its one
  // GPU) of `world`, and `unique_id` is rank 0's (NewUniqueId). -1: every rank is here
  // (world = devices.size()).
  int process_rank = -1;
  int world = 0;
  std::string unique_id;
  size_t peer_allreduce_max_bytes = 1u << 20;  // 0: every all-reduce through NCCL
  bool peer_gather = true;                     // false: the logits gather through NCCL
};

class TpGroup : public std::enable_shared_from_this<TpGroup> {
 public:
  static StatusOr<std::shared_ptr<TpGroup>> Create(const TpGroupOptions& options);
  // A new NCCL unique id (rank 0 of a group spread over processes hands it to the others).
  static StatusOr<std::string> NewUniqueId();
  ~TpGroup();

  bool spread() const { return options_.process_rank >= 0; }
  int world() const {
    return spread() ? options_.world : static_cast<int>(options_.devices.size());
  }
  int local_ranks() const { return static_cast<int>(options_.devices.size()); }
  // Whether the peer-memory collectives are in use (known once every rank has joined).
  bool peer_access() const { return peer_access_; }

  // Called on rank `rank`'s own thread, on every rank at the same time (it blocks until all
  // have come): makes the rank's device current, joins the NCCL communicator, enables peer
  // access to the other GPUs (or, spread over processes, maps their signal areas) and
  // allocates the rank's signal area. `rank` is the rank in the group (process_rank if spread).
  StatusOr<std::unique_ptr<TpCollectives>> Join(int rank);

 private:
  class Rank;
  explicit TpGroup(TpGroupOptions options) : options_(std::move(options)) {}
  void WaitForAll();  // host barrier of the joining ranks of this process
  // Spread over processes: which ranks can read each other's memory (decided alike on every
  // rank from what they all-gather), and the peers' signal areas mapped into this process.
  Status JoinAcrossProcesses(int rank, void* comm, uint32_t* signals, std::vector<void*>* opened);
  // Appends `buffer` to rank `rank`'s registrations (spread: every rank's, mapped here).
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
