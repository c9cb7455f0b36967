#include "common/file_util.h"

#include "common/sha256.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rag {

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound("no such file: " + path);
  if (std::filesystem::is_directory(path, ec)) return InvalidArgument("is a directory: " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return DataLoss("read error in " + path);
  return ss.str();
}

namespace {
// A failed write or fsync. Running out of room (a full disk, a quota, the file size limit) is
// ResourceExhausted starting "disk full: ", as the document store reports SQLITE_FULL, so that
// the server can answer 507 and the command line can say what to free.
Status WriteError(const std::string& what, int err) {
  const std::string message = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return ResourceExhausted("disk full: " + message);
  return Internal(message);
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return WriteError("write " + path, errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}
}  // namespace

StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path) {
  // Unique per call: two threads writing the same path must not share a temporary file.
  static std::atomic<unsigned long> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return InvalidArgument("cannot create " + tmp + ": " + std::strerror(errno));
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, std::move(tmp), fd));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

Status AtomicFileWriter::Write(std::string_view data) {
  if (fd_ < 0) return FailedPrecondition(tmp_ + ": written after Commit");
  return WriteAll(fd_, data, tmp_);
}

Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return FailedPrecondition(tmp_ + ": committed twice");
  const bool synced = ::fsync(fd_) == 0;
  const int sync_errno = synced ? 0 : errno;
  ::close(fd_);
  fd_ = -1;
  if (!synced) return WriteError("fsync " + tmp_, sync_errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return Internal("rename " + tmp_ + " -> " + path_ + ": " + std::strerror(errno));
  }
  committed_ = true;
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file, AtomicFileWriter::Create(path));
  RAG_RETURN_IF_ERROR(file->Write(data));
  return file->Commit();
}

int RemoveStaleTempFiles(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return 0;
  int removed = 0;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    // NAME.tmp.<pid>.<n>, as AtomicFileWriter::Create names them.
    const size_t tmp = name.rfind(".tmp.");
    if (tmp == std::string::npos || tmp == 0) continue;
    const std::string_view rest = std::string_view(name).substr(tmp + 5);
    const size_t dot = rest.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size()) continue;
    const std::string_view pid_text = rest.substr(0, dot), n_text = rest.substr(dot + 1);
    auto digits = [](std::string_view s) {
      return s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(pid_text) || !digits(n_text)) continue;
    const long long pid = std::stoll(std::string(pid_text));
    if (pid <= 0 || pid == ::getpid()) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists).
    if (pid <= INT32_MAX && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
    if (fs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return InvalidArgument("cannot create directory " + path + ": " + ec.message());
  return Status::Ok();
}

std::string Sha256Hex(std::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.HexDigest();
}

std::string FileExtension(std::string_view path) {
  const std::string base = BaseName(path);
  const size_t dot = base.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  std::string ext = base.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string BaseName(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace rag
