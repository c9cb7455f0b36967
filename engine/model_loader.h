// Opens a model the way users name it: a Hugging Face directory (config.json, *.safetensors,
// tokenizer.json) or a single GGUF file (weights, config and tokenizer all in its metadata).
#pragma once

#include <functional>
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

// How LoadModel builds the backend. The engine library knows only the CPU backend; code that
// links another (the CUDA backend, engine/cuda/) passes factories for it, so the engine does
// not depend on CUDA.
struct ModelLoadOptions {
  CpuBackendOptions cpu;
  // When set: the backend of a Hugging Face directory (config.json + safetensors).
  std::function<StatusOr<std::unique_ptr<Backend>>(const std::string& dir)> from_dir;
  // When set: the backend over weights already in memory as fp32 (a dequantised GGUF file).
  std::function<StatusOr<std::unique_ptr<Backend>>(ModelConfig, CpuWeights)> from_weights;
};

// `path` is a directory or a file ending in .gguf. Errors name the file or tensor at fault.
StatusOr<LoadedModel> LoadModel(const std::string& path, const ModelLoadOptions& options);
// The same on the CPU backend.
StatusOr<LoadedModel> LoadModel(const std::string& path, const CpuBackendOptions& options);

}  // namespace rag
