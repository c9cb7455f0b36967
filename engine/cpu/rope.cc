#include "engine/cpu/rope.h"

#include <cmath>

namespace rag {

std::vector<float> ComputeRopeInvFreq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), every step in fp32.
  const float base = static_cast<float>(c.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
    inv_freq[static_cast<size_t>(i)] = 1.0f / p;
  }
  if (c.rope_scaling.type != "llama3") return inv_freq;

  // _compute_llama3_parameters: long wavelengths are divided by `factor`, short ones kept,
  // the band between interpolated smoothly. Python scalars meet fp32 tensors, hence the casts.
  const RopeScaling& s = c.rope_scaling;
  const float factor = static_cast<float>(s.factor);
  const float low = static_cast<float>(s.low_freq_factor);
  const float high = static_cast<float>(s.high_freq_factor);
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const float low_freq_wavelen = static_cast<float>(old_len / s.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(old_len / s.high_freq_factor);
  const float two_pi = static_cast<float>(2 * M_PI);
  for (float& f : inv_freq) {
    float wavelen = two_pi / f;
    float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
      float smooth = (static_cast<float>(old_len) / wavelen - low) / (high - low);
      scaled = (1 - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv_freq;
}

void RopeCosSin(const std::vector<float>& inv_freq, int64_t pos, float* out_cos, float* out_sin) {
  const float p = static_cast<float>(pos);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    float angle = inv_freq[i] * p;  // one fp32 rounding, as transformers' fp32 matmul
    out_cos[i] = std::cos(angle);
    out_sin[i] = std::sin(angle);
  }
}

void ApplyRope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cos[i] - x2 * sin[i];
      v[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

}  // namespace rag
