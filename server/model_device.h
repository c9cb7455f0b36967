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

// gpu.tp_rendezvous ("host:port", with tp > 1): the ranks are processes and this one is rank 0,
// hosting the group there for `rag tp-worker` (RunTpFollower); InvalidArgument for a bad address.
//
// `rag tp-worker`: rank `rank` (1..tp-1) of the group rank 0 hosts at flags.tp_rendezvous, on GPU
// `device`, with the model at `model_dir` (the same model and flags as rank 0, which refuses a
// rank whose settings differ). Returns once rank 0 closes the group (Ok) or a step fails.
Status RunTpFollower(const std::string& model_dir, const GpuFlags& flags, int rank, int device);

// Where the sentence embedder's encoder runs for the same `device`: the CUDA BERT encoder on
// GPU 0 when cuda or auto finds one (an empty factory otherwise: the CPU encoder); the same
// errors as above.
StatusOr<BertEncoderFactory> EmbedderEncoderFor(const std::string& device);

}  // namespace rag
