// The vector helpers of the CPU kernels (matmul.cc, packed_matmul.cc); include from .cc files.
//
// RAG_HOT_KERNEL compiles a function twice, for AVX2+FMA machines (x86-64-v3) and for any
// x86-64, and the loader picks one at run time; the binary itself needs only x86-64. The
// 32-byte vector helpers are always inlined into such kernels, so the ABI note GCC gives for
// passing them by value without AVX never applies (hence the pragma).
#pragma once

#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#define RAG_HOT_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RAG_HOT_KERNEL
#endif

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rag::simd {

typedef float V8 __attribute__((vector_size(32)));

__attribute__((always_inline)) inline V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

__attribute__((always_inline)) inline float Sum8(const V8& v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

}  // namespace rag::simd
