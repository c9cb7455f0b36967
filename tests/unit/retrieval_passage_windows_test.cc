// PassageWindows: how the dense index cuts a chunk into the texts it embeds.
#include "retrieval/passage_windows.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace rag {
namespace {

std::string Words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? "  w" : "w") + std::to_string(i) + (i % 7 == 6 ? "\n" : "");
  return s;
}

std::vector<std::string> Split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

TEST(PassageWindowsTest, ShortTextsAreOneWindowAndBlankTextsNone) {
  EXPECT_TRUE(PassageWindows("").empty());
  EXPECT_TRUE(PassageWindows(" \n\t ").empty());
  const std::vector<std::string> one = PassageWindows("  Hello,\n  world.  ");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], "Hello, world.");
  const std::vector<std::string> full = PassageWindows(Words(kWindowWords));
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(Split(full[0]).size(), static_cast<size_t>(kWindowWords));
}

// Windows of kWindowWords words every kWindowStride words; the last reaches the final word and
// every word is in some window, in order.
TEST(PassageWindowsTest, OverlappingWindowsCoverEveryWord) {
  for (int n : {kWindowWords + 1, 200, 270, 1000, 2000}) {
    SCOPED_TRACE(n);
    const std::vector<std::string> words = Split(Words(n));
    const std::vector<std::string> windows = PassageWindows(Words(n));
    const size_t expected = static_cast<size_t>((n - kWindowWords + kWindowStride - 1) / kWindowStride + 1);
    if (expected <= static_cast<size_t>(kWindowSlots)) {
      EXPECT_EQ(windows.size(), expected);
    }
    ASSERT_LE(windows.size(), static_cast<size_t>(kWindowSlots));
    std::vector<bool> covered(words.size(), false);
    size_t prev_start = 0;
    for (size_t w = 0; w < windows.size(); ++w) {
      const std::vector<std::string> ww = Split(windows[w]);
      ASSERT_GE(ww.size(), 1u);
      // Find where it starts: its first word names its index.
      const size_t start = std::stoul(ww[0].substr(1));
      if (w > 0) {
        EXPECT_GT(start, prev_start);
      }
      prev_start = start;
      for (size_t i = 0; i < ww.size(); ++i) {
        ASSERT_EQ(ww[i], words[start + i]);
        covered[start + i] = true;
      }
    }
    for (size_t i = 0; i < words.size(); ++i) EXPECT_TRUE(covered[i]) << "word " << i;
    EXPECT_EQ(Split(windows.back()).back(), words.back());
  }
}

// A text longer than kWindowSlots windows of the usual stride gets a wider stride (and, past
// kWindowWords * kWindowSlots words, wider windows): still covered, never more than the slots.
TEST(PassageWindowsTest, HugeTextsStayWithinTheSlots) {
  for (int n : {static_cast<int>(kWindowStride * kWindowSlots + kWindowWords + 1), 5000, 20000}) {
    SCOPED_TRACE(n);
    const std::vector<std::string> windows = PassageWindows(Words(n));
    EXPECT_LE(windows.size(), static_cast<size_t>(kWindowSlots));
    size_t words = 0;
    for (const std::string& w : windows) words += Split(w).size();
    EXPECT_GE(words, static_cast<size_t>(n));  // overlapping windows: at least every word once
    EXPECT_EQ(Split(windows.back()).back(), "w" + std::to_string(n - 1));
  }
}

TEST(PassageWindowsTest, VectorIdsRoundTrip) {
  for (int64_t chunk : {0, 1, 77, 123456789}) {
    for (int64_t w : {int64_t{0}, int64_t{5}, kWindowSlots - 1}) {
      EXPECT_EQ(ChunkOfVector(WindowVectorId(chunk, w)), chunk);
      EXPECT_EQ(WindowVectorId(chunk, w) % kWindowSlots, w);
    }
  }
}

}  // namespace
}  // namespace rag
