// ParsePlainText, and the decoding helpers it shares with the Markdown and HTML parsers.
#include <gtest/gtest.h>

#include <string>

#include "common/file_util.h"
#include "common/utf8.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"
#include "ingest/text_util.h"

namespace rag {
namespace {

ParsedDocument ParseOk(std::string_view bytes, const std::string& name = "notes.txt") {
  StatusOr<ParsedDocument> doc = ParsePlainText(bytes, name);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return {};
  const Status check = CheckParsedDocument(*doc);
  EXPECT_TRUE(check.ok()) << check.ToString();
  return *doc;
}

TEST(IngestTextParser, SampleFileHasPagesTitleAndNoCarriageReturns) {
  const StatusOr<std::string> bytes =
      ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/sample.txt");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ASSERT_TRUE(bytes->starts_with("\xEF\xBB\xBF"));  // the file really has a BOM and CRLF
  ASSERT_NE(bytes->find("\r\n"), std::string::npos);
  const ParsedDocument doc = ParseOk(*bytes, "sample.txt");
  EXPECT_EQ(doc.format, "text");
  EXPECT_EQ(doc.title, "Field Guide to Tide Pools");
  ASSERT_EQ(doc.pages.size(), 3u);
  EXPECT_EQ(doc.pages[0].text,
            "Field Guide to Tide Pools\n\nTide pools form where the sea leaves water behind at "
            "low tide.\nAnemones and crabs live in them.");
  EXPECT_EQ(doc.pages[1].text,
            "Page two describes the starfish. A starfish can regrow a lost arm.\n\nVisitors "
            "should not lift the rocks.");
  EXPECT_EQ(doc.pages[2].text, "The third page is short.");
}

TEST(IngestTextParser, FormFeedsMakePagesButATrailingOneDoesNot) {
  const ParsedDocument doc = ParseOk("one\fthree\f");  // like pdftotext output
  ASSERT_EQ(doc.pages.size(), 2u);
  EXPECT_EQ(doc.pages[1].number, 2);
  const ParsedDocument gap = ParseOk("one\f\fthree");
  ASSERT_EQ(gap.pages.size(), 3u);
  EXPECT_EQ(gap.pages[1].text, "");
  EXPECT_EQ(gap.pages[2].text, "three");
}

TEST(IngestTextParser, NormalizesNewlinesBlankLinesAndTrailingSpace) {
  const ParsedDocument doc =
      ParseOk("\n\n  Title line  \r\nnext\rline \t\n\n\n\n\nlast\x01 one\n\n");
  ASSERT_EQ(doc.pages.size(), 1u);
  EXPECT_EQ(doc.pages[0].text, "  Title line\nnext\nline\n\nlast one");
  EXPECT_EQ(doc.title, "Title line");
}

TEST(IngestTextParser, TitleIsCappedAtACharacterBoundary) {
  std::string line;
  for (int i = 0; i < 100; ++i) line += "\xC3\xA9t\xC3\xA9 ";  // "été " x 100
  const ParsedDocument doc = ParseOk(line + "\nbody");
  EXPECT_LE(doc.title.size(), ingest_internal::kMaxTitleBytes);
  EXPECT_GE(doc.title.size(), 60u);
  EXPECT_TRUE(IsValidUtf8(doc.title));
  EXPECT_TRUE(doc.title.ends_with("\xC3\xA9t\xC3\xA9"));  // cut at a space
}

TEST(IngestTextParser, TitleFallsBackToTheFileName) {
  EXPECT_EQ(ParseOk("\xC2\xA0\n\xC2\xA0", "dir/nbsp.txt").title, "nbsp.txt");
}

TEST(IngestTextParser, RepairsInvalidUtf8) {
  // Mostly UTF-8 with one stray byte: the byte becomes U+FFFD, the rest stays.
  const ParsedDocument mixed = ParseOk("caf\xC3\xA9 and \xFF here");
  EXPECT_EQ(mixed.pages[0].text, "caf\xC3\xA9 and \xEF\xBF\xBD here");
  // No UTF-8 at all: a legacy Windows-1252 file.
  const ParsedDocument legacy = ParseOk("caf\xE9 \x93quoted\x94 \x80");
  EXPECT_EQ(legacy.pages[0].text, "caf\xC3\xA9 \xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x82\xAC");
}

TEST(IngestTextParser, DecodesUtf16WithBom) {
  const std::string le("\xFF\xFEH\0i\0 \0\xE9\0", 10);
  EXPECT_EQ(ParseOk(le).pages[0].text, "Hi \xC3\xA9");
  const std::string be("\xFE\xFF\0H\0i\xD8\x3D\xDE\x00", 10);  // "Hi" + U+1F600
  EXPECT_EQ(ParseOk(be).pages[0].text, "Hi\xF0\x9F\x98\x80");
}

TEST(IngestTextParser, ErrorsNameTheFile) {
  const StatusOr<ParsedDocument> blank = ParsePlainText(" \n\t\r\n\f \n", "empty.txt");
  ASSERT_FALSE(blank.ok());
  EXPECT_EQ(blank.status().message(), "empty.txt: the document has no text");
  const StatusOr<ParsedDocument> binary = ParsePlainText(std::string("ab\0cd", 5), "blob.txt");
  ASSERT_FALSE(binary.ok());
  EXPECT_EQ(binary.status().message(), "blob.txt: binary content (NUL bytes), not a text file");
}

TEST(IngestTextUtil, CollapseWhitespaceAndMakeTitle) {
  using ingest_internal::CollapseWhitespace;
  EXPECT_EQ(CollapseWhitespace("  a \t\n b\xC2\xA0\xC2\xA0"
                               "c  "),
            "a b c");
  EXPECT_EQ(ingest_internal::MakeTitle("  "), "");
  EXPECT_EQ(ingest_internal::Utf8Prefix("\xC3\xA9\xC3\xA9", 3), "\xC3\xA9");
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));
}

}  // namespace
}  // namespace rag
