#include "retrieval/extractive_answerer.h"

#include <gtest/gtest.h>

#include "engine/citations.h"

namespace rag {
namespace {

TEST(ExtractiveAnswer, PicksTheSentenceThatAnswersAndCitesItsPassage) {
  const std::vector<std::string> passages = {
      "Debian has thousands of packages. The project was founded in 1993.",
      "The name Debian is pronounced Deb-ee-en. It combines the names of Debra and Ian Murdock.",
  };
  const std::string tagged = ExtractiveAnswer("How is Debian pronounced?", passages);
  ParsedAnswer a = ParseCitations(tagged, 2);
  ASSERT_FALSE(a.citations.empty()) << tagged;
  EXPECT_EQ(a.citations[0].text, "The name Debian is pronounced Deb-ee-en.");
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({1}));
  // Every cited text is verbatim in its passage.
  for (const auto& c : a.citations) {
    EXPECT_NE(passages[c.sources[0]].find(c.text), std::string::npos) << c.text;
  }
}

TEST(ExtractiveAnswer, NoSharedTermMeansNoAnswer) {
  EXPECT_EQ(ExtractiveAnswer("Which volcano erupted?", {"Apt installs packages."}), "");
  EXPECT_EQ(ExtractiveAnswer("", {"Apt installs packages."}), "");
  EXPECT_EQ(ExtractiveAnswer("apt", {}), "");
}

TEST(ExtractiveAnswer, DuplicateSentencesFromOverlappingChunksAppearOnce) {
  const std::string s = "Packages are installed with apt-get install.";
  const std::vector<std::string> passages = {"Intro. " + s, s + " Outro."};
  const std::string tagged = ExtractiveAnswer("How are packages installed?", passages);
  ParsedAnswer a = ParseCitations(tagged, 2);
  int count = 0;
  for (const auto& c : a.citations) count += c.text == s;
  EXPECT_EQ(count, 1) << tagged;
}

TEST(ExtractiveAnswer, RespectsMaxSentences) {
  std::vector<std::string> passages;
  for (int i = 0; i < 6; ++i) passages.push_back("Kernel modules load at boot number " + std::to_string(i) + ".");
  ExtractiveOptions opts;
  opts.max_sentences = 2;
  ParsedAnswer a = ParseCitations(ExtractiveAnswer("kernel modules boot", passages, opts), 6);
  EXPECT_LE(a.citations.size(), 2u);
  EXPECT_GE(a.citations.size(), 1u);
}

}  // namespace
}  // namespace rag

namespace rag {
namespace {

TEST(ExtractiveAnswer, ASentenceSharingOnlyACommonQuestionWordIsLeftOut) {
  const std::vector<std::string> passages = {
      "The harbour lighthouse was built in 1887 and still guides ships today.",
      "Backups happen every night. Reports happen weekly.",
  };
  ParsedAnswer a = ParseCitations(ExtractiveAnswer("What happened in 1887?", passages), 2);
  ASSERT_EQ(a.citations.size(), 1u) << a.answer;
  EXPECT_EQ(a.citations[0].sources, std::vector<int>({0}));
  EXPECT_EQ(a.answer, passages[0]);
}

}  // namespace
}  // namespace rag
