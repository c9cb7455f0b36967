// The configurations of the published Llama 3.1 models by name, for `--load-format dummy`
// (random weights of the real shapes, to measure speed without the real files) and benchmarks.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/model_config.h"

namespace rag {

// "8b", "70b" or "405b" (Llama-3.1-8B/70B/405B: config.json of the Hugging Face releases, which
// Hermes 3 shares); InvalidArgument naming the known shapes otherwise.
StatusOr<ModelConfig> LlamaShapeConfig(const std::string& name);

// Parameters of a Llama model of this config (embedding, lm_head unless tied, norms, layers).
int64_t LlamaParameterCount(const ModelConfig& config);

}  // namespace rag
