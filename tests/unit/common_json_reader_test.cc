#include "common/json_reader.h"

#include <gtest/gtest.h>

namespace rag {
namespace {

TEST(JsonReader, ParsesEveryKindOfValue) {
  auto v = ReadJson(R"( {"a": [1, -2.5e3, true, false, null, "x\"\\\/\n\u00e9\ud83d\ude00"],
                          "big": 12345678901234567890, "n": -0, "a": 7} )", "t");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const JsonValue* a = v->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->is_array());
  ASSERT_EQ(a->size(), 6u);
  EXPECT_EQ(a->items()[0].as_int(), 1);
  EXPECT_TRUE(a->items()[0].is_integer());
  EXPECT_DOUBLE_EQ(a->items()[1].as_double(), -2500.0);
  EXPECT_FALSE(a->items()[1].is_integer());
  EXPECT_TRUE(a->items()[2].as_bool());
  EXPECT_TRUE(a->items()[4].is_null());
  EXPECT_EQ(a->items()[5].as_string(), "x\"\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  const JsonValue* big = v->Find("big");
  EXPECT_FALSE(big->is_integer());  // beyond int64: a double only
  EXPECT_DOUBLE_EQ(big->as_double(), 12345678901234567890.0);
  EXPECT_EQ(v->members().size(), 4u);  // repeated keys are kept; Find gives the first
}

TEST(JsonReader, RejectsMalformedInputWithItsOffset) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"abc", "\"\\x\"", "tru",
                          "\"\\ud800\"", "\"\\udc00\"", "{\"a\" 1}", "[1 2]", "1 2", "\"a\nb\"",
                          "{1:2}", "nul"}) {
    auto v = ReadJson(bad, "config.json");
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.status().message().find("config.json: malformed JSON at byte"), std::string::npos);
  }
}

TEST(JsonReader, LimitsNestingWithoutRecursingDeeply) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto v = ReadJson(deep, "deep", 64);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("nesting"), std::string::npos);
  EXPECT_TRUE(ReadJson(std::string(64, '[') + std::string(64, ']'), "ok", 64).ok());
}

}  // namespace
}  // namespace rag
