// fp32 matrix kernels of the CPU backend. Row-major; weights in the nn.Linear layout
// (out_features, in_features), so every dot product runs over two contiguous rows.
#pragma once

#include <cstdint>

#include "common/thread_pool.h"

namespace rag {

// out (n, m) = x (n, k) * w^T, with w (m, k). The m output columns are split over the pool
// (null: the calling thread only). Each row of w is read once per call, whatever n is.
void MatMul(const float* x, int64_t n, int64_t k, const float* w, int64_t m, float* out,
            ThreadPool* pool);

// The same for output columns [m_begin, m_end) on the calling thread; out keeps row stride m.
void MatMulRange(const float* x, int64_t n, int64_t k, const float* w, int64_t m,
                 int64_t m_begin, int64_t m_end, float* out);

// Dot product of two contiguous vectors of length k.
float Dot(const float* a, const float* b, int64_t k);

}  // namespace rag
