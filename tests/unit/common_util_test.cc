#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "common/file_util.h"
#include "common/load_progress.h"
#include "common/logging.h"
#include "common/progress_bar.h"
#include "common/sha256.h"
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

// The streaming form: pieces appear only at Commit; a writer dropped before it leaves the old
// file and no temporary behind.
TEST(FileUtil, AtomicFileWriterReplacesOnlyOnCommit) {
  testing::TempDir dir;
  const std::string path = dir.file("big.bin");
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("never ").ok());
    ASSERT_TRUE((*w)->Write("committed").ok());
  }
  EXPECT_EQ(*ReadFileToString(path), "old");
  auto w = AtomicFileWriter::Create(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("new ").ok());
  ASSERT_TRUE((*w)->Write(std::string("pie\0ces", 7)).ok());
  EXPECT_EQ(*ReadFileToString(path), "old");
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(*ReadFileToString(path), std::string("new pie\0ces", 11));
  EXPECT_FALSE((*w)->Write("late").ok());
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
  // Empty views with a null data(), between and after other data (the sanitizer build checks
  // that no memcpy sees the null).
  Sha256 h;
  h.Update("a");
  h.Update(std::string_view());
  h.Update("bc");
  h.Update(std::string_view());
  EXPECT_EQ(h.HexDigest(), Sha256Hex("abc"));
  EXPECT_EQ(Sha256Hex(std::string_view()), Sha256Hex(""));
}

TEST(FileUtil, NamesAndExtensions) {
  EXPECT_EQ(FileExtension("a/b/Report.PDF"), "pdf");
  EXPECT_EQ(FileExtension(".bashrc"), "");
  EXPECT_EQ(FileExtension("noext"), "");
  EXPECT_EQ(BaseName("a/b/c.txt"), "c.txt");
  EXPECT_EQ(BaseName("c.txt"), "c.txt");
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

// A load driven by a clock the test moves: lines only once the quiet time has passed, one a
// tenth, and a closing line with the time taken.
struct FakeLoad {
  double now = 100.0;
  std::vector<std::string> lines;
  LoadProgress Make(int64_t total) {
    return LoadProgress(
        "model weights", total, "layers", 2.0, [this] { return now; },
        [this](const std::string& l) { lines.push_back(l); });
  }
};

TEST(LoadProgress, ASlowLoadReportsEachTenthAfterTheQuietTimeThenTheTotal) {
  FakeLoad load;
  LoadProgress progress = load.Make(20);
  for (int i = 0; i < 20; ++i) {
    load.now += 0.5;  // 10 s in all
    progress.Add();
  }
  progress.Finish();
  progress.Finish();  // once
  // The first tenth (at 1 s) falls inside the quiet 2 s; 100% is the closing line.
  ASSERT_EQ(load.lines.size(), 9u) << ::testing::PrintToString(load.lines);
  EXPECT_EQ(load.lines.front(), "model weights: 20% (4 of 20 layers) after 2.0 s");
  EXPECT_EQ(load.lines[7], "model weights: 90% (18 of 20 layers) after 9.0 s");
  EXPECT_EQ(load.lines.back(), "model weights: 20 layers in 10.0 s");
  EXPECT_EQ(progress.lines(), 9);
}

TEST(LoadProgress, AFastLoadSaysNothingAndASilentOneNever) {
  FakeLoad load;
  LoadProgress fast = load.Make(80);
  for (int i = 0; i < 80; ++i) {
    load.now += 0.01;
    fast.Add();
  }
  fast.Finish();
  EXPECT_TRUE(load.lines.empty()) << ::testing::PrintToString(load.lines);

  LoadProgress silent = load.Make(0);  // another rank's part
  load.now += 60;
  silent.Add(5);
  silent.Finish();
  EXPECT_TRUE(load.lines.empty()) << ::testing::PrintToString(load.lines);

  // A load that jumps past its quiet time in one step still gets its closing line.
  LoadProgress jump = load.Make(2);
  load.now += 3;
  jump.Add(2);
  jump.Finish();
  ASSERT_EQ(load.lines.size(), 1u);
  EXPECT_EQ(load.lines[0], "model weights: 2 layers in 3.0 s");
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

namespace rag {
namespace {

// FIPS 180-4 example vectors, and a long input fed in uneven pieces.
TEST(Sha256, MatchesStandardVectorsAcrossBlockBoundaries) {
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million_a;
  const std::string chunk(997, 'a');
  size_t fed = 0;
  while (fed + chunk.size() <= 1000000) {
    million_a.Update(chunk);
    fed += chunk.size();
  }
  million_a.Update(std::string(1000000 - fed, 'a'));
  EXPECT_EQ(million_a.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55 bytes: the longest message whose padding fits one block (value from coreutils sha256sum).
  EXPECT_EQ(Sha256Hex(std::string(55, 'x')),
            "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  for (size_t len : {55u, 56u, 63u, 64u, 65u}) {  // padding edge cases, against one-shot hashing
    const std::string s(len, 'x');
    Sha256 pieces;
    pieces.Update(s.substr(0, len / 3));
    pieces.Update(s.substr(len / 3));
    EXPECT_EQ(pieces.HexDigest(), Sha256Hex(s)) << len;
  }
}

}  // namespace
}  // namespace rag
