// Files: whole-file reads, crash-safe writes, content hashes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rag {

// Reads a whole file. NotFound when it does not exist; InvalidArgument for a directory.
StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes data so that a crash leaves either the old file or the new one, never a mix:
// write to "path.tmp.<pid>.<n>" (unique per call), fsync, rename over path, fsync the directory.
Status WriteFileAtomic(const std::string& path, std::string_view data);

// WriteFileAtomic in pieces, for files too large to hold in memory (a quantized model): Create,
// Write any number of times, Commit. Destroyed without a successful Commit, the temporary file
// is removed and path is left as it was.
class AtomicFileWriter {
 public:
  static StatusOr<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Write(std::string_view data);
  // fsync, rename over path, fsync the directory.
  Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Removes the temporary files of WriteFileAtomic and AtomicFileWriter ("NAME.tmp.<pid>.<n>")
// directly in `dir` whose writing process is gone: a process killed mid-write (a crash, SIGKILL)
// leaves them behind, and nothing else would ever remove them. Files of a running process
// (another `rag` writing into the same folder) and of this process are kept. Returns how many
// were removed; a missing or unreadable directory removes nothing.
int RemoveStaleTempFiles(const std::string& dir);

// Creates the directory and its parents (like mkdir -p).
Status MakeDirs(const std::string& path);

// SHA-256 of data as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// Lower-cased extension without the dot ("report.PDF" -> "pdf"), "" when there is none.
std::string FileExtension(std::string_view path);

// The last path component ("a/b/c.txt" -> "c.txt").
std::string BaseName(std::string_view path);

}  // namespace rag
