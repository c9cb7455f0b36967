#include "server/model_device.h"

#ifdef RAG_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_bert.h"
#endif

namespace rag {

StatusOr<ModelLoadOptions> ModelLoadOptionsFor(const std::string& device,
                                               const CpuBackendOptions& cpu) {
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return InvalidArgument("--device must be auto, cpu or cuda, not \"" + device + "\"");
  }
  ModelLoadOptions options;
  options.cpu = cpu;
  if (device == "cpu") return options;
#ifdef RAG_HAVE_CUDA
  if (!CudaDeviceAvailable()) {
    if (device == "cuda") return Unavailable("--device cuda: no CUDA device is present");
    return options;
  }
  options.from_dir = [](const std::string& dir) -> StatusOr<std::unique_ptr<Backend>> {
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b, CreateCudaBackend(dir, CudaBackendOptions{}));
    return std::unique_ptr<Backend>(std::move(b));
  };
  options.from_weights = [](ModelConfig config, CpuWeights weights) -> StatusOr<std::unique_ptr<Backend>> {
    RAG_ASSIGN_OR_RETURN(CudaWeights w, UploadCudaWeights(config, weights));
    weights = CpuWeights{};  // the host copy is no longer needed
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b,
                         CreateCudaBackend(std::move(config), std::move(w), CudaBackendOptions{}));
    return std::unique_ptr<Backend>(std::move(b));
  };
  return options;
#else
  if (device == "cuda") {
    return Unavailable("--device cuda: this build has no CUDA backend (configure with -DRAG_CUDA=ON)");
  }
  return options;
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
