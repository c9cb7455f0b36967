#include "engine/cpu/attention.h"

#include <cmath>
#include <cstring>

#include "engine/cpu/matmul.h"
#include "engine/cpu/parallel.h"

namespace rag {
namespace {

inline int64_t SlotOffset(const AttentionShape& s, int32_t block, int64_t kv_head, int64_t slot) {
  return ((static_cast<int64_t>(block) * s.n_kv_heads + kv_head) * s.block_size + slot) * s.head_dim;
}

// One query head of one token; scores is scratch of pos + 1 floats.
void AttendOne(const KvCacheLayer& cache, const AttentionShape& s, const AttentionQuery& query,
               int64_t head, const float* q, float* out, std::vector<float>* scores) {
  const int64_t kv_head = head / (s.n_heads / s.n_kv_heads);
  const int64_t len = query.pos + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  scores->resize(static_cast<size_t>(len));
  float* sc = scores->data();
  float max_score = -INFINITY;
  for (int64_t p0 = 0; p0 < len; p0 += s.block_size) {
    const int32_t block = (*query.block_table)[static_cast<size_t>(p0 / s.block_size)];
    const float* k = cache.k + SlotOffset(s, block, kv_head, 0);
    const int64_t n = std::min(s.block_size, len - p0);
    for (int64_t j = 0; j < n; ++j) {
      float x = Dot(q, k + j * s.head_dim, s.head_dim) * scale;
      sc[p0 + j] = x;
      max_score = std::max(max_score, x);
    }
  }
  double sum = 0;
  for (int64_t p = 0; p < len; ++p) {
    sc[p] = std::exp(sc[p] - max_score);
    sum += sc[p];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(s.head_dim));
  for (int64_t p0 = 0; p0 < len; p0 += s.block_size) {
    const int32_t block = (*query.block_table)[static_cast<size_t>(p0 / s.block_size)];
    const float* v = cache.v + SlotOffset(s, block, kv_head, 0);
    const int64_t n = std::min(s.block_size, len - p0);
    for (int64_t j = 0; j < n; ++j) {
      const float w = sc[p0 + j] * inv_sum;
      const float* vj = v + j * s.head_dim;
      for (int64_t d = 0; d < s.head_dim; ++d) out[d] += w * vj[d];
    }
  }
}

}  // namespace

void WriteKv(const KvCacheLayer& cache, const AttentionShape& s,
             const std::vector<int32_t>& block_table, int64_t pos, const float* k, const float* v) {
  const int32_t block = block_table[static_cast<size_t>(pos / s.block_size)];
  const int64_t slot = pos % s.block_size;
  const size_t bytes = sizeof(float) * static_cast<size_t>(s.head_dim);
  for (int64_t h = 0; h < s.n_kv_heads; ++h) {
    std::memcpy(cache.k + SlotOffset(s, block, h, slot), k + h * s.head_dim, bytes);
    std::memcpy(cache.v + SlotOffset(s, block, h, slot), v + h * s.head_dim, bytes);
  }
}

void PagedAttention(const KvCacheLayer& cache, const AttentionShape& s,
                    const std::vector<AttentionQuery>& queries, const float* q, float* out,
                    ThreadPool* pool) {
  const int64_t q_dim = s.n_heads * s.head_dim;
  const int64_t items = static_cast<int64_t>(queries.size()) * s.n_heads;
  ParallelRows(pool, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t it = begin; it < end; ++it) {
      const int64_t t = it / s.n_heads, h = it % s.n_heads;
      AttendOne(cache, s, queries[static_cast<size_t>(t)], h, q + t * q_dim + h * s.head_dim,
                out + t * q_dim + h * s.head_dim, &scores);
    }
  });
}

}  // namespace rag
