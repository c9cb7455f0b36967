#include "engine/dist/tp_backend.h"

#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "engine/dist/tp_plan.h"
#include "engine/safetensors.h"

namespace rag {

StatusOr<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::Build(
    const ModelConfig& config, const CudaBackendOptions& options, const TensorParallelOptions& tp,
    const WeightSource& weights) {
  RAG_RETURN_IF_ERROR(CheckTensorParallel(config, tp.world));
  const bool spread = tp.process_rank >= 0;
  TpGroupOptions group_options;
  group_options.devices = tp.devices;
  if (group_options.devices.empty()) {
    if (spread) group_options.devices.push_back(tp.process_rank);
    for (int r = 0; r < tp.world && !spread; ++r) group_options.devices.push_back(r);
  }
  const size_t local = spread ? 1 : static_cast<size_t>(tp.world);
  if (group_options.devices.size() != local) {
    return InvalidArgument("tensor parallel: " + std::to_string(group_options.devices.size()) +
                           " devices named for " + std::to_string(local) +
                           " ranks in this process");
  }
  group_options.process_rank = tp.process_rank;
  group_options.world = tp.world;
  group_options.unique_id = tp.unique_id;
  group_options.peer_allreduce_max_bytes = tp.peer_allreduce_max_bytes;
  std::unique_ptr<TensorParallelBackend> b(new TensorParallelBackend(config));
  RAG_ASSIGN_OR_RETURN(b->group_, TpGroup::Create(group_options));
  b->followers_ = tp.followers;
  b->workers_ = std::make_unique<RankWorkers>(static_cast<int>(local));
  b->comms_.resize(local);
  b->ranks_.resize(local);
  const ModelConfig rank_config = RankConfig(config, tp.world);
  std::vector<int64_t> blocks(local);
  const Status built = b->workers_->RunAll([&](int i) -> Status {
    const int rank = spread ? tp.process_rank : i;
    const size_t k = static_cast<size_t>(i);
    RAG_ASSIGN_OR_RETURN(b->comms_[k], b->group_->Join(rank));  // makes the rank's device current
    RAG_ASSIGN_OR_RETURN(CudaWeights w, weights(TensorParallelSlices(config, rank, tp.world)));
    CudaBackendOptions o = options;
    o.device = group_options.devices[k];
    o.collectives = b->comms_[k].get();
    RAG_ASSIGN_OR_RETURN(b->ranks_[k], CreateCudaBackend(rank_config, std::move(w), o));
    blocks[k] = b->ranks_[k]->info().num_blocks;
    // Ranks of other processes through NCCL (in one process, a rank that failed to load would
    // leave the others waiting in it: the host takes the smallest below).
    if (spread) {
      RAG_ASSIGN_OR_RETURN(blocks[k], b->comms_[k]->MinOverRanks(blocks[k]));
    }
    return Status::Ok();
  });
  if (!built.ok()) {
    // Spread over processes, the other ranks may wait in a collective of the load for this one:
    // abort this side (they are left waiting: the group must be started again).
    if (spread)
      b->LoseGroup("tensor parallel rank " + std::to_string(tp.process_rank) + ": " +
                   built.message());
    return built;
  }
  if (b->followers_ != nullptr) {
    TensorParallelBackend* raw = b.get();
    b->StartWatchdog([raw]() -> std::string {
      const int lost = raw->followers_->LostFollower(std::chrono::milliseconds(200));
      if (lost < 0) return "";
      return "tensor parallel: rank " + std::to_string(lost) +
             " left the group (its process ended)";
    });
  }
  b->num_blocks_ = static_cast<int>(*std::min_element(blocks.begin(), blocks.end()));
  b->block_size_ = b->ranks_[0]->info().block_size;
  RAG_LOG(INFO) << "tensor parallel backend: " << tp.world << " GPUs"
                << (spread ? ", rank " + std::to_string(tp.process_rank) + " in this process" : "")
                << ", " << b->num_blocks_ << " KV blocks, " << (b->ranks_[0]->weight_bytes() >> 20)
                << " MiB of weights a GPU";
  return b;
}

StatusOr<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::Create(
    const std::string& model_dir, const CudaBackendOptions& options, const TensorParallelOptions& tp) {
  if (!CudaDeviceAvailable()) return Unavailable("tensor parallel backend: no CUDA device");
  RAG_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  // One reader for all ranks: the files are mapped once, each rank reads its rows and columns.
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::OpenDir(model_dir));
  const SafetensorsReader& files = *reader;
  return Build(config, options, tp, [&](const TpSlices& s) { return LoadCudaWeights(config, files, s); });
}

