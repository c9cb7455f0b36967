// `rag quantize`: a Llama model directory (safetensors, bf16/f16/f32) to FP8 weights. Every
// projection matrix of the decoder layers (q, k, v, o, gate, up, down) becomes F8_E4M3 (engine/
// fp8.h) with one F32 scale per output row beside it ("<name>_scale", shape [rows]): row r is
// stored as round(w_r / s_r) with s_r = max |w_r| / 448, so every row uses the format's whole
// range. Embeddings, norms and lm_head stay as they are (small, or most sensitive). The output
// directory gets one model.safetensors (written to a temporary file, then renamed), config.json
// with a "quantization_config" entry naming the format, and the tokenizer and generation files.
// Halves the weights of a bf16 model: Llama-3.1-70B's 141 GB become ~72 GB, one H100's worth.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace rag {

struct QuantizeReport {
  int64_t quantized = 0;     // matrices made FP8
  int64_t copied = 0;        // tensors written as they were
  uint64_t bytes_in = 0;     // tensor bytes read
  uint64_t bytes_out = 0;    // tensor bytes written
  double relative_rms_error = 0;  // sqrt(sum (w - dequant(w))^2 / sum w^2) over the FP8 matrices
};

// in_dir must hold config.json and the safetensors of a model without "quantization_config";
// out_dir must not be in_dir and must not hold a model.safetensors already unless `force`.
// progress(done, total) counts tensors.
StatusOr<QuantizeReport> QuantizeModelFp8(const std::string& in_dir, const std::string& out_dir,
                                          bool force,
                                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace rag
