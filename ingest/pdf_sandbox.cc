#include "ingest/pdf_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <vector>

#include "common/logging.h"
#include "ingest/pdf_reader_protocol.h"

namespace rag::ingest_internal {
namespace {

std::atomic<void (*)(int)> g_child_hook{nullptr};  // SetPdfReaderChildHookForTesting
std::atomic<int64_t> g_program_runs{0};            // PdfReaderProgramRuns

// The reader program (ingest/pdf_reader_main.cc): rag-pdf-reader beside this executable, else
// where the build put it (test binaries live in another folder); empty when neither is there,
// and then the child reads the PDF itself after a plain fork.
const std::string& ReaderProgram() {
  static const std::string path = [] {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    if (!error) {
      const std::string beside = (self.parent_path() / "rag-pdf-reader").string();
      if (::access(beside.c_str(), X_OK) == 0) return beside;
    }
#ifdef RAG_PDF_READER_BUILT_AT
    if (::access(RAG_PDF_READER_BUILT_AT, X_OK) == 0) return std::string(RAG_PDF_READER_BUILT_AT);
#endif
    return std::string();
  }();
  return path;
}

// What the reader program has before its parse, beyond which PdfReadLimits::max_memory_bytes
// counts: address space (its code and libraries, poppler's among them, mapped) and resident
// memory, both generous.
constexpr uint64_t kProgramAddressSpace = 256ull << 20;
constexpr uint64_t kProgramResident = 64ull << 20;

bool AddressSanitizerBuild() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// The address space (VmSize) and resident set (VmRSS) of a process, in bytes; 0 when unknown.
struct Memory {
  uint64_t address_space = 0, resident = 0;
};
Memory MemoryOf(const std::string& pid) {
  std::ifstream statm("/proc/" + pid + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return {};
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return {size * page, resident * page};
}

// What every child does first, before it execs the reader program or reads the PDF itself: only
// calls that are safe between fork and exec in a threaded process (no allocation, no lock).
// Keeps file descriptors 0 (`in`, or nothing) and 3 (`out`), no socket or file of the server.
void PrepareChild(int in_fd, int out_fd, pid_t parent, uint64_t address_space) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(3);  // the parent is already gone
  if (in_fd >= 0 && in_fd != 0 && ::dup2(in_fd, 0) < 0) _exit(4);
  if (out_fd != 3 && ::dup2(out_fd, 3) < 0) _exit(4);
  ::syscall(SYS_close_range, 4u, ~0u, 0u);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (address_space > 0) {
    rlimit limit{address_space, address_space};
    ::setrlimit(RLIMIT_AS, &limit);
  }
}

// A plain fork's child (no reader program): reads the PDF in the copy of this process.
[[noreturn]] void ReadInChild(std::string_view bytes, const std::string& filename) {
  SetLogLevel(LogLevel::kError);  // the child never logs (see the header)
  StatusOr<ParsedDocument> result = ParsePdf(bytes, filename);
  const bool written = WriteReaderAnswer(3, result);
  _exit(written ? 0 : 5);
}

std::string Megabytes(uint64_t bytes) { return std::to_string(bytes >> 20) + " MB"; }

// Whether a process is asleep (state S: waiting on a lock, a pipe, a timer) and the CPU time it
// has used, in clock ticks, from /proc/<pid>/stat; known = false when that cannot be read.
struct CpuState {
  bool known = false, asleep = false;
  uint64_t ticks = 0;
};
CpuState CpuStateOf(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return {};
  const size_t name_end = line.rfind(')');  // the name in parentheses may hold spaces
  if (name_end == std::string::npos) return {};
  std::istringstream fields(line.substr(name_end + 1));
  std::string state, skip;
  fields >> state;  // field 3
  for (int field = 4; field <= 13; ++field) fields >> skip;
  uint64_t user = 0, system = 0;  // fields 14 and 15
  if (!(fields >> user >> system)) return {};
  return {true, state == "S", user + system};
}

enum class ReaderEnd { kAnswered, kTimedOut, kTooBig, kStalled };
struct ReaderRun {
  ReaderEnd end = ReaderEnd::kAnswered;
  std::string answer;  // what the child wrote before it ended or was killed
  int wstatus = 0;     // its waitpid status
};

// One child reading the PDF, watched until it ends, the deadline passes, its memory grows past
// the limit or it sleeps max_stall_seconds without using the CPU (then it is killed); nullopt
// when no child could be started (logged).
std::optional<ReaderRun> RunReader(std::string_view bytes, const std::string& filename,
                                   const PdfReadLimits& limits, int attempt,
                                   std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  const std::string& program = ReaderProgram();
  const bool exec = !program.empty();
  // out: the answer; in (the program's stdin): the PDF's bytes, through a socket so that a
  // program that died makes send fail instead of raising SIGPIPE here.
  int out[2], in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) {
    RAG_LOG(WARN) << "ingest: no pipe for the PDF reader (" << std::strerror(errno)
                  << "); reading " << filename << " in this process";
    return std::nullopt;
  }
  if (exec && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
    const int err = errno;
    ::close(out[0]);
    ::close(out[1]);
    RAG_LOG(WARN) << "ingest: no socket for the PDF reader (" << std::strerror(err) << "); reading "
                  << filename << " in this process";
    return std::nullopt;
  }
  // Everything the child needs is made before the fork (it may not allocate).
  const std::vector<std::string> args = {program, filename, std::to_string(limits.max_pages),
                                         std::to_string(limits.max_decoded_bytes)};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The address-space cap: the program's base and the parse's allowance, or (a plain fork)
  // what the child has at the fork plus the allowance. None in AddressSanitizer builds, whose
  // shadow memory takes terabytes of address space.
  uint64_t address_space = 0;
  if (limits.max_memory_bytes > 0 && !AddressSanitizerBuild()) {
    address_space =
        limits.max_memory_bytes + (exec ? kProgramAddressSpace : MemoryOf("self").address_space);
  }
  const pid_t parent = ::getpid();
  void (*const hook)(int) = g_child_hook.load();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    for (int fd : {out[0], out[1], in[0], in[1]}) {
      if (fd >= 0) ::close(fd);
    }
    RAG_LOG(WARN) << "ingest: cannot start the PDF reader (" << std::strerror(err) << "); reading "
                  << filename << " in this process";
    return std::nullopt;
  }
  if (pid == 0) {
    if (hook != nullptr) hook(attempt);
    PrepareChild(in[0], out[1], parent, address_space);
    if (!exec) ReadInChild(bytes, filename);
    ::execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  ::close(out[1]);
  if (exec) {
    ::close(in[0]);
    g_program_runs.fetch_add(1);
  }
  std::string_view to_send = exec ? bytes : std::string_view();

  ReaderRun run;
  // The child's resident memory is watched too: RLIMIT_AS does not bind where the allocator
  // reserved its address space up front (AddressSanitizer builds). A plain fork's baseline is
  // what it shares with this process right after the fork; the program's, its base.
  const std::string child = std::to_string(pid);
  const uint64_t baseline = exec ? kProgramResident : MemoryOf(child).resident;
  CpuState cpu = CpuStateOf(child);
  Clock::time_point last_progress = Clock::now();  // when it last ran or was awake
  char buffer[65536];
  for (;;) {
    const Clock::time_point now = Clock::now();
    const CpuState seen = CpuStateOf(child);
    if (!seen.known || !seen.asleep || seen.ticks != cpu.ticks) last_progress = now;
    cpu = seen;
    std::optional<ReaderEnd> stop;
    if (now >= deadline) {
      stop = ReaderEnd::kTimedOut;
    } else if (limits.max_memory_bytes > 0 && baseline > 0 &&
               MemoryOf(child).resident > baseline + limits.max_memory_bytes) {
      stop = ReaderEnd::kTooBig;
    } else if (std::chrono::duration<double>(now - last_progress).count() >
               limits.max_stall_seconds) {
      stop = ReaderEnd::kStalled;
    }
    if (stop) {
      run.end = *stop;
      ::kill(pid, SIGKILL);
      break;
    }
    // The PDF's bytes go to the program's stdin as it takes them; its answer comes back.
    pollfd p[2] = {{out[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    const nfds_t watched = in[1] >= 0 ? 2 : 1;
    const double left_ms = std::chrono::duration<double, std::milli>(deadline - now).count();
    const int wait_ms = static_cast<int>(std::min(200.0, left_ms) + 1);
    const int ready = ::poll(p, watched, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (watched == 2 && p[1].revents != 0) {
      const ssize_t n = ::send(in[1], to_send.data(), to_send.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) to_send.remove_prefix(static_cast<size_t>(n));
      if (to_send.empty() || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        ::close(in[1]);  // all sent (or the program is gone): it sees the end of its input
        in[1] = -1;
      }
    }
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF: the child is done (or dead)
    run.answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (in[1] >= 0) ::close(in[1]);
  while (::waitpid(pid, &run.wstatus, 0) < 0 && errno == EINTR) {
  }
  return run;
}

}  // namespace

bool PdfChildProcessesAreSafe() { return !AddressSanitizerBuild(); }

void SetPdfReaderChildHookForTesting(void (*hook)(int attempt)) { g_child_hook.store(hook); }

int64_t PdfReaderProgramRuns() { return g_program_runs.load(); }

StatusOr<ParsedDocument> ParsePdfInChildProcess(std::string_view bytes, const std::string& filename,
                                                const PdfReadLimits& limits) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(limits.max_seconds));
  std::optional<ReaderRun> run;
  for (int attempt = 0; attempt < kPdfReaderAttempts; ++attempt) {
    run = RunReader(bytes, filename, limits, attempt, deadline);
    if (!run) return ParsePdf(bytes, filename);  // no process could be started (logged)
    if (run->end != ReaderEnd::kStalled) break;
    RAG_LOG(WARN) << "ingest: the PDF reader of " << filename << " slept "
                  << limits.max_stall_seconds << " s without using the CPU (attempt " << attempt + 1
                  << " of " << kPdfReaderAttempts
                  << "); killed it, as stuck on a lock held at its fork";
  }
  const int wstatus = run->wstatus;
  switch (run->end) {
    case ReaderEnd::kStalled:
      return Internal(filename + ": the PDF reader process got stuck " +
                      std::to_string(kPdfReaderAttempts) +
                      " times (asleep without using the CPU); try the upload again");
    case ReaderEnd::kTimedOut:
      return ResourceExhausted(filename + ": reading the PDF took longer than " +
                               std::to_string(static_cast<int>(limits.max_seconds)) +
                               " s; refused (a PDF that repeats its content without end?)");
    case ReaderEnd::kTooBig:
      return ResourceExhausted(filename + ": reading the PDF needs more than " +
                               Megabytes(limits.max_memory_bytes) + " of memory; refused");
    case ReaderEnd::kAnswered:
      break;
  }
  if (WIFSIGNALED(wstatus)) {
    return InvalidArgument(filename + ": the PDF crashed the PDF reader (signal " +
                           std::to_string(WTERMSIG(wstatus)) + "); it is corrupt or hostile");
  }
  StatusOr<ParsedDocument> result = DecodeReaderAnswer(run->answer, filename);
  if (!result.ok() && result.status().message().find("bad_alloc") != std::string::npos) {
    return ResourceExhausted(filename + ": reading the PDF needs more than " +
                             Megabytes(limits.max_memory_bytes) + " of memory; refused");
  }
  if (!result.ok() && (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) &&
      result.status().message().find("garbled") != std::string::npos) {
    return Internal(filename + ": the PDF reader exited with status " +
                    std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1));
  }
  return result;
}

}  // namespace rag::ingest_internal
