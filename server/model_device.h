// Which backend runs the model: `--device cpu|cuda|auto` of query, serve, generate and
// eval-answers. The CUDA backend is linked in only when the build has it (RAG_HAVE_CUDA); the
// engine's loader stays CUDA-free and takes the backend factories from here.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/model_loader.h"

namespace rag {

// "cpu"; "cuda" (Unavailable when this build has no CUDA backend or no GPU is present); "auto"
// (cuda when possible, else cpu). InvalidArgument for another name.
StatusOr<ModelLoadOptions> ModelLoadOptionsFor(const std::string& device,
                                               const CpuBackendOptions& cpu);

}  // namespace rag
