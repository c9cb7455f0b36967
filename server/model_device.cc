#include "server/model_device.h"

#include "engine/dist/tp_rendezvous.h"
#include "engine/kv_cache_type.h"

#ifdef RAG_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_bert.h"
#endif
#ifdef RAG_HAVE_NCCL
#include "engine/dist/tp_backend.h"
#include "engine/dist/tp_process.h"
#endif

namespace rag {

#ifdef RAG_HAVE_CUDA
namespace {

// The CUDA backend's options from the flags (rank 0 and `rag tp-worker` alike).
CudaBackendOptions CudaOptionsFor(KvCacheType kv_cache, const GpuFlags& flags) {
  CudaBackendOptions gpu;
  gpu.kv_cache = kv_cache;
  gpu.memory_fraction = flags.memory_fraction;
  gpu.max_batch_tokens = flags.step_tokens;
  gpu.max_batch_seqs = flags.seats;
  return gpu;
}

}  // namespace
#endif

#ifdef RAG_HAVE_NCCL
namespace {

// What rank 0 (serve, query, generate, eval-answers with --tp-rendezvous) and `rag tp-worker`
// build alike: the same options give the same settings (tp_process.h), which rank 0 checks.
struct ProcessGroupPlan {
  TpProcessOptions process;
  TensorParallelOptions parallel;
  std::string settings;
  TpBackendFactory factory;
};

StatusOr<ProcessGroupPlan> PlanProcessGroup(const std::string& dir, const CudaBackendOptions& gpu,
                                            const GpuFlags& flags, int rank, int device) {
  ProcessGroupPlan plan;
  RAG_ASSIGN_OR_RETURN(plan.process.rendezvous, ParseTpAddress(flags.tp_rendezvous));
  plan.process.world = flags.tp;
  plan.process.rank = rank;
  plan.process.device = device;
  RAG_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(dir));
  plan.parallel.world = flags.tp;
  plan.settings = TpSettings(config, gpu, plan.parallel, "");
  plan.factory = [dir, gpu](const TensorParallelOptions& tp) {
    return TensorParallelBackend::Create(dir, gpu, tp);
  };
  return plan;
}

}  // namespace
#endif

StatusOr<ModelLoadOptions> ModelLoadOptionsFor(const std::string& device,
                                               const CpuBackendOptions& cpu,
                                               const GpuFlags& flags) {
  const int tp = flags.tp;
  RAG_ASSIGN_OR_RETURN(const KvCacheType kv_cache, ParseKvCacheType(flags.kv_cache));
  if (!(flags.memory_fraction > 0.0 && flags.memory_fraction <= 1.0)) {
    return InvalidArgument("--gpu-memory takes a fraction in (0, 1], not " +
                           std::to_string(flags.memory_fraction));
  }
  if (flags.step_tokens < kMinStepTokens || flags.step_tokens > kMaxStepTokens) {
    return InvalidArgument("--step-tokens takes " + std::to_string(kMinStepTokens) + " to " +
                           std::to_string(kMaxStepTokens) + " tokens, not " +
                           std::to_string(flags.step_tokens));
  }
  if (flags.seats < 1 || flags.seats > kMaxSeats || flags.seats > flags.step_tokens) {
    return InvalidArgument("--seats takes 1 to " + std::to_string(kMaxSeats) +
                           " requests, at most --step-tokens, not " + std::to_string(flags.seats));
  }
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return InvalidArgument("--device must be auto, cpu or cuda, not \"" + device + "\"");
  }
  if (tp < 1 || tp > 8) return InvalidArgument("--tp takes 1 to 8 GPUs, not " + std::to_string(tp));
  if (tp > 1 && device == "cpu") return InvalidArgument("--tp " + std::to_string(tp) + " needs --device cuda");
  if (!flags.tp_rendezvous.empty()) {
    if (tp < 2) return InvalidArgument("--tp-rendezvous needs --tp 2 or more");
    const Status address = ParseTpAddress(flags.tp_rendezvous).status();
    if (!address.ok()) return InvalidArgument("--tp-rendezvous: " + address.message());
  }
  ModelLoadOptions options;
  options.cpu = cpu;
  // Every way to the CPU backend, whose KV cache is fp32.
  auto on_cpu = [&]() -> StatusOr<ModelLoadOptions> {
    if (kv_cache == KvCacheType::kFp8) {
      return InvalidArgument("--kv-cache fp8 needs the CUDA backend (the CPU backend keeps its KV "
                             "cache in fp32)");
    }
    return options;
  };
  if (device == "cpu") return on_cpu();
