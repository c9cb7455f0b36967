// Opens a model the way users name it: a Hugging Face directory (config.json, *.safetensors,
// tokenizer.json) or a single GGUF file (weights, config and tokenizer all in its metadata).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/tokenizer.h"

namespace rag {

struct LoadedModel {
  std::string name;  // the directory's or file's base name, for "which model answered"
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
};

// `path` is a directory or a file ending in .gguf. Errors name the file or tensor at fault.
StatusOr<LoadedModel> LoadModel(const std::string& path, const CpuBackendOptions& options);

}  // namespace rag
