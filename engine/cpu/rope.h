// Rotary position embeddings as transformers computes them for Llama: the default inverse
// frequencies, optionally rescaled by Llama 3.1's rule (`_compute_llama3_parameters`), and
// the rotate-half form (pairs i and i + head_dim / 2).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model_config.h"

namespace rag {

// (head_dim / 2) inverse frequencies, in fp32 with the same operation order as transformers,
// so that angles match to the last bit where the libm results do.
std::vector<float> ComputeRopeInvFreq(const ModelConfig& config);

// cos/sin of position `pos` for every frequency: out_cos, out_sin are (head_dim / 2).
void RopeCosSin(const std::vector<float>& inv_freq, int64_t pos, float* out_cos, float* out_sin);

// Rotates `n_heads` heads of `head_dim` values in place (x is (n_heads, head_dim)).
void ApplyRope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

}  // namespace rag
