// Which backend runs the model: `--device cpu|cuda|auto` of query, serve, generate and
// eval-answers. The CUDA backend is linked in only when the build has it (RAG_HAVE_CUDA); the
// engine's loader stays CUDA-free and takes the backend factories from here.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/bert/embedder.h"
#include "engine/model_loader.h"
#include "server/gpu_flags.h"

namespace rag {

// "cpu"; "cuda" (Unavailable when this build has no CUDA backend or no GPU is present); "auto"
// (cuda when possible, else cpu). InvalidArgument for another name. gpu.tp > 1: the model split
// over GPUs 0..tp-1 (engine/dist/tp_backend.h; a safetensors model directory, a build with
// NCCL and that many GPUs; InvalidArgument with --device cpu). gpu.kv_cache: the CUDA backend's
// KV cache, "auto", "bf16" or "fp8" (engine/kv_cache_type.h); "fp8" where the
// model runs on the CPU is an InvalidArgument (the CPU backend's cache is fp32).
// gpu.memory_fraction: CudaBackendOptions::memory_fraction, in (0, 1].
StatusOr<ModelLoadOptions> ModelLoadOptionsFor(const std::string& device,
                                               const CpuBackendOptions& cpu,
                                               const GpuFlags& gpu = {});

// Where the sentence embedder's encoder runs for the same `device`: the CUDA BERT encoder on
// GPU 0 when cuda or auto finds one (an empty factory otherwise: the CPU encoder); the same
// errors as above.
StatusOr<BertEncoderFactory> EmbedderEncoderFor(const std::string& device);

}  // namespace rag
