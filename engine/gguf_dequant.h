// ggml tensor types and their conversion to fp32, bit-exact with gguf-py's dequantize (numpy,
// fp32 arithmetic in the same order) so that logits can be compared with transformers, which
// loads GGUF files through gguf-py.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace rag {

// The values are ggml's type ids as stored in GGUF tensor infos.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kBF16 = 30,
};

// "Q4_K", or "type 23" for ids we do not know.
const char* GgmlTypeName(uint32_t type);

struct GgmlTypeTraits {
  int64_t block_elems = 0;  // values per block (1 for plain floats)
  size_t block_bytes = 0;   // bytes per block
  bool can_dequantize = false;
};
// Zero block_elems for unknown type ids. Known types that we cannot dequantise (Q5_0, Q2_K...)
// still have sizes so that a file holding them opens and the error comes when it is read.
GgmlTypeTraits GgmlTraits(uint32_t type);

// Converts `n` values (a multiple of the block) stored at `data` to fp32. Unsupported naming
// the type when it cannot be dequantised; InvalidArgument when n is not a whole number of blocks.
Status Dequantize(GgmlType type, const uint8_t* data, int64_t n, float* out);

}  // namespace rag
