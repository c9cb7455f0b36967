// JSON helpers (built only with RAG_BUILD_SERVER, like nlohmann-json itself).
#include "common/json_util.h"

#include <gtest/gtest.h>

namespace rag {
namespace {

TEST(Json, StrictObjectParsing) {
  auto ok = ParseJsonObject(R"({"question":"q","top_k":3})", {"question", "top_k"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(GetString(*ok, "question").value(), "q");
  EXPECT_EQ(GetOptionalInt(*ok, "top_k").value().value(), 3);

  auto unknown = ParseJsonObject(R"({"question":"q","topk":3})", {"question", "top_k"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("topk"), std::string::npos);

  EXPECT_FALSE(ParseJsonObject("[1,2]", {}).ok());
  EXPECT_FALSE(ParseJsonObject("{\"a\":", {"a"}).ok());
  EXPECT_FALSE(ParseJsonObject("", {}).ok());

  auto wrong_type = ParseJsonObject(R"({"top_k":"five"})", {"top_k"});
  ASSERT_TRUE(wrong_type.ok());
  EXPECT_FALSE(GetOptionalInt(*wrong_type, "top_k").ok());
  EXPECT_FALSE(GetString(*wrong_type, "question").ok());
}

TEST(Json, DeepNestingIsRejectedBeforeParsing) {
  std::string deep(100000, '[');
  auto r = ParseJson(deep, 32);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("deeper"), std::string::npos);
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})", 2).ok());
}

// Found by tests/fuzz/json_fuzz: nlohmann-json throws out_of_range (not parse_error) for a number
// beyond a double, which escaped ParseJson; POST /v1/query {"top_k": 1e400} answered 500, not 400.
TEST(Json, NumberOverflowIsInvalidArgument) {
  for (const char* text : {R"({"question": "q", "top_k": 1e400})", "[-1e99999]", "1E+400"}) {
    auto r = ParseJsonObject(text, {"question", "top_k"});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << text;
  }
  EXPECT_TRUE(ParseJson("[1e308, -1e-400]").ok());  // in range, and underflow to 0 is fine
}

TEST(Json, ErrorBodyAndHttpCodes) {
  Json e = ErrorJson(NotFound("no document with id 7"));
  EXPECT_EQ(e["error"]["message"], "no document with id 7");
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_EQ(e["error"]["code"], "not_found");
  EXPECT_EQ(HttpCodeFor(InvalidArgument("x")), 400);
  EXPECT_EQ(HttpCodeFor(ResourceExhausted("x")), 413);
  EXPECT_EQ(HttpCodeFor(Unsupported("x")), 415);
  EXPECT_EQ(HttpCodeFor(Internal("x")), 500);
}

}  // namespace
}  // namespace rag
