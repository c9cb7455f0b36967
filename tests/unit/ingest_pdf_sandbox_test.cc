// The PDF reader's child process (ingest/pdf_sandbox.h): the reader program reads the PDF in
// a process of its own. And when a child gets stuck before it reads (a plain fork copies the
// locks that other threads hold at that moment, and a child that waits on one of them sleeps
// for ever): the test hook makes a real forked child sleep (pause(): asleep, no CPU time) as such
// a child does; the parent must notice, kill it and read the PDF in a fresh child, or fail the
// document with a clear error, in seconds instead of max_seconds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "ingest/parser.h"
#include "ingest/pdf_sandbox.h"
#include "tests/testing/pdf_writer.h"

namespace rag {
namespace {

using namespace std::chrono_literals;

// Children of attempt 0 stall; later attempts read the PDF.
void StallFirstAttempt(int attempt) {
  if (attempt == 0) {
    for (;;) ::pause();
  }
}
void StallEveryAttempt(int) {
  for (;;) ::pause();
}

class PdfSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ingest_internal::PdfChildProcessesAreSafe()) {
      GTEST_SKIP() << "AddressSanitizer build: PDFs are read in the process, without a child";
    }
    saved_ = GetPdfReadLimits();
    PdfReadLimits limits;
    limits.max_stall_seconds = 1;
    limits.max_seconds = 60;
    SetPdfReadLimits(limits);
  }
  void TearDown() override {
    ingest_internal::SetPdfReaderChildHookForTesting(nullptr);
    SetPdfReadLimits(saved_);
  }

  const std::string pdf_ =
      testing::PdfOfPages({testing::TextContent({"The lighthouse keeper rows out at dawn."}),
                           testing::TextContent({"Gulls follow the ferry to the second pier."})});
  PdfReadLimits saved_;
};

// The build puts the reader program beside `rag` and tells the library where: the PDF is read
// there, in a process that shares none of this one's locks, and its text comes back whole.
TEST_F(PdfSandboxTest, ThePdfIsReadByTheReaderProgram) {
  const int64_t before = ingest_internal::PdfReaderProgramRuns();
  StatusOr<ParsedDocument> doc = ParseDocument(pdf_, "fresh.pdf");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->pages.size(), 2u);
  EXPECT_NE(doc->pages[0].text.find("lighthouse keeper"), std::string::npos) << doc->pages[0].text;
  EXPECT_NE(doc->pages[1].text.find("second pier"), std::string::npos) << doc->pages[1].text;
  EXPECT_EQ(ingest_internal::PdfReaderProgramRuns(), before + 1);
  // Its errors come back as the parser's own.
  StatusOr<ParsedDocument> bad = ParseDocument("%PDF-1.4 not really", "broken.pdf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broken.pdf"), std::string::npos)
      << bad.status().ToString();
  EXPECT_EQ(ingest_internal::PdfReaderProgramRuns(), before + 2);
}

TEST_F(PdfSandboxTest, AStuckReaderIsReplacedAndThePdfRead) {
  ingest_internal::SetPdfReaderChildHookForTesting(StallFirstAttempt);
  const auto t0 = std::chrono::steady_clock::now();
  StatusOr<ParsedDocument> doc = ParseDocument(pdf_, "stuck-once.pdf");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->pages.size(), 2u);
  EXPECT_NE(doc->pages[1].text.find("second pier"), std::string::npos) << doc->pages[1].text;
  // About one stall (1 s) and a read, far from max_seconds (60).
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 20s);
}

TEST_F(PdfSandboxTest, AReaderStuckEveryTimeFailsTheDocumentWithAClearError) {
  ingest_internal::SetPdfReaderChildHookForTesting(StallEveryAttempt);
  const auto t0 = std::chrono::steady_clock::now();
  StatusOr<ParsedDocument> doc = ParseDocument(pdf_, "stuck.pdf");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInternal) << doc.status().ToString();
  EXPECT_NE(doc.status().message().find("stuck.pdf: the PDF reader process got stuck 3 times"),
            std::string::npos)
      << doc.status().ToString();
  EXPECT_GE(took, 3s);  // three attempts of at least one stall each
  EXPECT_LT(took, 40s);
}

}  // namespace
}  // namespace rag
