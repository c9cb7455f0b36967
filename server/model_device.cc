#include "server/model_device.h"

#include "engine/kv_cache_type.h"

#ifdef RAG_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_bert.h"
#endif
#ifdef RAG_HAVE_NCCL
#include "engine/dist/tp_backend.h"
#endif

namespace rag {

StatusOr<ModelLoadOptions> ModelLoadOptionsFor(const std::string& device,
                                               const CpuBackendOptions& cpu,
                                               const GpuFlags& flags) {
  const int tp = flags.tp;
  RAG_ASSIGN_OR_RETURN(const KvCacheType kv_cache, ParseKvCacheType(flags.kv_cache));
  if (!(flags.memory_fraction > 0.0 && flags.memory_fraction <= 1.0)) {
    return InvalidArgument("--gpu-memory takes a fraction in (0, 1], not " +
                           std::to_string(flags.memory_fraction));
  }
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return InvalidArgument("--device must be auto, cpu or cuda, not \"" + device + "\"");
  }
  if (tp < 1 || tp > 8) return InvalidArgument("--tp takes 1 to 8 GPUs, not " + std::to_string(tp));
  if (tp > 1 && device == "cpu") return InvalidArgument("--tp " + std::to_string(tp) + " needs --device cuda");
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
  CudaBackendOptions gpu;
  gpu.kv_cache = kv_cache;
  gpu.memory_fraction = flags.memory_fraction;
  if (tp > 1) {
#ifdef RAG_HAVE_NCCL
    TensorParallelOptions parallel;
    parallel.world = tp;
    options.from_dir = [parallel, gpu](const std::string& dir) -> StatusOr<std::unique_ptr<Backend>> {
      RAG_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> b,
                           TensorParallelBackend::Create(dir, gpu, parallel));
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
