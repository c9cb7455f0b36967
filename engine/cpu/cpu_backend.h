// The CPU backend: the correctness oracle for every other backend. Weights are converted to
// fp32 when loaded (bf16/fp16/fp32 files; bf16 storage with on-the-fly conversion is a later
// memory optimisation), and every operation runs in fp32, multithreaded over rows.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_weights.h"

namespace rag {

struct CpuBackendOptions {
  int num_threads = 0;  // 0: std::thread::hardware_concurrency()
  int block_size = 16;  // token slots per KV block
  // Blocks in the KV cache; 0: enough for one sequence of min(max_position_embeddings, 8192)
  // tokens. Memory: num_blocks * block_size * layers * 2 * n_kv_heads * head_dim * 4 bytes.
  int num_blocks = 0;
};

// Loads config.json (+ generation_config.json) and the safetensors weights of model_dir.
// Forward is not thread-safe: one call at a time (the engine loop is the only caller).
StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const std::string& model_dir,
                                                    const CpuBackendOptions& options);

// A backend over weights already loaded (a GGUF file, tests). The weights must have the shapes
// `config` implies (LoadCpuWeights checks them).
StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(ModelConfig config, CpuWeights weights,
                                                    const CpuBackendOptions& options);

}  // namespace rag
