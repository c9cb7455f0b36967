// What a GPU backend's KV cache stores (`--kv-cache`): kept apart from engine/cuda/ so that the
// command line checks the name in every build, with or without CUDA.
#pragma once

#include <string>

#include "common/status.h"

namespace rag {

// bf16, or e4m3 codes with a scale per (token, KV head) row (kernels.h, Fp8KvCache: half the
// bytes, so twice the tokens at once and half the attention reads). kAuto: FP8 for a model whose
// projections are FP8 (`rag quantize`; its users chose FP8 to fit the GPU, and the cache beside
// 70B FP8 weights on one H100 holds one 2k-token conversation in bf16), bf16 otherwise.
enum class KvCacheType { kAuto, kBf16, kFp8 };

// "auto", "bf16" or "fp8"; InvalidArgument naming the flag otherwise.
inline StatusOr<KvCacheType> ParseKvCacheType(const std::string& name) {
  if (name == "auto") return KvCacheType::kAuto;
  if (name == "bf16") return KvCacheType::kBf16;
  if (name == "fp8") return KvCacheType::kFp8;
  return InvalidArgument("--kv-cache takes auto, bf16 or fp8, not \"" + name + "\"");
}

inline const char* KvCacheTypeName(KvCacheType type) {
  switch (type) {
    case KvCacheType::kBf16:
      return "bf16";
    case KvCacheType::kFp8:
      return "fp8";
    case KvCacheType::kAuto:
      break;
  }
  return "auto";
}

}  // namespace rag
