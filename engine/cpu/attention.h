// Causal grouped-query attention over the paged KV cache of backend.h, in fp32.
#pragma once

#include <cstdint>
#include <vector>

#include "common/thread_pool.h"

namespace rag {

// One layer's slice of the cache. Block b, KV head h, slot s starts at
// ((b * n_kv_heads + h) * block_size + s) * head_dim in `k` and `v`, so the keys of one head
// within a block are contiguous.
struct KvCacheLayer {
  float* k;  // (num_blocks, n_kv_heads, block_size, head_dim)
  float* v;  // (num_blocks, n_kv_heads, block_size, head_dim)
};

struct AttentionShape {
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
  int64_t block_size;
};

// One query token: its position and the block table of its sequence.
struct AttentionQuery {
  int64_t pos;                           // attends to positions [0, pos]
  const std::vector<int32_t>* block_table;
};

// Writes k and v of one token (each (n_kv_heads, head_dim)) to the slot of `pos`.
void WriteKv(const KvCacheLayer& cache, const AttentionShape& s,
             const std::vector<int32_t>& block_table, int64_t pos, const float* k, const float* v);

// out (n, n_heads * head_dim) = softmax(q k^T / sqrt(head_dim)) v for each query row of
// q (n, n_heads * head_dim); query head h reads KV head h / (n_heads / n_kv_heads). Keys and
// values of every attended position must already be in the cache. Parallel over (token, head).
void PagedAttention(const KvCacheLayer& cache, const AttentionShape& s,
                    const std::vector<AttentionQuery>& queries, const float* q, float* out,
                    ThreadPool* pool);

}  // namespace rag