#ifdef RAG_HAVE_CUDA
  if (!CudaDeviceAvailable()) {
    if (device == "cuda" || tp > 1) return Unavailable("--device cuda: no CUDA device is present");
    return on_cpu();
  }
  const CudaBackendOptions gpu = CudaOptionsFor(kv_cache, flags);
  if (tp > 1) {
#ifdef RAG_HAVE_NCCL
    TensorParallelOptions parallel;
    parallel.world = tp;
    options.from_dir = [parallel, gpu,
                        flags](const std::string& dir) -> StatusOr<std::unique_ptr<Backend>> {
      std::unique_ptr<TensorParallelBackend> b;
      if (flags.tp_rendezvous.empty()) {
        RAG_ASSIGN_OR_RETURN(b, TensorParallelBackend::Create(dir, gpu, parallel));
      } else {
        RAG_ASSIGN_OR_RETURN(ProcessGroupPlan plan, PlanProcessGroup(dir, gpu, flags, 0, 0));
        RAG_ASSIGN_OR_RETURN(
            b, HostTpProcessGroup(plan.process, plan.settings, plan.parallel, plan.factory));
      }
      return std::unique_ptr<Backend>(std::move(b));
    };
    options.from_weights = [tp](ModelConfig, CpuWeights) -> StatusOr<std::unique_ptr<Backend>> {
      return InvalidArgument("--tp " + std::to_string(tp) + " needs a safetensors model directory "
                             "(a GGUF file runs on one GPU)");
    };
    return options;
#else
    return Unavailable("--tp " + std::to_string(tp) + ": this build has no tensor parallelism "
                       "(NCCL was not found when it was configured)");
#endif
  }
  options.from_dir = [gpu](const std::string& dir) -> StatusOr<std::unique_ptr<Backend>> {
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b, CreateCudaBackend(dir, gpu));
    return std::unique_ptr<Backend>(std::move(b));
  };
  options.from_weights = [gpu](ModelConfig config, CpuWeights weights) -> StatusOr<std::unique_ptr<Backend>> {
    RAG_ASSIGN_OR_RETURN(CudaWeights w, UploadCudaWeights(config, weights));
    weights = CpuWeights{};  // the host copy is no longer needed
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b,
                         CreateCudaBackend(std::move(config), std::move(w), gpu));
    return std::unique_ptr<Backend>(std::move(b));
  };
  return options;
#else
  if (device == "cuda" || tp > 1) {
    return Unavailable(std::string(tp > 1 ? "--tp" : "--device cuda") +
                       ": this build has no CUDA backend (configure with -DRAG_CUDA=ON)");
  }
  return on_cpu();
#endif
}

Status RunTpFollower(const std::string& model_dir, const GpuFlags& flags, int rank, int device) {
  if (flags.tp < 2 || rank < 1 || rank >= flags.tp) {
    return InvalidArgument(
        "rag tp-worker: --rank takes 1 to --tp minus 1 (rank 0 is the serving process)");
  }
  // The flags' checks as rank 0 made them (and the build's and machine's: CUDA, NCCL, a GPU).
  RAG_RETURN_IF_ERROR(ModelLoadOptionsFor("cuda", CpuBackendOptions{}, flags).status());
#ifdef RAG_HAVE_NCCL
  RAG_ASSIGN_OR_RETURN(const KvCacheType kv_cache, ParseKvCacheType(flags.kv_cache));
  RAG_ASSIGN_OR_RETURN(
      ProcessGroupPlan plan,
      PlanProcessGroup(model_dir, CudaOptionsFor(kv_cache, flags), flags, rank, device));
  return FollowTpProcessGroup(plan.process, plan.settings, plan.parallel, plan.factory);
#else
  (void)model_dir;
  (void)device;
  return Unavailable("rag tp-worker: this build has no tensor parallelism");
#endif
}

StatusOr<BertEncoderFactory> EmbedderEncoderFor(const std::string& device) {
  RAG_ASSIGN_OR_RETURN(ModelLoadOptions model, ModelLoadOptionsFor(device, CpuBackendOptions{}));
  if (!model.from_dir) return BertEncoderFactory{};  // the CPU
#ifdef RAG_HAVE_CUDA
  return BertEncoderFactory([](const BertHostWeights& w) { return CreateCudaBertEncoder(w, 0); });
#else
  return BertEncoderFactory{};
#endif
}

}  // namespace rag
