// The `rag` binary end to end on the real sample corpus: ingest -> retrieve -> answer with
// citations. Page numbers are checked against poppler's pdftotext, an independent extractor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "retrieval/text_terms.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using Json = nlohmann::json;

const std::string kRag = RAG_BINARY;
const std::string kCorpus = std::string(RAG_SOURCE_DIR) + "/corpora/sample";

std::string Rag(const std::string& data, const std::string& args) {
  return ShellQuote(kRag) + " --log-level warn --data " + ShellQuote(data) + " " + args;
}

// Lower-cased words joined by single spaces, so layout differences do not matter.
std::string Words(const std::string& text) {
  std::string out;
  for (const auto& w : WordTokens(text)) out += w + ' ';
  return out;
}

// Text of one page of a PDF according to pdftotext.
std::string PdftotextPage(const std::string& pdf, int page) {
  auto r = RunCommand("pdftotext -f " + std::to_string(page) + " -l " + std::to_string(page) + " " +
                      ShellQuote(pdf) + " - 2>/dev/null");
  return r.exit_code == 0 ? r.out : "";
}

class CliPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data_ = dir_->file("data");
    auto r = RunCommand(Rag(data_, "ingest " + ShellQuote(kCorpus)) + " 2>&1");
    ingest_exit_ = r.exit_code;
    ingest_out_ = r.out;
  }
  static void TearDownTestSuite() { delete dir_; }

  static testing::TempDir* dir_;
  static std::string data_;
  static int ingest_exit_;
  static std::string ingest_out_;
};
testing::TempDir* CliPipelineTest::dir_ = nullptr;
std::string CliPipelineTest::data_;
int CliPipelineTest::ingest_exit_ = -1;
std::string CliPipelineTest::ingest_out_;

TEST_F(CliPipelineTest, IngestsTheSampleCorpusWithASummaryLine) {
  ASSERT_EQ(ingest_exit_, 0) << ingest_out_;
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(kCorpus)) files += e.is_regular_file();
  EXPECT_NE(ingest_out_.find("ingested " + std::to_string(files) + " files (" + std::to_string(files) +
                             " new, 0 unchanged, 0 failed)"),
            std::string::npos)
      << ingest_out_;
}

TEST_F(CliPipelineTest, IngestingAgainStoresNothingTwice) {
  auto r = RunCommand(Rag(data_, "ingest " + ShellQuote(kCorpus)) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(kCorpus)) files += e.is_regular_file();
  EXPECT_NE(r.out.find("(0 new, " + std::to_string(files) + " unchanged, 0 failed)"), std::string::npos)
      << r.out;
}

TEST_F(CliPipelineTest, RetrieveFollowsTheJsonLinesContract) {
  auto r = RunCommand(Rag(data_, "retrieve --top-k 3"),
                      "What is write-ahead logging?\n\nHow does SQLite use fsync?\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    Json j = Json::parse(line);
    ASSERT_TRUE(j["question"].is_string());
    ASSERT_TRUE(j["passages"].is_array());
    ASSERT_GE(j["passages"].size(), 1u);
    ASSERT_LE(j["passages"].size(), 3u);
    for (const auto& p : j["passages"]) {
      for (const char* key : {"chunk_id", "document_id", "title", "page", "text", "score"}) {
        EXPECT_TRUE(p.contains(key)) << key;
      }
    }
    ++n;
  }
  EXPECT_EQ(n, 2);  // the blank line is skipped
}

