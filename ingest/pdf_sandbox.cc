#include "ingest/pdf_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "common/logging.h"

namespace rag::ingest_internal {
namespace {

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

StatusOr<ParsedDocument> ParsePdfInChildProcess(std::string_view bytes, const std::string& filename,
                                                const PdfReadLimits& limits) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    RAG_LOG(WARN) << "ingest: no pipe for the PDF reader (" << std::strerror(errno)
                  << "); reading " << filename << " in this process";
    return ParsePdf(bytes, filename);
  }
  const uint64_t address_space =
      limits.max_memory_bytes > 0 ? MemoryOf("self").address_space + limits.max_memory_bytes : 0;
  const pid_t parent = ::getpid();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    RAG_LOG(WARN) << "ingest: cannot start the PDF reader (" << std::strerror(err) << "); reading "
                  << filename << " in this process";
    return ParsePdf(bytes, filename);
  }
  if (pid == 0) {
    ::close(fds[0]);
    RunChild(fds[1], parent, address_space, bytes, filename);
  }
  ::close(fds[1]);

  std::string answer;
  bool timed_out = false, too_big = false;
  // The child's resident memory is watched too: RLIMIT_AS does not bind where the allocator
  // reserved its address space up front (AddressSanitizer builds). The baseline is what it
  // shares with this process right after the fork.
  const std::string child = std::to_string(pid);
  const uint64_t baseline = MemoryOf(child).resident;
  char buffer[65536];
  for (;;) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > limits.max_seconds) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (limits.max_memory_bytes > 0 && baseline > 0 &&
        MemoryOf(child).resident > baseline + limits.max_memory_bytes) {
      too_big = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int wait_ms = static_cast<int>(std::min(200.0, (limits.max_seconds - elapsed) * 1000) + 1);
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF: the child is done (or dead)
    answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return ResourceExhausted(filename + ": reading the PDF took longer than " +
                             std::to_string(static_cast<int>(limits.max_seconds)) +
                             " s; refused (a PDF that repeats its content without end?)");
  }
  if (too_big) {
    return ResourceExhausted(filename + ": reading the PDF needs more than " +
                             Megabytes(limits.max_memory_bytes) + " of memory; refused");
  }
  if (WIFSIGNALED(wstatus)) {
    return InvalidArgument(filename + ": the PDF crashed the PDF reader (signal " +
                           std::to_string(WTERMSIG(wstatus)) + "); it is corrupt or hostile");
  }
  StatusOr<ParsedDocument> result = Decode(answer, filename);
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
