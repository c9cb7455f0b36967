#include "common/status.h"

#include <gtest/gtest.h>

namespace rag {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Status Chain(int x, int* out) {
  RAG_ASSIGN_OR_RETURN(int h, Half(x));
  RAG_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(Status, OkAndErrorCarryCodeAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("doc 7");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: doc 7");
  EXPECT_EQ(s.WithPrefix("a.pdf").message(), "a.pdf: doc 7");
}

TEST(StatusOr, PropagatesThroughMacros) {
  int out = 0;
  EXPECT_TRUE(Chain(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status st = Chain(6, &out);  // 6 -> 3 -> odd
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "odd: 3");
}

TEST(StatusOr, ConstructingFromOkStatusIsAnError) {
  StatusOr<int> v = Status::Ok();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

TEST(StatusOrDeathTest, ValueOfErrorAborts) {
  StatusOr<int> v = Half(3);
  EXPECT_DEATH((void)v.value(), "odd: 3");
}

}  // namespace
}  // namespace rag
