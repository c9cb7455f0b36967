// A tensor-parallel group whose ranks are processes, one GPU each (issue 8: "several processes,
// and later several nodes, can form one group"). Rank 0 is the process that serves (rag serve,
// query, generate, bench); ranks 1..world-1 are followers (`rag tp-worker`, or rag bench's own
// children with --tp-processes) that run every step rank 0 sends them. They meet at rank 0's
// TCP address (engine/dist/tp_rendezvous.h), which hands out the NCCL unique id; ranks on one
// host with peer access map each other's buffers through CUDA IPC handles (the decode steps'
// all-reduces then take the same peer-memory kernel as one process), others go through NCCL.
//
// The ranks must launch the same kernels and collectives for every step: each states its
// settings (TpSettings) and rank 0 refuses a follower whose settings differ.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "engine/dist/tp_backend.h"
#include "engine/dist/tp_rendezvous.h"

namespace rag {

struct TpProcessOptions {
  TpAddress rendezvous;  // rank 0's address
  int rank = 0;          // 0 hosts; 1..world-1 follow
  int world = 2;
  int device = -1;  // this process's GPU; -1: GPU `rank`
  // How long rank 0 waits for its followers and a follower for rank 0 (a 70B load takes minutes).
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

// One "name=value" line for each thing the ranks must agree on: the model's shapes and every
// option of `options` and `tp` that changes the kernels or collectives a step launches, then
// `extra` (lines of the caller's own, e.g. rag bench's kernel knobs).
std::string TpSettings(const ModelConfig& config, const CudaBackendOptions& options,
                       const TensorParallelOptions& tp, const std::string& extra);

// Builds this process's rank (TensorParallelBackend::Create or CreateDummy) from the options
// HostTpProcessGroup and FollowTpProcessGroup complete.
using TpBackendFactory =
    std::function<StatusOr<std::unique_ptr<TensorParallelBackend>>(const TensorParallelOptions&)>;

// Rank 0: hosts the rendezvous, waits for the followers, then builds its rank; the backend sends
// every call to the followers before running it, and closing it (destruction) stops them. If a
// follower leaves while this rank loads, the process ends (exit status 1): the load's
// collectives would wait for it for ever.
StatusOr<std::unique_ptr<TensorParallelBackend>> HostTpProcessGroup(
    const TpProcessOptions& process, const std::string& settings, TensorParallelOptions tp,
    const TpBackendFactory& factory);

// Ranks 1..world-1: joins rank 0, builds this rank and runs rank 0's steps until rank 0 closes
// (Ok) or a step fails (its error). If rank 0 leaves while this rank loads, the process ends
// (exit status 1): the load's collectives would wait for it for ever.
Status FollowTpProcessGroup(const TpProcessOptions& process, const std::string& settings,
                            TensorParallelOptions tp, const TpBackendFactory& factory);

}  // namespace rag
