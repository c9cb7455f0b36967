#include "engine/stop_strings.h"

#include <gtest/gtest.h>

#include <random>

namespace rag {
namespace {

// Feeds text in the given piece sizes and returns everything emitted.
std::string Stream(StopStringMatcher& m, const std::string& text, const std::vector<size_t>& sizes) {
  std::string out;
  size_t pos = 0, i = 0;
  while (pos < text.size() && !m.stopped()) {
    const size_t n = std::min(sizes[i++ % sizes.size()], text.size() - pos);
    out += m.Feed(std::string_view(text).substr(pos, n));
    pos += n;
  }
  return out + m.Flush();
}

TEST(StopStrings, StopsBeforeAStringSplitAcrossPieces) {
  StopStringMatcher m({"</answer>", "\n\nUser:"});
  EXPECT_EQ(Stream(m, "The answer is 42.</answer> ignored", {1, 2, 3}), "The answer is 42.");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Feed("more"), "");
}

TEST(StopStrings, HeldPrefixIsReleasedWhenItTurnsOutHarmless) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(m.Feed("abc ST"), "abc ");
  EXPECT_EQ(m.Feed("ART"), "START");
  EXPECT_EQ(m.Feed("ST"), "");
  EXPECT_EQ(m.Flush(), "ST");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStringMatcher m({"bc", "abcd", ""});
  EXPECT_EQ(Stream(m, "xxabcd", {6}), "xx");  // "abcd" starts before "bc"
}

TEST(StopStrings, AnySplitGivesTheSameResultAsWholeText) {
  const std::vector<std::string> stops = {"<|im_end|>", "Cited Documents:", "\n\n\n"};
  const std::string text = "Para one.\n\nPara two <co:1>x</co>. Cited Docs: no. <|im_en <|im_end|> tail";
  const std::string expected = text.substr(0, text.find("<|im_end|>"));
  std::mt19937 rng(3);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<size_t> sizes;
    for (int k = 0; k < 8; ++k) sizes.push_back(1 + rng() % 7);
    StopStringMatcher m(stops);
    ASSERT_EQ(Stream(m, text, sizes), expected);
    ASSERT_TRUE(m.stopped());
  }
}

}  // namespace
}  // namespace rag
