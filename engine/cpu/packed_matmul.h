// Batched products against fixed weights (the BERT encoder's layers): the weights are packed
// once into panels of kPanel output rows, transposed so that for each input index the panel's
// kPanel weights are contiguous. The micro-kernel then keeps a block of up to 6 input rows x
// kPanel outputs in registers, broadcasting one input value and loading one panel column per
// step (12 FMAs per 8 loads instead of MatMulRange's 4 per 5): it runs at the FMA units' rate
// rather than the loads'. For many input rows only (packing costs one pass over the weights).
#pragma once

#include <cstdint>
#include <vector>

namespace rag {

struct PackedWeights {
  static constexpr int64_t kPanel = 16;
  int64_t m = 0, k = 0;    // the original (m, k) nn.Linear weight
  std::vector<float> data;  // panels of (k, kPanel), zero-padded past m
};

PackedWeights PackWeights(const float* w, int64_t m, int64_t k);

// out (n, m) row stride m, = x (n, k) w^T, on the calling thread.
void MatMulPacked(const float* x, int64_t n, const PackedWeights& w, float* out);

}  // namespace rag
