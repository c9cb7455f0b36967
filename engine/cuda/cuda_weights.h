// The Llama weights of the CUDA backend: bf16 in one device allocation, fused where one matrix
// product serves several projections (q|k|v rows in one matrix; gate|up rows in one), in the
// nn.Linear layout (out_features, in_features) row-major that the GEMV and cuBLAS calls take.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace rag {

struct CudaLayerWeights {
  const __nv_bfloat16* attn_norm;  // (dim)
  const __nv_bfloat16* wqkv;       // (q_dim + 2 * kv_dim, dim)
  const __nv_bfloat16* wo;         // (dim, q_dim)
  const __nv_bfloat16* mlp_norm;   // (dim)
  const __nv_bfloat16* w_gate_up;  // (2 * intermediate, dim)
  const __nv_bfloat16* w_down;     // (dim, intermediate)
};

struct CudaWeights {
  DeviceBuffer storage;  // every tensor below lives in it
  const __nv_bfloat16* embedding = nullptr;   // (vocab, dim)
  const __nv_bfloat16* final_norm = nullptr;  // (dim)
  const __nv_bfloat16* lm_head = nullptr;     // (vocab, dim); the embedding when tied
  std::vector<CudaLayerWeights> layers;
};

// Bytes the weights of `config` take on the device (alignment padding included).
size_t CudaWeightBytes(const ModelConfig& config);

// From safetensors (bf16 copied as is; fp16/fp32 rounded to bf16, nearest even), with the
// shape and name checks of LoadCpuWeights. ResourceExhausted when the GPU is too small.
StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& config, const SafetensorsReader& reader);

// From weights already in host memory as fp32 (a GGUF file dequantised by LoadCpuWeights).
StatusOr<CudaWeights> UploadCudaWeights(const ModelConfig& config, const CpuWeights& weights);

// Random weights of the config's shapes drawn on the device (`--load-format dummy`): matrices
// normal(0, 0.02) as gpt-fast's benchmark and transformers' initializer_range, norms 1.
StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& config, uint64_t seed);

}  // namespace rag
