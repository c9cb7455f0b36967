// FP8 E4M3 ("e4m3fn": 1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities, the
// all-ones codes are NaN, the largest finite value is 448), the format of the weights `rag
// quantize` writes and the CUDA backend's FP8 kernels read (cuda_fp8.h's __nv_fp8_e4m3).
#pragma once

#include <cstdint>

namespace rag {

inline constexpr float kFp8E4m3Max = 448.0f;

// Exact: every code is a float (subnormals m * 2^-9; 0x7f and 0xff are NaN).
float Fp8E4m3ToFloat(uint8_t code);

// Nearest code, ties to even mantissa; finite values beyond +-448 (and infinities) saturate to
// +-448 (the "satfinite" conversion of CUDA); NaN gives 0x7f.
uint8_t FloatToFp8E4m3(float value);

}  // namespace rag
