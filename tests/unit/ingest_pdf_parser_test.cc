// ParsePdf on the PDFs of tests/data/ingest (made by tools/make_ingest_test_data.py).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "ingest/chunker.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"

namespace rag {
namespace {

std::string ReadTestData(const std::string& name) {
  StatusOr<std::string> bytes =
      ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/" + name);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

ParsedDocument ParseTestPdf(const std::string& name) {
  StatusOr<ParsedDocument> doc = ParsePdf(ReadTestData(name), name);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return {};
  const Status check = CheckParsedDocument(*doc);
  EXPECT_TRUE(check.ok()) << check.ToString();
  return *doc;
}

// The 1-based page whose text contains `needle`, 0 when none does.
int PageOf(const ParsedDocument& doc, const std::string& needle) {
  for (const PageText& page : doc.pages) {
    if (page.text.find(needle) != std::string::npos) return page.number;
  }
  return 0;
}

std::string AllText(const ParsedDocument& doc) {
  std::string all;
  for (const PageText& page : doc.pages) all += page.text + "\n\n";
  return all;
}

TEST(IngestPdfParser, ReportHasTitlePagesAndSentencesOnTheirPages) {
  const ParsedDocument doc = ParseTestPdf("report.pdf");
  EXPECT_EQ(doc.format, "pdf");
  EXPECT_EQ(doc.title, "Annual Harbour Report");
  ASSERT_EQ(doc.pages.size(), 4u);
  EXPECT_EQ(PageOf(doc, "The quick brown fox sleeps on page one."), 1);
  EXPECT_EQ(PageOf(doc, "The harbour lighthouse was built in 1887 and still guides ships today."),
            2);
  EXPECT_EQ(
      PageOf(doc,
             "Page four closes the report with a final remark about the caf\u00e9 on the pier."),
      4);
  EXPECT_EQ(doc.pages[2].text, "");  // page 3 has nothing but its running footer
  EXPECT_TRUE(doc.sections.empty());
}

TEST(IngestPdfParser, JoinsLinesDehyphenatesAndKeepsParagraphs) {
  const ParsedDocument doc = ParseTestPdf("report.pdf");
  ASSERT_EQ(doc.pages.size(), 4u);
  const std::string& p1 = doc.pages[0].text;
  EXPECT_NE(p1.find("to share information with the residents of the town."), std::string::npos)
      << p1;
  EXPECT_EQ(p1.find("infor-"), std::string::npos);
  // "well-known" occurs unbroken on the page, so the hyphen at the line end is kept.
  EXPECT_NE(p1.find("their well-known skill keeps the channel safe."), std::string::npos) << p1;
  EXPECT_EQ(p1.find("wellknown"), std::string::npos);
  EXPECT_TRUE(p1.starts_with("1 Introduction\n\nThe harbour authority")) << p1;
  EXPECT_NE(p1.find("found them sound.\n\nShips from many countries"), std::string::npos) << p1;
  EXPECT_EQ(p1.find("  "), std::string::npos);
  const std::string& p2 = doc.pages[1].text;
  EXPECT_NE(p2.find("Services offered at the port:\n- Cargo handling for containers and bulk goods."
                    "\n- Passenger ferries to the islands."),
            std::string::npos)
      << p2;
  // Lines in a monospace font are code: they keep their line breaks.
  EXPECT_TRUE(
      p2.ends_with("Pilots log their trips with two commands:\n\n$ harbour-log start "
                   "--pilot smith\n$ harbour-log stop"))
      << p2;
}

TEST(IngestPdfParser, DropsRunningFootersAndMarginStamps) {
  const ParsedDocument doc = ParseTestPdf("report.pdf");
  EXPECT_EQ(AllText(doc).find("Page 1 of 4"), std::string::npos);
  EXPECT_EQ(AllText(doc).find("Annual Harbour Report -"), std::string::npos);
  EXPECT_EQ(AllText(doc).find("arXiv"), std::string::npos);  // rotated text in the margin
}

TEST(IngestPdfParser, TitleFallsBackToFirstLine) {
  const ParsedDocument doc = ParseTestPdf("no_title.pdf");
  EXPECT_EQ(doc.title, "Quarterly Notes");
  ASSERT_EQ(doc.pages.size(), 1u);
  EXPECT_NE(
      doc.pages[0].text.find("The parser takes the first line of the first page as the title"),
      std::string::npos);
}

TEST(IngestPdfParser, ReadsTwoColumnsOneAfterTheOther) {
  const ParsedDocument doc = ParseTestPdf("two_columns.pdf");
  ASSERT_EQ(doc.pages.size(), 1u);
  const std::string& t = doc.pages[0].text;
  const size_t left = t.find("The left column describes the northern pier in detail.");
  const size_t left2 = t.find("Its wooden deck was replaced in 1990 with concrete slabs.");
  const size_t left3 =
      t.find("Fishermen moor their boats along the inner side of the northern pier.");
  const size_t right = t.find("The right column covers the southern breakwater instead.");
  const size_t right2 =
      t.find("It shelters the basin from the winter storms that come from the open sea.");
  ASSERT_NE(left, std::string::npos) << t;
  ASSERT_NE(left2, std::string::npos) << t;
  ASSERT_NE(left3, std::string::npos) << t;
  ASSERT_NE(right, std::string::npos) << t;
  ASSERT_NE(right2, std::string::npos) << t;
  EXPECT_LT(left3, right);
}

std::vector<std::string> Paragraphs(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

// Typeset text (justified columns, first-line indents, no paragraph spacing, paragraphs that
// run on into the next column): each paragraph "PnSTART ... PnEND." comes out as one paragraph
// of one line, in order; only a paragraph cut by a page break is in two pieces.
TEST(IngestPdfParser, JustifiedColumnsKeepTheirParagraphs) {
  const ParsedDocument doc = ParseTestPdf("justified_columns.pdf");
  ASSERT_EQ(doc.pages.size(), 3u);
  int expected = 0;
  for (const PageText& page : doc.pages) {
    const std::vector<std::string> paragraphs = Paragraphs(page.text);
    for (size_t i = 0; i < paragraphs.size(); ++i) {
      const std::string& p = paragraphs[i];
      EXPECT_EQ(p.find('\n'), std::string::npos) << p;
      if (p.starts_with("Introduction") || p.starts_with("Section ")) continue;
      const std::string start = "P" + std::to_string(expected) + "START ";
      const std::string end = " P" + std::to_string(expected) + "END.";
      const bool first_piece = i == 0 && !p.starts_with("P");
      const bool last_piece = i + 1 == paragraphs.size() && !p.ends_with("END.");
      if (!first_piece) {
        EXPECT_TRUE(p.starts_with(start)) << "page " << page.number << ": " << p;
      }
      if (!last_piece) {
        EXPECT_TRUE(p.ends_with(end)) << "page " << page.number << ": " << p;
        ++expected;
      }
    }
  }
  EXPECT_EQ(expected, 30);
}

TEST(IngestPdfParser, ChunksKnowTheirPages) {
  const ParsedDocument doc = ParseTestPdf("report.pdf");
  const std::vector<Chunk> chunks = ChunkDocument(doc, ChunkOptions{20, 5, 40});
  const Status check = CheckChunks(doc, chunks);
  EXPECT_TRUE(check.ok()) << check.ToString();
  int lighthouse = 0, fox = 0;
  for (const Chunk& c : chunks) {
    if (c.text.find("lighthouse was built in 1887") != std::string::npos) lighthouse = c.page;
    if (c.text.find("brown fox") != std::string::npos) fox = c.page;
    EXPECT_NE(c.page, 3);  // the empty page has no chunk
  }
  EXPECT_EQ(lighthouse, 2);
  EXPECT_EQ(fox, 1);
}

void ExpectError(const std::string& name, const std::string& message) {
  testing::internal::CaptureStderr();
  const StatusOr<ParsedDocument> doc = ParsePdf(ReadTestData(name), name);
  const std::string stderr_text = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(doc.ok()) << name;
  EXPECT_EQ(doc.status().message(), name + ": " + message);
  EXPECT_EQ(stderr_text, "") << "poppler wrote to stderr for " << name;
}

TEST(IngestPdfParser, EncryptedPdfIsAClearError) {
  ExpectError("encrypted.pdf", "the PDF is encrypted (password protected)");
}

TEST(IngestPdfParser, TruncatedAndCorruptPdfsAreClearErrors) {
  ExpectError("truncated.pdf", "corrupt or unreadable PDF");
  ExpectError("corrupt.pdf", "corrupt or unreadable PDF");
}

TEST(IngestPdfParser, ImageOnlyPdfIsAClearError) {
  ExpectError("image_only.pdf", "the PDF has no extractable text (scanned pages need OCR first)");
}

TEST(IngestPdfParser, NonPdfBytesAreRejected) {
  const StatusOr<ParsedDocument> doc = ParsePdf("just some text", "notes.pdf");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().message(), "notes.pdf: not a PDF file (no %PDF header)");
  const StatusOr<ParsedDocument> header_only = ParsePdf("%PDF-1.4\n%%EOF\n", "stub.pdf");
  ASSERT_FALSE(header_only.ok());
  EXPECT_TRUE(header_only.status().message().starts_with("stub.pdf: corrupt or unreadable PDF"));
}

TEST(IngestPdfParser, SurvivesEveryTruncationOfARealPdf) {
  const std::string bytes = ReadTestData("no_title.pdf");
  testing::internal::CaptureStderr();
  for (size_t len = 0; len < bytes.size(); len += 37) {
    const StatusOr<ParsedDocument> doc =
        ParsePdf(std::string_view(bytes).substr(0, len), "cut.pdf");
    if (doc.ok()) {
      EXPECT_TRUE(CheckParsedDocument(*doc).ok());
    } else {
      EXPECT_TRUE(doc.status().message().starts_with("cut.pdf: ")) << doc.status().message();
    }
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// The pipeline parses files on several threads: poppler must give each the same result.
TEST(IngestPdfParser, ParsesConcurrently) {
  const std::string bytes = ReadTestData("report.pdf");
  const std::string expected = AllText(ParseTestPdf("report.pdf"));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        const StatusOr<ParsedDocument> doc = ParsePdf(bytes, "report.pdf");
        if (!doc.ok() || AllText(*doc) != expected) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace rag
