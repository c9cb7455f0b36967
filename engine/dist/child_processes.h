// Processes this one starts and waits for: rag bench --tp-processes' followers (copies of the
// bench with --tp-rank), the tensor-parallel tests' follower ranks.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace rag {

class ChildProcesses {
 public:
  ChildProcesses() = default;
  ~ChildProcesses();  // waits for those not waited for yet
  ChildProcesses(const ChildProcesses&) = delete;
  ChildProcesses& operator=(const ChildProcesses&) = delete;

  // Starts argv[0] (a path) with argv, this process's environment, stdout and stderr.
  Status Spawn(const std::vector<std::string>& argv);
  // Sends `signal` to every child not waited for yet.
  void SignalAll(int signal);
  // Waits for every child; the error of the first that failed or was killed.
  Status WaitAll();

 private:
  std::vector<pid_t> pids_;
};

}  // namespace rag
