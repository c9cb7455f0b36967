// ParseMarkdown on tests/data/ingest/sample.md and on small inline documents.
#include <gtest/gtest.h>

#include <string>

#include "common/file_util.h"
#include "ingest/chunker.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"

namespace rag {
namespace {

ParsedDocument ParseOk(std::string_view markdown, const std::string& name = "notes.md") {
  StatusOr<ParsedDocument> doc = ParseMarkdown(markdown, name);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return {};
  const Status check = CheckParsedDocument(*doc);
  EXPECT_TRUE(check.ok()) << check.ToString();
  return *doc;
}

ParsedDocument ParseSample() {
  const StatusOr<std::string> bytes =
      ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/sample.md");
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return ParseOk(bytes.ok() ? *bytes : "", "sample.md");
}

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(IngestMarkdownParser, SampleBecomesPlainText) {
  const ParsedDocument doc = ParseSample();
  EXPECT_EQ(doc.format, "markdown");
  EXPECT_EQ(doc.title, "Garden Handbook");  // from the front matter
  ASSERT_EQ(doc.pages.size(), 1u);
  const std::string& t = doc.pages[0].text;
  EXPECT_TRUE(
      t.starts_with("Growing Tomatoes\n\nTomatoes need full sun and regular watering. See "
                    "the guide for details.\n\nSoil\n\n"))
      << t;
  for (const char* markup : {"#", "*", "`", "](", "|", "---", "author:", "https://"}) {
    EXPECT_FALSE(Contains(t, markup)) << "markup " << markup << " in\n" << t;
  }
  EXPECT_TRUE(Contains(t, "compost & manure. The pH should be about 6.5."));
  EXPECT_TRUE(Contains(t,
                       "First item with inline code\nSecond item\nNested item one\nNested item "
                       "two\nThird item"));
  EXPECT_TRUE(Contains(t, "Water in the morning.\nMulch in summer."));
  EXPECT_TRUE(Contains(t, "\n\ndef water(plant):\n    return plant.soil + 1\n\n"));
  EXPECT_TRUE(Contains(t, "\n\nA quoted remark about tomatoes.\n\n"));
  EXPECT_TRUE(Contains(t, "Variety\tDays\nRoma\t75\nCherry\t65"));
  EXPECT_TRUE(Contains(t, "Raw HTML note."));
  EXPECT_FALSE(Contains(t, "md-script-text"));
  EXPECT_TRUE(Contains(t, "red \xC2\xA9 \xC3\xA9t\xC3\xA9 and firm.\nA hard break came before"));
}

TEST(IngestMarkdownParser, HeadingsAreSectionsAtTheirText) {
  const ParsedDocument doc = ParseSample();
  ASSERT_EQ(doc.sections.size(), 3u);
  const char* titles[] = {"Growing Tomatoes", "Soil", "Harvest Time"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(doc.sections[i].title, titles[i]);
    EXPECT_EQ(doc.pages[0].text.substr(doc.sections[i].offset, doc.sections[i].title.size()),
              titles[i]);
  }
}

TEST(IngestMarkdownParser, ChunksCarryTheirSection) {
  const ParsedDocument doc = ParseSample();
  const std::vector<Chunk> chunks = ChunkDocument(doc, ChunkOptions{12, 4, 20});
  ASSERT_TRUE(CheckChunks(doc, chunks).ok()) << CheckChunks(doc, chunks).ToString();
  bool found_ph = false, found_harvest = false;
  for (const Chunk& c : chunks) {
    if (Contains(c.text, "pH should be about 6.5")) {
      EXPECT_EQ(c.section, "Soil");
      found_ph = true;
    }
    if (Contains(c.text, "hard break")) {
      EXPECT_EQ(c.section, "Harvest Time");
      found_harvest = true;
    }
    if (Contains(c.text, "full sun")) {
      EXPECT_EQ(c.section, "Growing Tomatoes");
    }
  }
  EXPECT_TRUE(found_ph);
  EXPECT_TRUE(found_harvest);
}

TEST(IngestMarkdownParser, TitleFallsBackToHeadingsThenFirstLine) {
  EXPECT_EQ(ParseOk("Intro text.\n\n## Sub\n\n# Main *Title*\n\nBody.").title, "Main Title");
  EXPECT_EQ(ParseOk("Intro text.\n\n## Only Sub\n\nBody.").title, "Only Sub");
  EXPECT_EQ(ParseOk("\n\nJust a **first** line\nand more.").title, "Just a first line and more.");
}

// Found by tests/fuzz/markdown_fuzz: in a raw HTML block, gumbo turned "&#xD8aaaaaaad" into a
// lone byte 0xAD, and the page text was not valid UTF-8.
TEST(IngestMarkdownParser, HtmlBlockWithOutOfRangeCharacterReference) {
  const ParsedDocument doc = ParseOk("# Title\n\n<div>\nx &#xD8aaaaaaad y\n</div>\n");
  ASSERT_EQ(doc.pages.size(), 1u);
  EXPECT_NE(doc.pages[0].text.find("x \uFFFD y"), std::string::npos) << doc.pages[0].text;
}

TEST(IngestMarkdownParser, DashesThatAreNotFrontMatterAreKept) {
  const ParsedDocument doc = ParseOk("---\nNot yaml at all\n\nText after.");
  EXPECT_TRUE(Contains(doc.pages[0].text, "Not yaml at all"));
}

TEST(IngestMarkdownParser, EmptyDocumentsAreErrors) {
  for (const char* empty : {"", "   \n\n", "---\ntitle: X\n---\n", "<!-- only a comment -->\n",
                            "<script>x()</script>\n", "***\n"}) {
    const StatusOr<ParsedDocument> doc = ParseMarkdown(empty, "empty.md");
    ASSERT_FALSE(doc.ok()) << empty;
    EXPECT_EQ(doc.status().message(), "empty.md: the document has no text");
  }
}

TEST(IngestMarkdownParser, SurvivesDeepNesting) {
  const ParsedDocument quotes = ParseOk(std::string(100000, '>') + " deep quote");
  EXPECT_EQ(quotes.pages[0].text, "deep quote");
  std::string lists;
  for (int i = 0; i < 2000; ++i) lists += std::string(static_cast<size_t>(i) * 2, ' ') + "- item\n";
  EXPECT_TRUE(Contains(ParseOk(lists).pages[0].text, "item\nitem"));
  std::string divs;
  for (int i = 0; i < 100000; ++i) divs += "<div>";
  EXPECT_TRUE(Contains(ParseOk(divs + "deep html\n\nafter").pages[0].text, "deep html"));
}

}  // namespace
}  // namespace rag
