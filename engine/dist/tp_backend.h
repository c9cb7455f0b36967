// Tensor parallelism (issue 8): one model over several GPUs of this machine, as Megatron-LM
// splits a Llama layer (engine/dist/tp_plan.h). Each rank is a CudaBackend over its slices of
// the weights (read from the safetensors files rank by rank: each GPU reads only its part), on
// its own thread (rank_workers.h) with its own NCCL communicator (tp_group.h). Every call runs
// on all ranks at once: they plan the same step, each computes its heads and its part of the
// MLP, two all-reduces a layer add the partial sums into the residual stream (identical on every
// rank), and the vocabulary-split logits are gathered, so every rank takes the same argmax or
// sample and decode steps feed themselves on every GPU without the host. Decode steps are CUDA
// graphs with their collectives inside.
//
// The ranks may also be processes, one GPU each (engine/dist/tp_process.h: a serve process is
// rank 0, `rag tp-worker` processes the others): each process's backend then runs its own rank,
// and rank 0's sends every call to the followers (engine/dist/tp_step_wire.h) before running it,
// while theirs run the calls they receive (Follow).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/dist/rank_workers.h"
#include "engine/dist/tp_group.h"
#include "engine/dist/tp_rendezvous.h"
#include "engine/dist/tp_step_wire.h"

namespace rag {

struct TensorParallelOptions {
  int world = 2;             // GPUs
  std::vector<int> devices;  // this process's ranks' CUDA devices; empty: 0 .. world-1
  // A group spread over processes: this process runs rank `process_rank` only (on devices[0], or
  // GPU process_rank when devices is empty), in the NCCL group of rank 0's `unique_id`; rank 0
  // also holds the connections to the followers (`followers`). -1: every rank in this process.
  int process_rank = -1;
  std::string unique_id;
  std::shared_ptr<TpRendezvous> followers;
  // All-reduces up to this size go through peer memory (decode), larger through NCCL; 0: NCCL
  // for all (`rag bench --allreduce nccl`, to measure both).
  size_t peer_allreduce_max_bytes = 1u << 20;
};

class TensorParallelBackend : public GpuBackend {
 public:
  // A Hugging Face model directory (bf16 or `rag quantize`'s FP8); options apply to every rank
  // (options.device and options.collectives are set per rank).
  static StatusOr<std::unique_ptr<TensorParallelBackend>> Create(const std::string& model_dir,
                                                                 const CudaBackendOptions& options,
                                                                 const TensorParallelOptions& tp);
  // Random weights of `config`'s shapes (benchmarks), bf16 or FP8 projections.
  static StatusOr<std::unique_ptr<TensorParallelBackend>> CreateDummy(
      const ModelConfig& config, uint64_t seed, bool fp8, const CudaBackendOptions& options,
      const TensorParallelOptions& tp);
  ~TensorParallelBackend() override;

  const ModelConfig& config() const override { return config_; }
  BackendInfo info() const override;
  StatusOr<std::vector<float>> Forward(const ForwardBatch& batch) override;
  bool HasForwardArgmax() const override { return true; }
  StatusOr<std::vector<int32_t>> ForwardArgmax(const ForwardBatch& batch) override;
  bool HasForwardSample() const override { return true; }
  StatusOr<std::vector<int32_t>> ForwardSample(const ForwardBatch& batch,
                                               const std::vector<DeviceSampling>& rows) override;
  StatusOr<std::vector<std::vector<int32_t>>> GreedyDecode(const ForwardBatch& batch,
                                                           int steps) override;
  size_t weight_bytes() const override { return ranks_[0]->weight_bytes(); }
  size_t kv_cache_bytes() const override { return ranks_[0]->kv_cache_bytes(); }
  bool fp8_weights() const override { return ranks_[0]->fp8_weights(); }
  bool fp8_kv_cache() const override { return ranks_[0]->fp8_kv_cache(); }
  int gpus() const override { return group_->world(); }
  bool peer_access() const { return group_->peer_access(); }

  // A follower of a group spread over processes: runs the calls rank 0 sends until rank 0
  // closes the group (then Ok). A call refused as InvalidArgument (rank 0 refuses the same batch
  // alike) is logged and followed by the next; another failure ends it with that error.
  //
  // A rank's process may end at any time (killed, out of memory): each process watches the
  // others' connections (rank 0 its followers', a follower rank 0's while it runs a step), and a
  // lost rank aborts this process's communicators, so that no collective and no teardown waits
  // for it for ever; every later call then fails naming it (Unavailable). A follower whose rank
  // 0 is gone ends with that error.
  Status Follow(TpRendezvous& rank0);

 private:
  // Loads rank r's weights (on its thread, its device current).
  using WeightSource = std::function<StatusOr<CudaWeights>(const TpSlices&)>;
  static StatusOr<std::unique_ptr<TensorParallelBackend>> Build(const ModelConfig& config,
                                                                const CudaBackendOptions& options,
                                                                const TensorParallelOptions& tp,
                                                                const WeightSource& weights);
  explicit TensorParallelBackend(ModelConfig config) : config_(std::move(config)) {}
  // Checks the step's batch against the smallest KV cache of the ranks (so that no rank refuses
  // what the others run), sends it to the followers if any, and runs call(rank backend, rank)
  // on every rank of this process.
  Status OnAllRanks(const TpStep& step, const std::function<Status(CudaBackend&, int)>& call);
  // The same for a call with a result: rank 0's (the ranks' results are the same, the logits
  // only on rank 0).
  template <typename T>
  StatusOr<T> RankZeroResult(const TpStep& step,
                             const std::function<StatusOr<T>(CudaBackend&)>& call);

  // A group spread over processes: a thread that calls `lost` (which paces itself, ~200 ms)
  // until StopWatchdog; a non-empty answer, why the group is lost, goes to LoseGroup.
  void StartWatchdog(std::function<std::string()> lost);
  void StopWatchdog();
  // Aborts this process's communicators (once) and makes every later call fail with `why`.
  void LoseGroup(const std::string& why);
  Status Intact();

  ModelConfig config_;  // the whole model's
  int num_blocks_ = 0;  // the smallest KV cache of the ranks
  int block_size_ = 0;
  std::shared_ptr<TpGroup> group_;
  std::shared_ptr<TpRendezvous> followers_;  // rank 0 of a spread group
  std::unique_ptr<RankWorkers> workers_;
  std::vector<std::unique_ptr<TpCollectives>> comms_;
  std::vector<std::unique_ptr<CudaBackend>> ranks_;
  std::thread watchdog_;
  std::atomic<bool> stop_watchdog_{false};
  std::atomic<bool> in_step_{false};  // this process's ranks are running a call
  std::mutex lost_mu_;
  std::string lost_;  // why the group is lost; empty while it is whole
};

}  // namespace rag
