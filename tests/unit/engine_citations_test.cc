#include "engine/citations.h"

#include <gtest/gtest.h>

#include <random>

namespace rag {
namespace {

// The text of the answer between a citation's code-point offsets.
std::string Slice(const ParsedAnswer& a, const Citation& c) {
  std::u32string cps;
  std::string out;
  size_t cp = 0;
  for (size_t i = 0; i < a.answer.size(); ++i) {
    const bool lead = (static_cast<unsigned char>(a.answer[i]) & 0xC0) != 0x80;
    if (lead && i > 0) ++cp;
    if (cp >= c.start && cp < c.end) out += a.answer[i];
  }
  return out;
}

TEST(Citations, WellFormedTagsBecomeSpans) {
  ParsedAnswer a = ParseCitations(
      "Debian was founded in 1993. <co:2>It was started by Ian Murdock.</co> "
      "<co: 0, 1>It is named after Debra and Ian.</co: 0>\nCited Documents: 0, 1, 2", 3);
  EXPECT_EQ(a.answer,
            "Debian was founded in 1993. It was started by Ian Murdock. It is named after Debra and Ian.");
  ASSERT_EQ(a.citations.size(), 2u);
  EXPECT_EQ(a.citations[0].text, "It was started by Ian Murdock.");
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({2}));
  EXPECT_EQ(a.citations[1].text, "It is named after Debra and Ian.");
  EXPECT_EQ(a.citations[1].sources, std::vector<int>({0, 1}));
  for (const auto& c : a.citations) EXPECT_EQ(Slice(a, c), c.text);
}

TEST(Citations, OffsetsCountCodePointsNotBytes) {
  ParsedAnswer a = ParseCitations("Über café — <co:0>naïve 日本語 😀 text</co>", 1);
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_EQ(a.citations[0].text, "naïve 日本語 😀 text");
  EXPECT_EQ(a.citations[0].start, 12u);  // "Über café — " is 12 code points
  EXPECT_EQ(a.citations[0].end, 12u + 16u);
  EXPECT_EQ(Slice(a, a.citations[0]), a.citations[0].text);
}

TEST(Citations, UnclosedTagCitesToEndOfLine) {
  ParsedAnswer a = ParseCitations("<co:1>First fact.\nSecond line.", 2);
  EXPECT_EQ(a.answer, "First fact.\nSecond line.");
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_EQ(a.citations[0].text, "First fact.");
}

TEST(Citations, NextOpeningTagClosesTheOpenSpan) {
  ParsedAnswer a = ParseCitations("<co:0>One. <co:1>Two.</co>", 2);
  ASSERT_EQ(a.citations.size(), 2u);
  EXPECT_EQ(a.citations[0].text, "One.");
  EXPECT_EQ(a.citations[1].text, "Two.");
}

TEST(Citations, UnknownAndMalformedTagsStayText) {
  ParsedAnswer a = ParseCitations("a <b>bold</b> <co:x>y</co> <co>z <co:1 2> <cox:1>", 3);
  EXPECT_EQ(a.answer, "a <b>bold</b> <co:x>y <co>z <co:1 2> <cox:1>");
  EXPECT_TRUE(a.citations.empty());
}

TEST(Citations, OutOfRangeSourcesAreDropped) {
  ParsedAnswer a = ParseCitations("<co:7>Made up.</co> <co:0,9>Real.</co>", 2);
  EXPECT_EQ(a.answer, "Made up. Real.");
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_EQ(a.citations[0].text, "Real.");
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({0}));
}

TEST(Citations, StrayClosingTagsAndEmptySpansVanish) {
  ParsedAnswer a = ParseCitations("</co>Text</co:3>. <co:0></co> <co:0>   </co>", 1);
  EXPECT_EQ(a.answer, "Text.");
  EXPECT_TRUE(a.citations.empty());
}

TEST(Citations, CitedDocumentsLineIsDroppedAnywhereAndInAnyCase) {
  ParsedAnswer a = ParseCitations("  cited documents: 1\nAnswer.\nCITED DOCUMENTS: 0", 1);
  EXPECT_EQ(a.answer, "Answer.");
}

TEST(Citations, HugeNumbersAndTruncatedTagsDoNotCrash) {
  ParsedAnswer a = ParseCitations("<co:99999999999999999999>x</co> <co:1", 2);
  EXPECT_EQ(a.answer, "<co:99999999999999999999>x <co:1");
  EXPECT_TRUE(a.citations.empty());
}

// Found by tests/fuzz/citations_fuzz: stray continuation bytes counted as no code point, so a
// span of them was empty ([2, 2)) although its text was not.
TEST(Citations, InvalidUtf8BecomesReplacementCharacters) {
  ParsedAnswer a = ParseCitations("x <co:2>\x8a\x8a</co> \xc3 y", 3);
  EXPECT_EQ(a.answer, "x \uFFFD\uFFFD \uFFFD y");
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_EQ(a.citations[0].start, 2u);
  EXPECT_EQ(a.citations[0].end, 4u);
  EXPECT_EQ(a.citations[0].text, "\uFFFD\uFFFD");
  EXPECT_EQ(Slice(a, a.citations[0]), a.citations[0].text);
}

TEST(Citations, Utf8LengthCountsEachInvalidByte) {
  EXPECT_EQ(Utf8Length("a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80"), 4u);
  EXPECT_EQ(Utf8Length("\x8a\x8a"), 2u);        // stray continuation bytes
  EXPECT_EQ(Utf8Length("\xe6\x97"), 2u);        // truncated character
  EXPECT_EQ(Utf8Length("\xc0\xaf\xed\xa0\x80"), 5u);  // overlong '/', a surrogate
}

TEST(Citations, RandomTagSoupKeepsInvariants) {
  const std::vector<std::string> pieces = {"<co:", "<co: 1", ">", "</co>", "</co: 2>", "0", "1, 2",
                                           " ", "\n", "word", "é", "😀", "<", "</", "co", ",",
                                           "Cited Documents: 1\n", "<co:0>", "<co: 3, 1>"};
  std::mt19937 rng(42);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s;
    const int n = rng() % 30;
    for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    ParsedAnswer a = ParseCitations(s, 3);
    const size_t len = Utf8Length(a.answer);
    size_t prev_end = 0;
    for (const auto& c : a.citations) {
      ASSERT_LT(c.start, c.end) << s;
      ASSERT_LE(c.end, len) << s;
      ASSERT_GE(c.start, prev_end) << s;  // spans do not overlap and come in order
      prev_end = c.end;
      ASSERT_FALSE(c.sources.empty()) << s;
      for (int src : c.sources) ASSERT_TRUE(src >= 0 && src < 3) << s;
      ASSERT_EQ(Slice(a, c), c.text) << s;
    }
  }
}

}  // namespace
}  // namespace rag
