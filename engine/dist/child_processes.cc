#include "engine/dist/child_processes.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"

namespace rag {

Status ChildProcesses::Spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (err != 0) return Internal("cannot start " + argv[0] + ": " + std::strerror(err));
  pids_.push_back(pid);
  return Status::Ok();
}

void ChildProcesses::SignalAll(int signal) {
  for (pid_t pid : pids_) kill(pid, signal);
}

Status ChildProcesses::WaitAll() {
  Status first;
  for (pid_t pid : pids_) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean && first.ok()) {
      first = Internal("child process " + std::to_string(pid) +
                       (WIFSIGNALED(status)
                            ? " was killed by signal " + std::to_string(WTERMSIG(status))
                            : " exited with status " + std::to_string(WEXITSTATUS(status))));
    }
  }
  pids_.clear();
  return first;
}

ChildProcesses::~ChildProcesses() {
  const Status s = WaitAll();
  if (!s.ok()) {
    RAG_LOG(WARN) << s.ToString();
  }
}

}  // namespace rag
