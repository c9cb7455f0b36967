// SplitSentences (chunker.h).
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "ingest/chunker.h"

namespace rag {
namespace {

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  for (const SentenceSpan& s : SplitSentences(text))
    out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

using Sentences = std::vector<std::string>;

TEST(IngestSentences, SplitsAtTerminalPunctuation) {
  EXPECT_EQ(Split("Hello world. This is a test! Is it? Yes."),
            (Sentences{"Hello world.", "This is a test!", "Is it?", "Yes."}));
  EXPECT_EQ(Split("  One.   Two.  "), (Sentences{"One.", "Two."}));
  EXPECT_EQ(Split(""), Sentences{});
  EXPECT_EQ(Split(" \n\n\t "), Sentences{});
  EXPECT_EQ(Split("no terminal punctuation"), Sentences{"no terminal punctuation"});
}

TEST(IngestSentences, KeepsAbbreviationsAndInitials) {
  EXPECT_EQ(Split("Dr. Smith met Mr. Jones in Washington. They talked."),
            (Sentences{"Dr. Smith met Mr. Jones in Washington.", "They talked."}));
  EXPECT_EQ(Split("Use a tool, e.g. A hammer, i.e. The big one. Done."),
            (Sentences{"Use a tool, e.g. A hammer, i.e. The big one.", "Done."}));
  EXPECT_EQ(Split("J. R. R. Tolkien wrote it. The U.S. Army read it."),
            (Sentences{"J. R. R. Tolkien wrote it.", "The U.S. Army read it."}));
  EXPECT_EQ(Split("See Fig. 3 and No. 5 here. It is no. Then more."),
            (Sentences{"See Fig. 3 and No. 5 here.", "It is no.", "Then more."}));
  EXPECT_EQ(Split("Smith et al. (2020) agree. So do we."),
            (Sentences{"Smith et al. (2020) agree.", "So do we."}));
}

TEST(IngestSentences, DecimalsVersionsAndLowercaseContinuations) {
  EXPECT_EQ(
      Split("Pi is 3.14 roughly. Version v1.2.3 is out. Call approx. five people."),
      (Sentences{"Pi is 3.14 roughly.", "Version v1.2.3 is out.", "Call approx. five people."}));
}

TEST(IngestSentences, EllipsesQuotesAndBrackets) {
  EXPECT_EQ(Split("Wait... what happened? He paused... Then he left."),
            (Sentences{"Wait... what happened?", "He paused...", "Then he left."}));
  EXPECT_EQ(Split("He said \"Stop.\" Then he left. (This is one.) This is two."),
            (Sentences{"He said \"Stop.\"", "Then he left.", "(This is one.)", "This is two."}));
  EXPECT_EQ(Split("She wrote \xE2\x80\x9CYes!\xE2\x80\x9D Then\xE2\x80\xA6 Nothing."),
            (Sentences{"She wrote \xE2\x80\x9CYes!\xE2\x80\x9D", "Then\xE2\x80\xA6", "Nothing."}));
  EXPECT_EQ(Split("Really?! Yes."), (Sentences{"Really?!", "Yes."}));
}

TEST(IngestSentences, BlankLinesListsAndWrappedLines) {
  EXPECT_EQ(Split("Heading without period\n\nBody text here."),
            (Sentences{"Heading without period", "Body text here."}));
  EXPECT_EQ(Split("Items:\n- one\n- two\n1. three"),
            (Sentences{"Items:", "- one", "- two", "1. three"}));
  EXPECT_EQ(Split("This sentence is\nwrapped over lines, and\nBob agrees."),
            (Sentences{"This sentence is\nwrapped over lines, and\nBob agrees."}));
  EXPECT_EQ(Split("It was built in\n1887 by the town."),
            (Sentences{"It was built in\n1887 by the town."}));
  EXPECT_EQ(Split("Short heading\nThe body starts here."),
            (Sentences{"Short heading", "The body starts here."}));
}

TEST(IngestSentences, CjkFullStops) {
  EXPECT_EQ(
      Split("\xE4\xBB\x8A\xE6\x97\xA5\xE3\x80\x82\xE6\x98\x8E\xE6\x97\xA5\xEF\xBC\x81"),
      (Sentences{"\xE4\xBB\x8A\xE6\x97\xA5\xE3\x80\x82", "\xE6\x98\x8E\xE6\x97\xA5\xEF\xBC\x81"}));
}

TEST(IngestSentences, PathologicalInputStaysLinear) {
  std::string lines, dots, abbrevs;
  for (int i = 0; i < 500000; ++i) lines += "X\n";
  dots = std::string(1 << 20, '.') + " Next.";
  for (int i = 0; i < 200000; ++i) abbrevs += "Dr. ";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(SplitSentences(lines).size(), 500000u);
  EXPECT_EQ(SplitSentences(dots).size(), 2u);
  EXPECT_EQ(SplitSentences(abbrevs).size(), 1u);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

// On random text: spans are ordered, trimmed, non-empty and cover every non-space byte.
TEST(IngestSentences, SpansCoverTheTextInOrder) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {
      "a",   "Bc",      "Dr",   "e.g", "3.14", ".",   ". ",           "! ",           "?",
      " ",   "\n",      "\n\n", "\"",  ")",    "...", "\xE2\x80\xA6", "\xE3\x80\x82", "- ",
      "1. ", "\xC3\xA9"};
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    const std::vector<SentenceSpan> spans = SplitSentences(text);
    size_t covered = 0;
    for (const SentenceSpan& s : spans) {
      ASSERT_LT(s.begin, s.end);
      ASSERT_LE(s.end, text.size());
      ASSERT_GE(s.begin, covered);
      EXPECT_FALSE(text[s.begin] == ' ' || text[s.begin] == '\n');
      EXPECT_FALSE(text[s.end - 1] == ' ' || text[s.end - 1] == '\n');
      for (size_t i = covered; i < s.begin; ++i) {
        ASSERT_TRUE(text[i] == ' ' || text[i] == '\n') << "gap byte in \"" << text << "\"";
      }
      covered = s.end;
    }
    for (size_t i = covered; i < text.size(); ++i) ASSERT_TRUE(text[i] == ' ' || text[i] == '\n');
  }
}

}  // namespace
}  // namespace rag
