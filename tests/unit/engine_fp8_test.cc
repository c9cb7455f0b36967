// The FP8 E4M3 codec (engine/fp8.h) against PyTorch's float8_e4m3fn
// (tests/data/fp8/e4m3_golden.json, made by tools/make_fp8_golden.py): all 256 codes decode to
// torch's values, and ~4500 floats (every midpoint between neighbouring codes and the floats next
// to it, powers of two, random values; both signs) encode to torch's codes. Saturation past 448
// is ours (torch makes NaN there) and is tested by hand.
#include "engine/fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/testing/golden_json.h"

namespace rag {
namespace {

TEST(Fp8E4m3Test, DecodesEveryCodeAsTorch) {
  const JsonValue golden = testing::LoadJsonFile(std::string(RAG_TEST_DATA_DIR) + "/fp8/e4m3_golden.json");
  const auto& decode = golden.Find("decode")->items();
  ASSERT_EQ(decode.size(), 256u);
  for (int code = 0; code < 256; ++code) {
    const float got = Fp8E4m3ToFloat(static_cast<uint8_t>(code));
    if (decode[code].is_null()) {
      EXPECT_TRUE(std::isnan(got)) << "code " << code;
    } else {
      EXPECT_EQ(got, static_cast<float>(decode[code].as_double())) << "code " << code;
    }
  }
}

TEST(Fp8E4m3Test, EncodesAsTorchWithinTheFiniteRange) {
  const JsonValue golden = testing::LoadJsonFile(std::string(RAG_TEST_DATA_DIR) + "/fp8/e4m3_golden.json");
  const auto& encode = golden.Find("encode")->items();
  ASSERT_GT(encode.size(), 4000u);
  int bad = 0;
  for (const JsonValue& pair : encode) {
    const float value = static_cast<float>(pair.items()[0].as_double());
    const int want = static_cast<int>(pair.items()[1].as_int());
    const int got = FloatToFp8E4m3(value);
    if (got != want && ++bad <= 10) ADD_FAILURE() << value << ": got " << got << ", torch " << want;
  }
  // Every finite code survives decode then encode.
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;
    EXPECT_EQ(FloatToFp8E4m3(Fp8E4m3ToFloat(static_cast<uint8_t>(code))), code);
  }
}

TEST(Fp8E4m3Test, SaturatesBeyondTheLargestFiniteValue) {
  EXPECT_EQ(FloatToFp8E4m3(448.0f), 0x7e);
  EXPECT_EQ(FloatToFp8E4m3(460.0f), 0x7e);
  EXPECT_EQ(FloatToFp8E4m3(1e30f), 0x7e);
  EXPECT_EQ(FloatToFp8E4m3(std::numeric_limits<float>::infinity()), 0x7e);
  EXPECT_EQ(FloatToFp8E4m3(-std::numeric_limits<float>::infinity()), 0xfe);
  EXPECT_EQ(FloatToFp8E4m3(std::nanf("")), 0x7f);
  EXPECT_EQ(Fp8E4m3ToFloat(0x7e), 448.0f);
  EXPECT_EQ(Fp8E4m3ToFloat(0x01), std::ldexp(1.0f, -9));  // the smallest subnormal
}

}  // namespace
}  // namespace rag
