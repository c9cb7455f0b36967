// ParseDocument: dispatch by extension, errors that name the file, hostile input.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/file_util.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"

namespace rag {
namespace {

TEST(IngestParser, SupportedFileNames) {
  for (const char* name :
       {"a.pdf", "b.PDF", "c.txt", "d.text", "e.md", "f.markdown", "g.html", "h.HTM", "dir/i.Md"}) {
    EXPECT_TRUE(IsSupportedFileName(name)) << name;
  }
  for (const char* name : {"photo.png", "README", ".bashrc", "archive.tar.gz", "doc.docx", "pdf"}) {
    EXPECT_FALSE(IsSupportedFileName(name)) << name;
  }
}

TEST(IngestParser, DispatchesOnTheExtension) {
  const StatusOr<ParsedDocument> md = ParseDocument("# Head\n\nText.", "notes.MD");
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->format, "markdown");
  const StatusOr<ParsedDocument> text = ParseDocument("# Head\n\nText.", "notes.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->format, "text");
  EXPECT_EQ(text->pages[0].text, "# Head\n\nText.");
  const StatusOr<ParsedDocument> html = ParseDocument("<p>Hi</p>", "index.htm");
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->format, "html");
  const StatusOr<std::string> pdf =
      ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/no_title.pdf");
  ASSERT_TRUE(pdf.ok());
  const StatusOr<ParsedDocument> parsed = ParseDocument(*pdf, "scan.pdf");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->format, "pdf");
}

TEST(IngestParser, UnsupportedTypesNameTheFile) {
  const StatusOr<ParsedDocument> png = ParseDocument("\x89PNG", "photo.png");
  ASSERT_FALSE(png.ok());
  EXPECT_EQ(png.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(png.status().message(),
            "photo.png: unsupported file type .png (supported: .pdf .txt .md .html)");
  const StatusOr<ParsedDocument> bare = ParseDocument("text", "README");
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.status().message(),
            "README: unsupported file type (no extension) (supported: .pdf .txt .md .html)");
}

TEST(IngestParser, EmptyAndMislabelledFilesNameTheFile) {
  for (const char* name : {"empty.pdf", "empty.txt", "empty.md", "empty.html"}) {
    const StatusOr<ParsedDocument> doc = ParseDocument("", name);
    ASSERT_FALSE(doc.ok());
    EXPECT_EQ(doc.status().message(), std::string(name) + ": the document has no text");
  }
  const StatusOr<ParsedDocument> fake = ParseDocument("<html>not a pdf</html>", "report.pdf");
  ASSERT_FALSE(fake.ok());
  EXPECT_EQ(fake.status().message(), "report.pdf: not a PDF file (no %PDF header)");
}

// Random bytes, and random mutations of real files, never crash a parser; every result is
// either a valid document or an error naming the file.
TEST(IngestParser, HostileInputNeverCrashes) {
  std::mt19937 rng(42);
  std::vector<std::string> seeds = {"", "%PDF-1.4\n", "<html><body><p>x", "# h\n\n- a\n  - b\n"};
  for (const char* name : {"no_title.pdf", "sample.md", "sample.html", "sample.txt"}) {
    const StatusOr<std::string> bytes =
        ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/" + name);
    ASSERT_TRUE(bytes.ok());
    seeds.push_back(*bytes);
  }
  testing::internal::CaptureStderr();
  for (int round = 0; round < 300; ++round) {
    std::string input = seeds[static_cast<size_t>(round) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 20);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = input.empty() ? 0 : rng() % input.size();
      const char byte = static_cast<char>(rng() % 256);
      switch (rng() % 3) {
        case 0:
          if (!input.empty()) input[pos] = byte;
          break;
        case 1:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(pos), byte);
          break;
        case 2:
          if (!input.empty()) input.erase(pos, 1 + rng() % 16);
          break;
      }
    }
    for (const char* name : {"f.pdf", "f.txt", "f.md", "f.html"}) {
      const StatusOr<ParsedDocument> doc = ParseDocument(input, name);
      if (doc.ok()) {
        const Status check = CheckParsedDocument(*doc);
        EXPECT_TRUE(check.ok()) << name << ": " << check.ToString();
      } else {
        EXPECT_TRUE(doc.status().message().starts_with(std::string(name) + ": "))
            << doc.status().message();
      }
    }
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace rag
