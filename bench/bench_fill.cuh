// Random fills of the GPU micro-benchmarks (bench/*.cu): values from a hash of (element, seed),
// reproducible whatever the launch geometry. Included by .cu files only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rag_bench {

// Uniform in [lo, hi] (16 bits of resolution) for element i of a fill with this seed.
__device__ __forceinline__ float HashUniform(size_t i, uint32_t seed, float lo, float hi) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  return lo + (hi - lo) * static_cast<float>(h & 0xffff) / 65535.0f;
}

}  // namespace rag_bench
