#include "engine/dist/tp_backend.h"

#include <algorithm>

#include "common/logging.h"
#include "engine/dist/tp_plan.h"
#include "engine/safetensors.h"

namespace rag {

StatusOr<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::Build(
    const ModelConfig& config, const CudaBackendOptions& options, const TensorParallelOptions& tp,
    const WeightSource& weights) {
  RAG_RETURN_IF_ERROR(CheckTensorParallel(config, tp.world));
  TpGroupOptions group_options;
  group_options.devices = tp.devices;
  if (group_options.devices.empty()) {
    for (int r = 0; r < tp.world; ++r) group_options.devices.push_back(r);
  }
  if (static_cast<int>(group_options.devices.size()) != tp.world) {
    return InvalidArgument("tensor parallel: " + std::to_string(group_options.devices.size()) +
                           " devices named for " + std::to_string(tp.world) + " ranks");
  }
  group_options.peer_allreduce_max_bytes = tp.peer_allreduce_max_bytes;
  std::unique_ptr<TensorParallelBackend> b(new TensorParallelBackend(config));
  RAG_ASSIGN_OR_RETURN(b->group_, TpGroup::Create(group_options));
  b->workers_ = std::make_unique<RankWorkers>(tp.world);
  b->comms_.resize(static_cast<size_t>(tp.world));
  b->ranks_.resize(static_cast<size_t>(tp.world));
  const ModelConfig rank_config = RankConfig(config, tp.world);
  RAG_RETURN_IF_ERROR(b->workers_->RunAll([&](int r) -> Status {
    const size_t i = static_cast<size_t>(r);
    RAG_ASSIGN_OR_RETURN(b->comms_[i], b->group_->Join(r));  // makes the rank's device current
    RAG_ASSIGN_OR_RETURN(CudaWeights w, weights(TensorParallelSlices(config, r, tp.world)));
    CudaBackendOptions o = options;
    o.device = group_options.devices[i];
    o.collectives = b->comms_[i].get();
    RAG_ASSIGN_OR_RETURN(b->ranks_[i], CreateCudaBackend(rank_config, std::move(w), o));
    return Status::Ok();
  }));
  b->num_blocks_ = b->ranks_[0]->info().num_blocks;
  for (const auto& rank : b->ranks_) b->num_blocks_ = std::min(b->num_blocks_, rank->info().num_blocks);
  b->block_size_ = b->ranks_[0]->info().block_size;
  RAG_LOG(INFO) << "tensor parallel backend: " << tp.world << " GPUs, " << b->num_blocks_
                << " KV blocks, " << (b->ranks_[0]->weight_bytes() >> 20) << " MiB of weights a GPU";
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

BackendInfo TensorParallelBackend::info() const { return {"cuda-tp", block_size_, num_blocks_}; }

Status TensorParallelBackend::OnAllRanks(const ForwardBatch& batch,
                                         const std::function<Status(CudaBackend&, int)>& call) {
  // A rank that refused a step the others run would leave them waiting in a collective.
  RAG_RETURN_IF_ERROR(ValidateForwardBatch(batch, config_, block_size_, num_blocks_));
  return workers_->RunAll([&](int r) { return call(*ranks_[static_cast<size_t>(r)], r); });
}

template <typename T>
StatusOr<T> TensorParallelBackend::RankZeroResult(const ForwardBatch& batch,
                                                  const std::function<StatusOr<T>(CudaBackend&)>& call) {
  T result{};
  RAG_RETURN_IF_ERROR(OnAllRanks(batch, [&](CudaBackend& b, int r) -> Status {
    RAG_ASSIGN_OR_RETURN(T got, call(b));
    if (r == 0) result = std::move(got);
    return Status::Ok();
  }));
  return result;
}

StatusOr<std::vector<float>> TensorParallelBackend::Forward(const ForwardBatch& batch) {
  return RankZeroResult<std::vector<float>>(batch, [&](CudaBackend& b) { return b.Forward(batch); });
}

StatusOr<std::vector<int32_t>> TensorParallelBackend::ForwardArgmax(const ForwardBatch& batch) {
  return RankZeroResult<std::vector<int32_t>>(batch,
                                              [&](CudaBackend& b) { return b.ForwardArgmax(batch); });
}

StatusOr<std::vector<int32_t>> TensorParallelBackend::ForwardSample(
    const ForwardBatch& batch, const std::vector<DeviceSampling>& rows) {
  return RankZeroResult<std::vector<int32_t>>(
      batch, [&](CudaBackend& b) { return b.ForwardSample(batch, rows); });
}

StatusOr<std::vector<std::vector<int32_t>>> TensorParallelBackend::GreedyDecode(
    const ForwardBatch& batch, int steps) {
  return RankZeroResult<std::vector<std::vector<int32_t>>>(
      batch, [&](CudaBackend& b) { return b.GreedyDecode(batch, steps); });
}

}  // namespace rag
