// The file helpers after a crash and on a full disk (docs/RELIABILITY.md): temporary files of
// writes that a killed process never finished are removed at the next start (but never those
// of a process that is still writing), and a write that runs out of room says "disk full".
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "common/file_util.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

// A process id that no process has (a child that has exited and been reaped).
pid_t DeadPid() {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(CrashFiles, StaleTemporaryFilesOfDeadWritersAreRemoved) {
  testing::TempDir dir;
  const std::string dead = std::to_string(DeadPid());
  const std::string mine = std::to_string(::getpid());
  const std::string alive = std::to_string(::getppid());  // the test runner: a live process
  for (const std::string& name :
       {"abc.tmp." + dead + ".0", "vectors.faiss.tmp." + dead + ".17", "abc.tmp." + mine + ".3",
        "abc.tmp." + alive + ".1", std::string("abc"), std::string("notes.tmp.txt"),
        std::string("x.tmp.12ab.3"), std::string(".tmp.1.2"), std::string("y.tmp.") + dead + "."}) {
    std::ofstream(dir.file(name)) << "partial";
  }
  std::filesystem::create_directory(dir.file("sub.tmp." + dead + ".1"));
  EXPECT_EQ(RemoveStaleTempFiles(dir.path()), 2);  // files only
  EXPECT_EQ(Names(dir.path()),
            (std::set<std::string>{"sub.tmp." + dead + ".1", "abc.tmp." + mine + ".3", "abc.tmp." + alive + ".1", "abc",
                                   "notes.tmp.txt", "x.tmp.12ab.3", ".tmp.1.2",
                                   "y.tmp." + dead + "."}));
  EXPECT_EQ(RemoveStaleTempFiles(dir.file("missing")), 0);
}

TEST(CrashFiles, AWriteBeyondTheRoomSaysDiskFull) {
  testing::TempDir dir;
  // In a child: RLIMIT_FSIZE makes writes past 64 KB fail with EFBIG, as a full disk fails
  // them with ENOSPC.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    const Status st = WriteFileAtomic(dir.file("big"), std::string(256 << 10, 'x'));
    const bool ok = st.code() == StatusCode::kResourceExhausted &&
                    st.message().rfind("disk full: write ", 0) == 0 &&
                    st.message().find("File too large") != std::string::npos;
    // The old file is untouched and no temporary is left.
    _exit(ok && !std::filesystem::exists(dir.file("big")) && Names(dir.path()).empty() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace rag
