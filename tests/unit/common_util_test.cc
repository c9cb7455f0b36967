#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "common/file_util.h"
#include "common/json_util.h"
#include "common/logging.h"
#include "common/progress_bar.h"
#include "common/thread_pool.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

TEST(ThreadPool, RunsEveryTaskAndReturnsResults) {
  ThreadPool pool(3);
  std::atomic<int> sum{0};
  pool.ParallelFor(1000, [&](size_t i) { sum += static_cast<int>(i); });
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  auto f = pool.Async([] { return 6 * 7; });
  EXPECT_EQ(f.get(), 42);
}

TEST(ThreadPool, DestructorFinishesQueuedWork) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(1);
    for (int i = 0; i < 50; ++i) pool.Submit([&] { ++done; });
  }
  EXPECT_EQ(done.load(), 50);
}

TEST(FileUtil, AtomicWriteReplacesWholeFileAndLeavesNoTemp) {
  testing::TempDir dir;
  const std::string path = dir.file("x.bin");
  ASSERT_TRUE(WriteFileAtomic(path, "first version").ok());
  ASSERT_TRUE(WriteFileAtomic(path, std::string("second\0version", 14)).ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, std::string("second\0version", 14));
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
}

TEST(FileUtil, ErrorsNameThePath) {
  auto missing = ReadFileToString("/nonexistent/rag/file.txt");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/rag/file.txt"), std::string::npos);
  testing::TempDir dir;
  EXPECT_EQ(ReadFileToString(dir.path()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(WriteFileAtomic("/nonexistent/rag/out.txt", "x").ok());
}

TEST(FileUtil, Sha256MatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(FileUtil, NamesAndExtensions) {
  EXPECT_EQ(FileExtension("a/b/Report.PDF"), "pdf");
  EXPECT_EQ(FileExtension(".bashrc"), "");
  EXPECT_EQ(FileExtension("noext"), "");
  EXPECT_EQ(BaseName("a/b/c.txt"), "c.txt");
  EXPECT_EQ(BaseName("c.txt"), "c.txt");
}

TEST(Json, StrictObjectParsing) {
  auto ok = ParseJsonObject(R"({"question":"q","top_k":3})", {"question", "top_k"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(GetString(*ok, "question").value(), "q");
  EXPECT_EQ(GetOptionalInt(*ok, "top_k").value().value(), 3);

  auto unknown = ParseJsonObject(R"({"question":"q","topk":3})", {"question", "top_k"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("topk"), std::string::npos);

  EXPECT_FALSE(ParseJsonObject("[1,2]", {}).ok());
  EXPECT_FALSE(ParseJsonObject("{\"a\":", {"a"}).ok());
  EXPECT_FALSE(ParseJsonObject("", {}).ok());

  auto wrong_type = ParseJsonObject(R"({"top_k":"five"})", {"top_k"});
  ASSERT_TRUE(wrong_type.ok());
  EXPECT_FALSE(GetOptionalInt(*wrong_type, "top_k").ok());
  EXPECT_FALSE(GetString(*wrong_type, "question").ok());
}

TEST(Json, DeepNestingIsRejectedBeforeParsing) {
  std::string deep(100000, '[');
  auto r = ParseJson(deep, 32);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("deeper"), std::string::npos);
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})", 2).ok());
}

TEST(Json, ErrorBodyAndHttpCodes) {
  Json e = ErrorJson(NotFound("no document with id 7"));
  EXPECT_EQ(e["error"]["message"], "no document with id 7");
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_EQ(e["error"]["code"], "not_found");
  EXPECT_EQ(HttpCodeFor(InvalidArgument("x")), 400);
  EXPECT_EQ(HttpCodeFor(ResourceExhausted("x")), 413);
  EXPECT_EQ(HttpCodeFor(Unsupported("x")), 415);
  EXPECT_EQ(HttpCodeFor(Internal("x")), 500);
}

TEST(ProgressBar, RendersFractionAndIsSilentWhenNotATerminal) {
  std::FILE* sink = std::tmpfile();
  ProgressBar bar("ingest", 4, sink);
  EXPECT_FALSE(bar.enabled());  // a file is not a terminal
  bar.Add(1, "a.pdf");
  bar.Add(1, "b.pdf");
  const std::string line = bar.Render();
  EXPECT_NE(line.find("50%"), std::string::npos) << line;
  EXPECT_NE(line.find("2/4"), std::string::npos) << line;
  EXPECT_NE(line.find("b.pdf"), std::string::npos) << line;
  bar.Finish();
  EXPECT_EQ(std::ftell(sink), 0);  // nothing drawn
  std::fclose(sink);
}

TEST(Logging, OneLinePerEventWithLevelAndEscapedNewlines) {
  testing::TempDir dir;
  const std::string path = dir.file("log.txt");
  std::FILE* saved = fdopen(dup(fileno(stderr)), "w");
  ASSERT_NE(std::freopen(path.c_str(), "w", stderr), nullptr);
  RAG_LOG(WARN) << "first\nsecond";
  RAG_LOG(DEBUG) << "hidden at the default level";
  std::fflush(stderr);
  dup2(fileno(saved), fileno(stderr));
  std::fclose(saved);
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" WARN first\\nsecond"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0][4], '-');  // starts with an ISO date
}

}  // namespace
}  // namespace rag

#include <fcntl.h>
#include <pty.h>

namespace rag {
namespace {

// On a real terminal (a pseudo-terminal here) the bar draws, and a log line written meanwhile
// first erases the bar and then gets it redrawn below itself.
TEST(ProgressBar, OnATerminalLogLinesEraseAndRedrawTheBar) {
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  fcntl(master, F_SETFL, O_NONBLOCK);
  std::FILE* tty = fdopen(slave, "w");
  ASSERT_NE(tty, nullptr);
  {
    ProgressBar bar("ingest", 2, tty);
    ASSERT_TRUE(bar.enabled());
    bar.Add(1, "a.pdf");
    // The log goes to stderr; only the bar's erase/redraw goes to the terminal.
    std::FILE* saved = fdopen(dup(fileno(stderr)), "w");
    ASSERT_NE(std::freopen("/dev/null", "w", stderr), nullptr);
    RAG_LOG(WARN) << "an event";
    std::fflush(stderr);
    dup2(fileno(saved), fileno(stderr));
    std::fclose(saved);
  }
  std::string seen;
  char buf[4096];
  ssize_t n;
  while ((n = read(master, buf, sizeof(buf))) > 0) seen.append(buf, static_cast<size_t>(n));
  const size_t first = seen.find("ingest [");
  const size_t erase = seen.find("\r\x1b[K", first);
  ASSERT_NE(first, std::string::npos) << seen;
  ASSERT_NE(erase, std::string::npos) << seen;
  EXPECT_NE(seen.find("ingest [", erase), std::string::npos) << seen;  // redrawn after the line
  std::fclose(tty);
  close(master);
}

}  // namespace
}  // namespace rag