StatusOr<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::CreateDummy(
    const ModelConfig& config, uint64_t seed, bool fp8, const CudaBackendOptions& options,
    const TensorParallelOptions& tp) {
  return Build(config, options, tp,
               [&](const TpSlices& s) { return DummyCudaWeights(config, seed, fp8, s); });
}

TensorParallelBackend::~TensorParallelBackend() {
  StopWatchdog();
  // Followers first: the close ends their Follow, and they destroy their ranks with ours
  // (ncclCommDestroy waits for every rank of the communicator; an aborted one does not).
  if (followers_ != nullptr && Intact().ok()) {
    const Status closed =
        followers_->SendToFollowers(EncodeTpStep(TpStep{TpCall::kClose, {}, {}, 0}));
    if (!closed.ok()) LoseGroup(closed.message());
  }
  followers_.reset();
  if (workers_ == nullptr) return;
  // Each rank's CUDA and NCCL objects are released on its own thread (its device current).
  Status s = workers_->RunAll([&](int r) {
    ranks_[static_cast<size_t>(r)].reset();
    comms_[static_cast<size_t>(r)].reset();
    return Status::Ok();
  });
  if (!s.ok()) {
    RAG_LOG(WARN) << "tensor parallel backend: " << s.ToString();
  }
}

BackendInfo TensorParallelBackend::info() const {
  BackendInfo info = ranks_[0]->info();  // the ranks' step limits are the same (one options)
  info.name = "cuda-tp";
  info.num_blocks = num_blocks_;
  return info;
}

Status TensorParallelBackend::OnAllRanks(const TpStep& step,
                                         const std::function<Status(CudaBackend&, int)>& call) {
  // A rank that refused a step the others run would leave them waiting in a collective.
  RAG_RETURN_IF_ERROR(ValidateForwardBatch(step.batch, config_, block_size_, num_blocks_));
  RAG_RETURN_IF_ERROR(Intact());
  if (followers_ != nullptr) {
    const Status sent = followers_->SendToFollowers(EncodeTpStep(step));
    if (!sent.ok()) {
      LoseGroup(sent.message());
      return Intact();
    }
  }
  in_step_ = true;
  const Status ran =
      workers_->RunAll([&](int r) { return call(*ranks_[static_cast<size_t>(r)], r); });
  in_step_ = false;
  RAG_RETURN_IF_ERROR(Intact());  // a step that a lost rank cut short says so
  return ran;
}

void TensorParallelBackend::StartWatchdog(std::function<std::string()> lost) {
  watchdog_ = std::thread([this, lost = std::move(lost)] {
    while (!stop_watchdog_) {
      const std::string why = lost();
      if (!why.empty()) {
        LoseGroup(why);
        return;
      }
    }
  });
}

void TensorParallelBackend::StopWatchdog() {
  stop_watchdog_ = true;
  if (watchdog_.joinable()) watchdog_.join();
}

void TensorParallelBackend::LoseGroup(const std::string& why) {
  std::lock_guard<std::mutex> lock(lost_mu_);
  if (!lost_.empty()) return;
  lost_ = why;
  RAG_LOG(ERROR) << why << "; aborting this process's communicators";
  for (const auto& comm : comms_) {
    if (comm != nullptr) comm->Abort();
  }
}

Status TensorParallelBackend::Intact() {
  std::lock_guard<std::mutex> lock(lost_mu_);
  if (lost_.empty()) return Status::Ok();
  return Unavailable(lost_ + "; the model is unavailable until the group is started again");
}

template <typename T>
StatusOr<T> TensorParallelBackend::RankZeroResult(
    const TpStep& step, const std::function<StatusOr<T>(CudaBackend&)>& call) {
  T result{};
  RAG_RETURN_IF_ERROR(OnAllRanks(step, [&](CudaBackend& b, int r) -> Status {
    RAG_ASSIGN_OR_RETURN(T got, call(b));
    if (r == 0) result = std::move(got);
    return Status::Ok();
  }));
  return result;
}

