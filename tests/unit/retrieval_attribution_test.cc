#include <gtest/gtest.h>

#include "engine/citations.h"
#include "retrieval/answer_attribution.h"
#include "retrieval/extractive_answerer.h"

namespace rag {
namespace {

const std::vector<std::string> kPassages = {
    "Debian was founded in 1993 by Ian Murdock. The project has thousands of volunteers.",
    "The apt tool installs packages from repositories. It resolves dependencies automatically.",
};

// Code points of `needle` inside `text` as [start, end).
std::pair<size_t, size_t> CodePointSpan(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  const size_t start = Utf8Length(std::string_view(text).substr(0, at));
  return {start, start + Utf8Length(needle)};
}

TEST(AnswerAttribution, UntaggedSentencesAreAttributedToTheSupportingSpan) {
  ParsedAnswer parsed = ParseCitations("Dependencies are resolved automatically.", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_TRUE(a.unsupported.empty());
  const VerifiedCitation& c = a.citations[0];
  EXPECT_FALSE(c.from_tag);
  EXPECT_EQ(c.sources, std::vector<int>({1}));
  EXPECT_EQ(c.start, 0u);
  EXPECT_EQ(c.end, Utf8Length(parsed.answer));
  ASSERT_EQ(c.support.size(), 1u);
  EXPECT_DOUBLE_EQ(c.support[0].score, 1.0);
  // The window is the passage sentence that says it (one sentence, the tighter span).
  auto [s, e] = CodePointSpan(kPassages[1], "It resolves dependencies automatically.");
  EXPECT_EQ(c.support[0].passage_start, s);
  EXPECT_EQ(c.support[0].passage_end, e);
  EXPECT_EQ(a.claim_sentences, 1);
}

TEST(AnswerAttribution, SentencesWithoutSupportAreUnsupportedAndNeverCited) {
  ParsedAnswer parsed = ParseCitations(
      "Debian was founded in 1993 by Ian Murdock. Penguins migrate across frozen oceans yearly.", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({0}));
  ASSERT_EQ(a.unsupported.size(), 1u);
  EXPECT_EQ(a.unsupported[0].text, "Penguins migrate across frozen oceans yearly.");
  auto [s, e] = CodePointSpan(parsed.answer, a.unsupported[0].text);
  EXPECT_EQ(a.unsupported[0].start, s);
  EXPECT_EQ(a.unsupported[0].end, e);
  EXPECT_EQ(a.claim_sentences, 2);
}

TEST(AnswerAttribution, TaggedSentenceKeepsAVerifiedSource) {
  ParsedAnswer parsed = ParseCitations("<co:0>Ian Murdock founded Debian in 1993.</co>", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_TRUE(a.citations[0].from_tag);
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({0}));
  EXPECT_EQ(a.tag_pairs, 1);
  EXPECT_EQ(a.tag_pairs_supported, 1);
}

TEST(AnswerAttribution, WrongCitationIsDroppedAndTheRightPassageFound) {
  // The model cites Document:0 for a fact of Document:1.
  ParsedAnswer parsed = ParseCitations("<co:0>The apt tool installs packages from repositories.</co>", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_EQ(a.citations.size(), 1u);
  EXPECT_FALSE(a.citations[0].from_tag);
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({1}));
  EXPECT_EQ(a.tag_pairs, 1);
  EXPECT_EQ(a.tag_pairs_supported, 0);
}

TEST(AnswerAttribution, WrongCitationOfAnUnsupportedClaimIsUnsupported) {
  ParsedAnswer parsed = ParseCitations("<co:1>Volcanoes erupt lava near coastal villages.</co>", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  EXPECT_TRUE(a.citations.empty());
  ASSERT_EQ(a.unsupported.size(), 1u);
}

TEST(AnswerAttribution, TwoSentenceWindowSupportsAFusedSentence) {
  ParsedAnswer parsed = ParseCitations("Debian volunteers number in the thousands since Murdock founded it.", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_EQ(a.citations.size(), 1u);
  // The window spans both sentences of passage 0.
  EXPECT_EQ(a.citations[0].support[0].passage_start, 0u);
  EXPECT_EQ(a.citations[0].support[0].passage_end, Utf8Length(kPassages[0]));
}

TEST(AnswerAttribution, NonAsciiOffsetsAreCodePoints) {
  const std::vector<std::string> passages = {
      "Über den Fluss führt eine Brücke. Die Brücke wurde 1887 gebaut und ist aus Stein."};
  ParsedAnswer parsed = ParseCitations("Café first. Die Brücke wurde 1887 aus Stein gebaut.", 1);
  AttributedAnswer a = AttributeAnswer(parsed, passages);
  ASSERT_EQ(a.citations.size(), 1u);
  auto [s, e] = CodePointSpan(parsed.answer, "Die Brücke wurde 1887 aus Stein gebaut.");
  EXPECT_EQ(a.citations[0].start, s);
  EXPECT_EQ(a.citations[0].end, e);
  auto [ps, pe] = CodePointSpan(passages[0], "Die Brücke wurde 1887 gebaut und ist aus Stein.");
  EXPECT_EQ(a.citations[0].support[0].passage_start, ps);
  EXPECT_EQ(a.citations[0].support[0].passage_end, pe);
}

TEST(AnswerAttribution, ShortSentencesAreNotClaims) {
  ParsedAnswer parsed = ParseCitations("Yes. Indeed.", 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  EXPECT_EQ(a.claim_sentences, 0);
  EXPECT_TRUE(a.citations.empty());
  EXPECT_TRUE(a.unsupported.empty());
}

TEST(AnswerAttribution, ExtractiveAnswersAreFullySupported) {
  const std::string tagged = ExtractiveAnswer("Who founded Debian and when?", kPassages);
  ParsedAnswer parsed = ParseCitations(tagged, 2);
  AttributedAnswer a = AttributeAnswer(parsed, kPassages);
  ASSERT_GT(a.claim_sentences, 0) << tagged;
  EXPECT_TRUE(a.unsupported.empty()) << tagged;
  EXPECT_EQ(static_cast<int>(a.citations.size()), a.claim_sentences);
  EXPECT_EQ(a.tag_pairs, a.tag_pairs_supported);
  for (const auto& c : a.citations) EXPECT_TRUE(c.from_tag);
}

TEST(AnswerAttribution, EmptyInputsNeverCrash) {
  EXPECT_TRUE(AttributeAnswer(ParseCitations("", 0), {}).citations.empty());
  AttributedAnswer a = AttributeAnswer(ParseCitations("Some claim about packages here.", 0), {});
  EXPECT_EQ(a.unsupported.size(), 1u);
  EXPECT_EQ(BestSupport("", "text", 0).score, 0.0);
}

}  // namespace
}  // namespace rag
