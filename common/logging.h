// Logging: one line per event, with a UTC timestamp and a level, written whole to stderr
// (lines from different threads never interleave).
//
//   RAG_LOG(INFO) << "ingest: stored document id=" << id << " chunks=" << n;
//   -> 2026-11-27T10:00:00.123Z INFO ingest: stored document id=3 chunks=20
//
// The threshold comes from SetLogLevel or the RAG_LOG_LEVEL environment variable
// (debug, info, warn, error); the default is info. Embedded newlines are escaped as "\n" so
// that an event stays one line.
#pragma once

#include <sstream>
#include <string>

namespace rag {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn"/"warning", "error"; returns false on anything else.
bool ParseLogLevel(const std::string& name, LogLevel* level);
bool LogEnabled(LogLevel level);
void WriteLogLine(LogLevel level, const std::string& message);

// Something drawn on the terminal below the log, such as a progress bar: it is erased before
// each log line and drawn again after it, so lines and the bar never mix. Both calls run under
// the log's lock. At most one is installed; pass nullptr to remove it.
class LogLineGuard {
 public:
  virtual ~LogLineGuard() = default;
  virtual void BeforeLogLine() = 0;
  virtual void AfterLogLine() = 0;
};
void SetLogLineGuard(LogLineGuard* guard);

namespace internal {
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { WriteLogLine(level_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace rag

#define RAG_LOG_LEVEL_DEBUG ::rag::LogLevel::kDebug
#define RAG_LOG_LEVEL_INFO ::rag::LogLevel::kInfo
#define RAG_LOG_LEVEL_WARN ::rag::LogLevel::kWarn
#define RAG_LOG_LEVEL_ERROR ::rag::LogLevel::kError

#define RAG_LOG(level)                                    \
  if (!::rag::LogEnabled(RAG_LOG_LEVEL_##level)) {        \
  } else                                                  \
    ::rag::internal::LogMessage(RAG_LOG_LEVEL_##level).stream()
