#include "engine/fp8.h"

#include <cmath>

namespace rag {

float Fp8E4m3ToFloat(uint8_t code) {
  const int exponent = (code >> 3) & 15, mantissa = code & 7;
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  if (exponent == 15 && mantissa == 7) return std::nanf("");
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
}

uint8_t FloatToFp8E4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float a = std::fabs(value);
  if (a >= kFp8E4m3Max) return sign | 0x7e;  // saturate (infinity included)
  // Below the smallest normal (2^-6) the grid is 2^-9 everywhere; a value rounding up to 8 steps
  // is the smallest normal, whose code is 8 too. nearbyint rounds ties to even.
  if (a < std::ldexp(1.0f, -6)) return sign | static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9)));
  int e2 = 0;
  std::frexp(a, &e2);  // a = f * 2^e2, f in [0.5, 1): the leading bit is 2^(e2 - 1)
  const int exponent = e2 - 1;  // in [-6, 8]
  int steps = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - exponent)));  // in [8, 16]
  int biased = exponent + 7;
  if (steps == 16) {  // rounded up to the next power of two
    steps = 8;
    ++biased;
  }
  const int code = (biased << 3) | (steps - 8);
  return sign | static_cast<uint8_t>(code > 0x7e ? 0x7e : code);
}

}  // namespace rag
