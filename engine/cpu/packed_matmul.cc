#include "engine/cpu/packed_matmul.h"

#include <algorithm>
#include <cstring>

#include "engine/cpu/simd.h"

namespace rag {
namespace {

using simd::Load8;
using simd::V8;

// R input rows (R <= 6) x one panel of 16 outputs; c[r] holds outputs 0-7 and 8-15.
template <int R>
__attribute__((always_inline)) inline void Block(const float* x, int64_t k, const float* panel,
                                                 float* out, int64_t m, int64_t cols) {
  V8 c[R][2] = {};
  for (int64_t j = 0; j < k; ++j) {
    const V8 b0 = Load8(panel + j * 16), b1 = Load8(panel + j * 16 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const float a = x[r * k + j];
      c[r][0] += b0 * a;
      c[r][1] += b1 * a;
    }
  }
  for (int r = 0; r < R; ++r) {
    float tmp[16];
    std::memcpy(tmp, &c[r][0], sizeof(V8));
    std::memcpy(tmp + 8, &c[r][1], sizeof(V8));
    std::memcpy(out + r * m, tmp, static_cast<size_t>(cols) * sizeof(float));
  }
}

}  // namespace

PackedWeights PackWeights(const float* w, int64_t m, int64_t k) {
  constexpr int64_t P = PackedWeights::kPanel;
  PackedWeights p;
  p.m = m;
  p.k = k;
  const int64_t panels = (m + P - 1) / P;
  p.data.assign(static_cast<size_t>(panels * k * P), 0.0f);
  for (int64_t q = 0; q < panels; ++q) {
    for (int64_t c = 0; c < P && q * P + c < m; ++c) {
      const float* row = w + (q * P + c) * k;
      float* dst = p.data.data() + q * k * P + c;
      for (int64_t j = 0; j < k; ++j) dst[j * P] = row[j];
    }
  }
  return p;
}

RAG_HOT_KERNEL
void MatMulPacked(const float* x, int64_t n, const PackedWeights& w, float* out) {
  constexpr int64_t P = PackedWeights::kPanel;
  const int64_t k = w.k, m = w.m, panels = (m + P - 1) / P;
  for (int64_t q = 0; q < panels; ++q) {  // one panel (k x 16 floats) stays in L1/L2
    const float* panel = w.data.data() + q * k * P;
    const int64_t cols = std::min(P, m - q * P);
    int64_t i = 0;
    for (; i + 6 <= n; i += 6) Block<6>(x + i * k, k, panel, out + i * m + q * P, m, cols);
    switch (n - i) {
      case 5: Block<5>(x + i * k, k, panel, out + i * m + q * P, m, cols); break;
      case 4: Block<4>(x + i * k, k, panel, out + i * m + q * P, m, cols); break;
      case 3: Block<3>(x + i * k, k, panel, out + i * m + q * P, m, cols); break;
      case 2: Block<2>(x + i * k, k, panel, out + i * m + q * P, m, cols); break;
      case 1: Block<1>(x + i * k, k, panel, out + i * m + q * P, m, cols); break;
      default: break;
    }
  }
}

}  // namespace rag
