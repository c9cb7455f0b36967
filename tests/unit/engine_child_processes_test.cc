// ChildProcesses (engine/dist/child_processes.h), which starts rag bench --tp-processes'
// followers: real processes, their exit statuses reported, a program that cannot start named.
#include <gtest/gtest.h>

#include <string>

#include "engine/dist/child_processes.h"

namespace rag {
namespace {

TEST(ChildProcessesTest, ChildrenThatSucceedAreWaitedFor) {
  ChildProcesses children;
  ASSERT_TRUE(children.Spawn({"/bin/sh", "-c", "exit 0"}).ok());
  ASSERT_TRUE(children.Spawn({"/bin/sh", "-c", "sleep 0.1"}).ok());
  EXPECT_TRUE(children.WaitAll().ok());
  EXPECT_TRUE(children.WaitAll().ok()) << "nothing left to wait for";
}

TEST(ChildProcessesTest, AFailedOrKilledChildIsReported) {
  ChildProcesses failed;
  ASSERT_TRUE(failed.Spawn({"/bin/sh", "-c", "exit 0"}).ok());
  ASSERT_TRUE(failed.Spawn({"/bin/sh", "-c", "exit 3"}).ok());
  const Status exited = failed.WaitAll();
  EXPECT_FALSE(exited.ok());
  EXPECT_NE(exited.message().find("exited with status 3"), std::string::npos) << exited.ToString();

  ChildProcesses killed;
  ASSERT_TRUE(killed.Spawn({"/bin/sh", "-c", "sleep 30"}).ok());
  killed.SignalAll(9);
  const Status signalled = killed.WaitAll();
  EXPECT_NE(signalled.message().find("killed by signal 9"), std::string::npos)
      << signalled.ToString();
}

TEST(ChildProcessesTest, AProgramThatCannotStartIsNamed) {
  ChildProcesses children;
  const Status s = children.Spawn({"/nonexistent/rag-bench", "--tp-rank", "1"});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/rag-bench"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace rag
