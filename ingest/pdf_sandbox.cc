#include "ingest/pdf_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>

#include "common/logging.h"

namespace rag::ingest_internal {
namespace {

std::atomic<void (*)(int)> g_child_hook{nullptr};  // SetPdfReaderChildHookForTesting

// ---- The child's answer on the pipe: a tag byte, then the Status or the ParsedDocument. ----

void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }
void PutString(std::string* out, std::string_view s) {
  PutU64(out, s.size());
  out->append(s);
}

std::string Encode(const StatusOr<ParsedDocument>& result) {
  std::string out;
  if (!result.ok()) {
    out.push_back('E');
    PutU64(&out, static_cast<uint64_t>(result.status().code()));
    PutString(&out, result.status().message());
    return out;
  }
  const ParsedDocument& doc = *result;
  out.push_back('D');
  PutString(&out, doc.title);
  PutString(&out, doc.format);
  PutU64(&out, doc.pages.size());
  for (const PageText& p : doc.pages) {
    PutU64(&out, static_cast<uint64_t>(p.number));
    PutString(&out, p.text);
  }
  PutU64(&out, doc.sections.size());
  for (const SectionStart& s : doc.sections) {
    PutU64(&out, static_cast<uint64_t>(s.page));
    PutU64(&out, s.offset);
    PutString(&out, s.title);
  }
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U64(uint64_t* v) {
    if (data_.size() < 8) return false;
    std::memcpy(v, data_.data(), 8);
    data_.remove_prefix(8);
    return true;
  }
  bool String(std::string* s) {
    uint64_t n;
    if (!U64(&n) || n > data_.size()) return false;
    s->assign(data_.substr(0, n));
    data_.remove_prefix(n);
    return true;
  }
  bool done() const { return data_.empty(); }

 private:
  std::string_view data_;
};

StatusOr<ParsedDocument> Decode(std::string_view data, const std::string& filename) {
  const Status garbled = Internal(filename + ": the PDF reader's answer is garbled");
  if (data.empty()) return garbled;
  const char tag = data.front();
  Reader r(data.substr(1));
  if (tag == 'E') {
    uint64_t code;
    std::string message;
    if (!r.U64(&code) || !r.String(&message) || !r.done() ||
        code > static_cast<uint64_t>(StatusCode::kUnavailable)) {
      return garbled;
    }
    return Status(static_cast<StatusCode>(code), message);
  }
  if (tag != 'D') return garbled;
  ParsedDocument doc;
  uint64_t n;
  if (!r.String(&doc.title) || !r.String(&doc.format) || !r.U64(&n)) return garbled;
  for (uint64_t i = 0; i < n; ++i) {
    PageText p;
    uint64_t number;
    if (!r.U64(&number) || !r.String(&p.text)) return garbled;
    p.number = static_cast<int>(number);
    doc.pages.push_back(std::move(p));
  }
  if (!r.U64(&n)) return garbled;
  for (uint64_t i = 0; i < n; ++i) {
    SectionStart s;
    uint64_t page, offset;
    if (!r.U64(&page) || !r.U64(&offset) || !r.String(&s.title)) return garbled;
    s.page = static_cast<int>(page);
    s.offset = offset;
    doc.sections.push_back(std::move(s));
  }
  if (!r.done()) return garbled;
  return doc;
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

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

[[noreturn]] void RunChild(int out_fd, pid_t parent, uint64_t address_space,
                           std::string_view bytes, const std::string& filename) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(3);  // the parent is already gone
  // Keep only the pipe: no socket or file of the server lives on in the child.
  if (out_fd != 3) {
    if (::dup2(out_fd, 3) < 0) _exit(4);
    out_fd = 3;
  }
  ::syscall(SYS_close_range, 4u, ~0u, 0u);
  ::signal(SIGPIPE, SIG_DFL);
  SetLogLevel(LogLevel::kError);  // the child never logs (see the header)
  if (address_space > 0) {
    rlimit limit{address_space, address_space};
    ::setrlimit(RLIMIT_AS, &limit);
  }
  StatusOr<ParsedDocument> result = ParsePdf(bytes, filename);
  const bool written = WriteAll(out_fd, Encode(result));
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
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    RAG_LOG(WARN) << "ingest: no pipe for the PDF reader (" << std::strerror(errno)
                  << "); reading " << filename << " in this process";
    return std::nullopt;
  }
  const uint64_t address_space =
      limits.max_memory_bytes > 0 ? MemoryOf("self").address_space + limits.max_memory_bytes : 0;
  const pid_t parent = ::getpid();
  void (*const hook)(int) = g_child_hook.load();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    RAG_LOG(WARN) << "ingest: cannot start the PDF reader (" << std::strerror(err) << "); reading "
                  << filename << " in this process";
    return std::nullopt;
  }
  if (pid == 0) {
    ::close(fds[0]);
    if (hook != nullptr) hook(attempt);
    RunChild(fds[1], parent, address_space, bytes, filename);
  }
  ::close(fds[1]);

  ReaderRun run;
  // The child's resident memory is watched too: RLIMIT_AS does not bind where the allocator
  // reserved its address space up front (AddressSanitizer builds). The baseline is what it
  // shares with this process right after the fork.
  const std::string child = std::to_string(pid);
  const uint64_t baseline = MemoryOf(child).resident;
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
    pollfd p{fds[0], POLLIN, 0};
    const double left_ms = std::chrono::duration<double, std::milli>(deadline - now).count();
    const int wait_ms = static_cast<int>(std::min(200.0, left_ms) + 1);
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF: the child is done (or dead)
    run.answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  while (::waitpid(pid, &run.wstatus, 0) < 0 && errno == EINTR) {
  }
  return run;
}

}  // namespace

bool PdfChildProcessesAreSafe() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

void SetPdfReaderChildHookForTesting(void (*hook)(int attempt)) { g_child_hook.store(hook); }

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
  StatusOr<ParsedDocument> result = Decode(run->answer, filename);
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