// Each call is a TpStep, as followers receive it (the copy of the batch costs microseconds
// against a step's milliseconds).
StatusOr<std::vector<float>> TensorParallelBackend::Forward(const ForwardBatch& batch) {
  return RankZeroResult<std::vector<float>>(TpStep{TpCall::kForward, batch, {}, 0},
                                            [&](CudaBackend& b) { return b.Forward(batch); });
}

StatusOr<std::vector<int32_t>> TensorParallelBackend::ForwardArgmax(const ForwardBatch& batch) {
  return RankZeroResult<std::vector<int32_t>>(
      TpStep{TpCall::kForwardArgmax, batch, {}, 0},
      [&](CudaBackend& b) { return b.ForwardArgmax(batch); });
}

StatusOr<std::vector<int32_t>> TensorParallelBackend::ForwardSample(
    const ForwardBatch& batch, const std::vector<DeviceSampling>& rows) {
  const TpStep step{TpCall::kForwardSample, batch, rows, 0};
  return RankZeroResult<std::vector<int32_t>>(
      step, [&](CudaBackend& b) { return b.ForwardSample(batch, rows); });
}

StatusOr<std::vector<std::vector<int32_t>>> TensorParallelBackend::GreedyDecode(
    const ForwardBatch& batch, int steps) {
  const TpStep step{TpCall::kGreedyDecode, batch, {}, steps};
  return RankZeroResult<std::vector<std::vector<int32_t>>>(
      step, [&](CudaBackend& b) { return b.GreedyDecode(batch, steps); });
}

Status TensorParallelBackend::Follow(TpRendezvous& rank0) {
  // Rank 0 gone in the middle of a step leaves this rank's collectives waiting for it: once its
  // connection has been closed for 2 s with a step still running, the group is lost. (A close
  // while no step runs is seen by Receive.)
  StartWatchdog(
      [this, &rank0, closed_at = std::chrono::steady_clock::time_point{}]() mutable -> std::string {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const auto now = std::chrono::steady_clock::now();
        if (!in_step_ || !rank0.Rank0Closed()) {
          closed_at = {};
          return "";
        }
        if (closed_at == std::chrono::steady_clock::time_point{}) closed_at = now;
        return now - closed_at > std::chrono::seconds(2)
                   ? "tensor parallel: rank 0 left the group during a step"
                   : "";
      });
  struct StopOnReturn {
    TensorParallelBackend* b;
    ~StopOnReturn() { b->StopWatchdog(); }
  } stop{this};
  const std::string me = "tensor parallel rank " + std::to_string(rank0.rank());
  for (;;) {
    StatusOr<std::string> message = rank0.Receive();
    if (!message.ok()) {  // rank 0 went without closing the group: it will never destroy its ranks
      LoseGroup(me + ": " + message.status().message() + " without closing the group");
      return Intact();
    }
    RAG_ASSIGN_OR_RETURN(TpStep step, DecodeTpStep(*message));
    Status ran;
    switch (step.call) {
      case TpCall::kClose:
        RAG_LOG(INFO) << me << ": rank 0 closed the group";
        return Status::Ok();
      case TpCall::kForward:
        ran = Forward(step.batch).status();
        break;
      case TpCall::kForwardArgmax:
        ran = ForwardArgmax(step.batch).status();
        break;
      case TpCall::kForwardSample:
        ran = ForwardSample(step.batch, step.sampling).status();
        break;
      case TpCall::kGreedyDecode:
        ran = GreedyDecode(step.batch, step.steps).status();
        break;
    }
    // A refused step (InvalidArgument: its batch or its shape) was refused by rank 0 alike, which
    // goes on with the next; anything else leaves this rank unable to follow.
    if (ran.code() == StatusCode::kInvalidArgument) {
      RAG_LOG(WARN) << me << ": a step refused as on rank 0: " << ran.message();
    } else if (!ran.ok()) {
      return Status(ran.code(), me + ": a step from rank 0 failed: " + ran.message());
    }
  }
}

}  // namespace rag
