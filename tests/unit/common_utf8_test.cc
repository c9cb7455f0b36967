// common/utf8.h: the one UTF-8 module the tokenizer, the citation offsets, the ingest decoders and
// the JSON reader share. Expected values follow the Unicode standard's table of well-formed
// byte sequences (chapter 3, table 3-7) and its "maximal subpart" practice for U+FFFD.
#include <gtest/gtest.h>

#include <string>

#include "common/utf8.h"

namespace rag {
namespace {

TEST(Utf8Test, CharLengthFollowsTheWellFormedTable) {
  EXPECT_EQ(Utf8CharLength("a", 0), 1u);
  EXPECT_EQ(Utf8CharLength("\xC3\xA9", 0), 2u);          // é
  EXPECT_EQ(Utf8CharLength("\xE2\x82\xAC", 0), 3u);      // €
  EXPECT_EQ(Utf8CharLength("\xF0\x9F\x98\x80", 0), 4u);  // 😀
  EXPECT_EQ(Utf8CharLength("\x80", 0), 0u);               // stray continuation byte
  EXPECT_EQ(Utf8CharLength("\xC0\xAF", 0), 0u);           // overlong '/'
  EXPECT_EQ(Utf8CharLength("\xE0\x9F\xBF", 0), 0u);       // overlong 3-byte form
  EXPECT_EQ(Utf8CharLength("\xED\xA0\x80", 0), 0u);       // surrogate U+D800
  EXPECT_EQ(Utf8CharLength("\xF4\x90\x80\x80", 0), 0u);   // above U+10FFFF
  EXPECT_EQ(Utf8CharLength("\xF5\x80\x80\x80", 0), 0u);   // no such lead byte
  EXPECT_EQ(Utf8CharLength("x\xE2\x82\xAC", 1), 3u);      // at an offset
}

TEST(Utf8Test, CutOffCharactersAreIncompleteOnlyWhileStillAValidPrefix) {
  bool incomplete = false;
  EXPECT_EQ(Utf8CharLength("\xE2\x82", 0, &incomplete), 0u);
  EXPECT_TRUE(incomplete);
  EXPECT_EQ(Utf8CharLength("\xE2\x41", 0, &incomplete), 0u);  // broken, not cut off
  EXPECT_FALSE(incomplete);
  EXPECT_EQ(Utf8CharLength("\xED\xA0", 0, &incomplete), 0u);  // can only become a surrogate
  EXPECT_FALSE(incomplete);
}

TEST(Utf8Test, ValidationFindsTheFirstBadByte) {
  EXPECT_TRUE(IsValidUtf8("plain ASCII, long enough for the 8-byte fast path"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_EQ(FindInvalidUtf8("abcdefghij\xFFk"), 10u);
  EXPECT_EQ(FindInvalidUtf8("ok\xE2\x82"), 2u);  // truncated at the end
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));
}

TEST(Utf8Test, PerByteAndMaximalSubpartReplacementDiffer) {
  // E2 82 is a cut-off euro sign, then 'A': per byte, two U+FFFD; as one maximal subpart, one.
  EXPECT_EQ(ReplaceInvalidUtf8Bytes("\xE2\x82" "A"), "\xEF\xBF\xBD\xEF\xBF\xBD" "A");
  std::string lossy;
  EXPECT_EQ(AppendUtf8Lossy("\xE2\x82" "A", /*keep_incomplete_tail=*/false, &lossy), 0u);
  EXPECT_EQ(lossy, "\xEF\xBF\xBD" "A");
  // A valid prefix at the end is held back when asked.
  lossy.clear();
  EXPECT_EQ(AppendUtf8Lossy("ab\xF0\x9F", /*keep_incomplete_tail=*/true, &lossy), 2u);
  EXPECT_EQ(lossy, "ab");
  EXPECT_EQ(ReplaceInvalidUtf8Bytes("caf\xC3\xA9"), "caf\xC3\xA9");  // valid text unchanged
}

TEST(Utf8Test, AppendEncodesEveryLength) {
  std::string out;
  for (uint32_t cp : {0x41u, 0xE9u, 0x20ACu, 0x1F600u}) AppendUtf8(cp, &out);
  EXPECT_EQ(out, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

}  // namespace
}  // namespace rag
