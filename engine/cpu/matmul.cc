#include "engine/cpu/matmul.h"

#include <cstring>

#include "engine/cpu/parallel.h"
#include "engine/cpu/simd.h"

namespace rag {
namespace {

using simd::Load8;
using simd::Sum8;
using simd::V8;

// Four dot products of x with rows w0..w3 (length k): x is loaded once for all four.
__attribute__((always_inline)) inline void Dot4(const float* x, const float* w0, const float* w1, const float* w2,
                 const float* w3, int64_t k, float* out) {
  V8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    V8 xv = Load8(x + j);
    a0 += xv * Load8(w0 + j);
    a1 += xv * Load8(w1 + j);
    a2 += xv * Load8(w2 + j);
    a3 += xv * Load8(w3 + j);
  }
  float s0 = Sum8(a0), s1 = Sum8(a1), s2 = Sum8(a2), s3 = Sum8(a3);
  for (; j < k; ++j) {
    s0 += x[j] * w0[j];
    s1 += x[j] * w1[j];
    s2 += x[j] * w2[j];
    s3 += x[j] * w3[j];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

__attribute__((always_inline)) inline float Dot1(const float* a, const float* b, int64_t k) {
  V8 a0 = {}, a1 = {};
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    a0 += Load8(a + j) * Load8(b + j);
    a1 += Load8(a + j + 8) * Load8(b + j + 8);
  }
  for (; j + 8 <= k; j += 8) a0 += Load8(a + j) * Load8(b + j);
  float s = Sum8(a0 + a1);
  for (; j < k; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace

RAG_HOT_KERNEL
float Dot(const float* a, const float* b, int64_t k) { return Dot1(a, b, k); }

RAG_HOT_KERNEL
void MatMulRange(const float* x, int64_t n, int64_t k, const float* w, int64_t m,
                 int64_t m_begin, int64_t m_end, float* out) {
  // Blocks of 4 weight rows (4 * k floats, L1/L2-resident) are applied to every input row
  // before moving on, so w streams from memory once per call.
  int64_t r = m_begin;
  float tmp[4];
  for (; r + 4 <= m_end; r += 4) {
    const float* w0 = w + r * k;
    for (int64_t i = 0; i < n; ++i) {
      Dot4(x + i * k, w0, w0 + k, w0 + 2 * k, w0 + 3 * k, k, tmp);
      std::memcpy(out + i * m + r, tmp, sizeof(tmp));
    }
  }
  for (; r < m_end; ++r) {
    for (int64_t i = 0; i < n; ++i) out[i * m + r] = Dot1(x + i * k, w + r * k, k);
  }
}

void MatMul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* out,
            ThreadPool* pool) {
  // Chunks are multiples of 4 rows so that only the last one has a scalar tail.
  const int64_t groups = (m + 3) / 4;
  ParallelRows(pool, groups, 8, [&](int64_t g0, int64_t g1) {
    MatMulRange(x, n, k, w, m, g0 * 4, std::min(m, g1 * 4), out);
  });
}

}  // namespace rag