TEST_F(CliPipelineTest, AnswerCitesPdfPassagesOnTheRightPages) {
  const std::string question =
      "What happened to the Fossil repository when file descriptor 2 was closed by mistake?";
  auto r = RunCommand(Rag(data_, "query --json " + ShellQuote(question)));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Json j = Json::parse(r.out);
  ASSERT_FALSE(j["citations"].empty()) << j.dump(2);
  const auto& passages = j["passages"];
  bool cited_pdf = false;
  for (const auto& c : j["citations"]) {
    for (int s : c["sources"]) {
      ASSERT_LT(s, static_cast<int>(passages.size()));
      const auto& p = passages[s];
      // The cited sentence is in the passage it points at.
      EXPECT_NE(Words(p["text"]).find(Words(c["text"])), std::string::npos) << c["text"];
      const std::string filename = p["filename"];
      if (filename.size() > 4 && filename.substr(filename.size() - 4) == ".pdf") {
        cited_pdf = true;
        const std::string page_text = Words(PdftotextPage(kCorpus + "/" + filename, p["page"]));
        ASSERT_FALSE(page_text.empty());
        // The first words of the cited sentence are on that page according to pdftotext.
        std::string cited = Words(c["text"]);
        std::istringstream ws(cited);
        std::string w, prefix;
        for (int k = 0; k < 6 && ws >> w; ++k) prefix += w + ' ';
        EXPECT_NE(page_text.find(prefix), std::string::npos)
            << "page " << p["page"] << " of " << filename << " lacks: " << prefix;
      }
    }
  }
  EXPECT_TRUE(cited_pdf) << j.dump(2);
  EXPECT_EQ(j["mode"], "extractive");
}

TEST_F(CliPipelineTest, HumanReadableAnswerListsNumberedSources) {
  auto r = RunCommand(Rag(data_, "query " + ShellQuote("What is write-ahead logging in SQLite?")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" [1]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Sources:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("page "), std::string::npos) << r.out;
}

TEST(CliErrors, BadInputGivesOneClearLineAndANonZeroExit) {
  testing::TempDir dir;
  const std::string data = dir.file("data");
  auto missing = RunCommand(Rag(data, "ingest /nonexistent/file.pdf") + " 2>&1");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent/file.pdf"), std::string::npos) << missing.out;

  auto no_db = RunCommand(Rag(data, "query 'anything'") + " 2>&1");
  EXPECT_NE(no_db.exit_code, 0);
  EXPECT_NE(no_db.out.find("rag ingest"), std::string::npos) << no_db.out;

  auto empty_q = RunCommand(Rag(data, "ingest " + ShellQuote(kCorpus + "/xxhash-spec.md")) + " >/dev/null 2>&1; " +
                            Rag(data, "query '   '") + " 2>&1");
  EXPECT_NE(empty_q.exit_code, 0);
  EXPECT_NE(empty_q.out.find("empty"), std::string::npos) << empty_q.out;
}

TEST(CliErrors, ABadFileFailsAloneAndTheOthersAreStored) {
  testing::TempDir dir;
  const std::string docs = dir.file("docs");
  std::filesystem::create_directories(docs);
  std::filesystem::copy_file(kCorpus + "/xxhash-spec.md", docs + "/good.md");
  {
    std::ofstream bad(docs + "/broken.pdf", std::ios::binary);
    bad << "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage";
  }
  auto r = RunCommand(Rag(dir.file("data"), "ingest " + ShellQuote(docs)) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("broken.pdf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 new, 0 unchanged, 1 failed"), std::string::npos) << r.out;
  auto q = RunCommand(Rag(dir.file("data"), "retrieve"), "xxHash digest\n");
  ASSERT_EQ(q.exit_code, 0);
  EXPECT_NE(q.out.find("good.md"), std::string::npos);
}

TEST(CliReplace, AChangedFileAtTheSamePathReplacesItsOldVersion) {
  testing::TempDir dir;
  const std::string file = dir.file("notes.txt");
  const std::string data = dir.file("data");
  { std::ofstream(file) << "Notes\n\nThe meeting is about aardvarks and their burrows.\n"; }
  ASSERT_EQ(RunCommand(Rag(data, "ingest " + ShellQuote(file))).exit_code, 0);
  { std::ofstream(file) << "Notes\n\nThe meeting is about pangolins and their scales.\n"; }
  ASSERT_EQ(RunCommand(Rag(data, "ingest " + ShellQuote(file))).exit_code, 0);
  auto old_hits = RunCommand(Rag(data, "retrieve"), "aardvarks burrows\n");
  auto new_hits = RunCommand(Rag(data, "retrieve"), "pangolins scales\n");
  EXPECT_EQ(Json::parse(old_hits.out)["passages"].size(), 0u) << old_hits.out;
  EXPECT_EQ(Json::parse(new_hits.out)["passages"].size(), 1u) << new_hits.out;
}

}  // namespace
}  // namespace rag
