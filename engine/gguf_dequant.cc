#include "engine/gguf_dequant.h"

#include <cstring>
#include <string>

#include "engine/safetensors.h"  // Bf16ToFloat, F16ToFloat

namespace rag {
namespace {

constexpr int64_t kQK = 32;    // elements per block of the legacy quants (Q4_0, Q4_1, Q8_0)
constexpr int64_t kQKK = 256;  // elements per super-block of the K-quants

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float LoadF16(const uint8_t* p) { return F16ToFloat(LoadU16(p)); }

// Block: f16 d, 16 bytes of nibbles; value j is low nibbles (j < 16) then high nibbles, minus 8.
void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Block: f16 d, f16 m, 16 bytes of nibbles; value = d * q + m.
void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b), m = LoadF16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Block: f16 d, 32 int8.
void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[2 + j]));
}

// Q4_K's 6-bit scale and min of sub-block j (of 8) from the 12 packed bytes.
void ScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Super-block (144 bytes): f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles.
// Sub-block s (32 values) = (d * sc[s]) * q - (dmin * m[s]); each 32 bytes of nibbles hold two
// sub-blocks, low nibbles first.
void DequantQ4_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b), dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0; j < 4; ++j) {
    uint8_t sc0, m0, sc1, m1;
    ScaleMinK4(2 * j, scales, &sc0, &m0);
    ScaleMinK4(2 * j + 1, scales, &sc1, &m1);
    const float d0 = d * static_cast<float>(sc0), dm0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), dm1 = dmin * static_cast<float>(m1);
    for (int l = 0; l < 32; ++l) {
      y[64 * j + l] = d0 * static_cast<float>(q[32 * j + l] & 0x0F) - dm0;
      y[64 * j + 32 + l] = d1 * static_cast<float>(q[32 * j + l] >> 4) - dm1;
    }
  }
}

// Super-block (210 bytes): 128 bytes low nibbles (ql), 64 bytes of 2-bit highs (qh), 16 int8
// scales, f16 d. Value e = (d * scales[e / 16]) * (6-bit q - 32).
void DequantQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadF16(b + 208);
  for (int half = 0; half < 2; ++half) {
    float* yy = y + 128 * half;
    const uint8_t* l_ = ql + 64 * half;
    const uint8_t* h_ = qh + 32 * half;
    const int8_t* s_ = sc + 8 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((l_[l] & 0x0F) | (((h_[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((l_[l + 32] & 0x0F) | (((h_[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((l_[l] >> 4) | (((h_[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((l_[l + 32] >> 4) | (((h_[l] >> 6) & 3) << 4)) - 32;
      yy[l] = (d * static_cast<float>(s_[is + 0])) * static_cast<float>(q1);
      yy[l + 32] = (d * static_cast<float>(s_[is + 2])) * static_cast<float>(q2);
      yy[l + 64] = (d * static_cast<float>(s_[is + 4])) * static_cast<float>(q3);
      yy[l + 96] = (d * static_cast<float>(s_[is + 6])) * static_cast<float>(q4);
    }
  }
}

}  // namespace

const char* GgmlTypeName(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kQ4_0: return "Q4_0";
    case GgmlType::kQ4_1: return "Q4_1";
    case GgmlType::kQ5_0: return "Q5_0";
    case GgmlType::kQ5_1: return "Q5_1";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kQ8_1: return "Q8_1";
    case GgmlType::kQ2_K: return "Q2_K";
    case GgmlType::kQ3_K: return "Q3_K";
    case GgmlType::kQ4_K: return "Q4_K";
    case GgmlType::kQ5_K: return "Q5_K";
    case GgmlType::kQ6_K: return "Q6_K";
    case GgmlType::kQ8_K: return "Q8_K";
    case GgmlType::kBF16: return "BF16";
  }
  return "unknown";
}

GgmlTypeTraits GgmlTraits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return {1, 4, true};
    case GgmlType::kF16: return {1, 2, true};
    case GgmlType::kBF16: return {1, 2, true};
    case GgmlType::kQ4_0: return {kQK, 18, true};
    case GgmlType::kQ4_1: return {kQK, 20, true};
    case GgmlType::kQ5_0: return {kQK, 22, false};
    case GgmlType::kQ5_1: return {kQK, 24, false};
    case GgmlType::kQ8_0: return {kQK, 34, true};
    case GgmlType::kQ8_1: return {kQK, 36, false};
    case GgmlType::kQ2_K: return {kQKK, 84, false};
    case GgmlType::kQ3_K: return {kQKK, 110, false};
    case GgmlType::kQ4_K: return {kQKK, 144, true};
    case GgmlType::kQ5_K: return {kQKK, 176, false};
    case GgmlType::kQ6_K: return {kQKK, 210, true};
    case GgmlType::kQ8_K: return {kQKK, 292, false};
  }
  return {};
}

Status Dequantize(GgmlType type, const uint8_t* data, int64_t n, float* out) {
  const GgmlTypeTraits t = GgmlTraits(static_cast<uint32_t>(type));
  if (t.block_elems == 0 || !t.can_dequantize) {
    return Unsupported(std::string("ggml type ") + GgmlTypeName(static_cast<uint32_t>(type)) +
                       " (" + std::to_string(static_cast<uint32_t>(type)) +
                       ") cannot be dequantised (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)");
  }
  if (n < 0 || n % t.block_elems != 0) {
    return InvalidArgument(std::to_string(n) + " values are not a whole number of " +
                           GgmlTypeName(static_cast<uint32_t>(type)) + " blocks");
  }
  const int64_t blocks = n / t.block_elems;
  for (int64_t i = 0; i < blocks; ++i) {
    const uint8_t* b = data + static_cast<size_t>(i) * t.block_bytes;
    float* y = out + i * t.block_elems;
    switch (type) {
      case GgmlType::kF32: std::memcpy(y, b, 4); break;
      case GgmlType::kF16: *y = F16ToFloat(LoadU16(b)); break;
      case GgmlType::kBF16: *y = Bf16ToFloat(LoadU16(b)); break;
      case GgmlType::kQ4_0: DequantQ4_0(b, y); break;
      case GgmlType::kQ4_1: DequantQ4_1(b, y); break;
      case GgmlType::kQ8_0: DequantQ8_0(b, y); break;
      case GgmlType::kQ4_K: DequantQ4_K(b, y); break;
      case GgmlType::kQ6_K: DequantQ6_K(b, y); break;
      default: break;  // excluded by can_dequantize
    }
  }
  return Status::Ok();
}

}  // namespace rag
