// The Llama weights of the CUDA backend: bf16 in one device allocation, fused where one matrix
// product serves several projections (q|k|v rows in one matrix; gate|up rows in one), in the
// nn.Linear layout (out_features, in_features) row-major that the GEMV and cuBLAS calls take.
// An FP8 model (`rag quantize`, or dummy FP8 weights) keeps its decoder projections as e4m3 codes
// with a scale a row, in a second allocation; their bf16 pointers are then null.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/dist/tp_plan.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace rag {

// An FP8 projection: codes (rows, cols) e4m3 and scale (rows): row r is scale[r] * codes[r].
struct CudaFp8Matrix {
  const __nv_fp8_e4m3* codes = nullptr;
  const float* scale = nullptr;
};

struct CudaLayerWeights {
  const __nv_bfloat16* attn_norm;  // (dim)
  const __nv_bfloat16* wqkv;       // (q_dim + 2 * kv_dim, dim); null in an FP8 model
  const __nv_bfloat16* wo;         // (dim, q_dim)
  const __nv_bfloat16* mlp_norm;   // (dim)
  const __nv_bfloat16* w_gate_up;  // (2 * intermediate, dim)
  const __nv_bfloat16* w_down;     // (dim, intermediate)
  CudaFp8Matrix wqkv8, wo8, w_gate_up8, w_down8;  // the same in an FP8 model
};

struct CudaWeights {
  DeviceBuffer storage;  // every bf16 tensor below lives in it
  DeviceBuffer fp8_storage;  // an FP8 model's projection codes and scales
  bool fp8 = false;
  const __nv_bfloat16* embedding = nullptr;   // (vocab, dim)
  const __nv_bfloat16* final_norm = nullptr;  // (dim)
  const __nv_bfloat16* lm_head = nullptr;     // (lm_head_rows, dim); the embedding when tied
  // vocab on one GPU; a tensor-parallel rank's slice of the vocabulary (TpSlices::lm_rows, the
  // last rank's padded with zero rows)
  int64_t lm_head_rows = 0;
  std::vector<CudaLayerWeights> layers;
};

// Bytes the weights of `config` take on the device (alignment padding included); fp8: with the
// decoder projections as e4m3 codes and row scales.
size_t CudaWeightBytes(const ModelConfig& config, bool fp8 = false);

// From safetensors (bf16 copied as is; fp16/fp32 rounded to bf16, nearest even), with the
// shape and name checks of LoadCpuWeights. ResourceExhausted when the GPU is too small. A model
// whose projections are F8_E4M3 (`rag quantize`) keeps them as FP8 codes and scales.
StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& config, const SafetensorsReader& reader);
// A tensor-parallel rank's part (engine/dist/tp_plan.h) of the model of `config` (the whole
// model's): only those rows and columns of each tensor are read from the files. The weights
// have the shapes of RankConfig(config, slices.world), lm_head slices.lm_rows rows.
StatusOr<CudaWeights> LoadCudaWeights(const ModelConfig& config, const SafetensorsReader& reader,
                                      const TpSlices& slices);

// From weights already in host memory as fp32 (a GGUF file dequantised by LoadCpuWeights).
StatusOr<CudaWeights> UploadCudaWeights(const ModelConfig& config, const CpuWeights& weights);

// Random weights of the config's shapes drawn on the device (`--load-format dummy`): matrices
// normal(0, 0.02) as gpt-fast's benchmark and transformers' initializer_range, norms 1. fp8:
// the decoder projections as FP8 codes and scales of about the same distribution.
StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& config, uint64_t seed, bool fp8 = false);
// The same for a tensor-parallel rank (its own random draws, the shapes of its slices).
StatusOr<CudaWeights> DummyCudaWeights(const ModelConfig& config, uint64_t seed, bool fp8,
                                       const TpSlices& slices);

}  // namespace rag
