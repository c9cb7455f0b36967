// Splitting row ranges over a thread pool: the calling thread takes the first chunk, so a pool
// of num_threads - 1 workers keeps num_threads cores busy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <future>
#include <vector>

#include "common/thread_pool.h"

namespace rag {

// Runs fn(begin, end) over [0, n) in at most pool->size() + 1 contiguous chunks of at least
// min_chunk rows each, and waits for all of them. pool may be null (runs inline).
inline void ParallelRows(ThreadPool* pool, int64_t n, int64_t min_chunk,
                         const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int64_t max_chunks = pool == nullptr ? 1 : static_cast<int64_t>(pool->size()) + 1;
  int64_t chunks = std::clamp<int64_t>(n / std::max<int64_t>(min_chunk, 1), 1, max_chunks);
  if (chunks == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::future<void>> futures;
  futures.reserve(static_cast<size_t>(chunks - 1));
  for (int64_t c = 1; c < chunks; ++c) {
    int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    futures.push_back(pool->Async([&fn, begin, end] { fn(begin, end); }));
  }
  fn(0, n / chunks);
  for (auto& f : futures) f.get();
}

}  // namespace rag
