#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace rag {
namespace {

LogLevel LevelFromEnvironment() {
  LogLevel level = LogLevel::kInfo;
  if (const char* env = std::getenv("RAG_LOG_LEVEL")) ParseLogLevel(env, &level);
  return level;
}

std::atomic<int>& Threshold() {
  static std::atomic<int> threshold{static_cast<int>(LevelFromEnvironment())};
  return threshold;
}

std::mutex& LogMutex() {
  static std::mutex mu;
  return mu;
}

LogLineGuard*& Guard() {
  static LogLineGuard* guard = nullptr;
  return guard;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

}  // namespace

void SetLogLevel(LogLevel level) { Threshold().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Threshold().load()); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= Threshold().load(); }

bool ParseLogLevel(const std::string& name, LogLevel* level) {
  if (name == "debug") *level = LogLevel::kDebug;
  else if (name == "info") *level = LogLevel::kInfo;
  else if (name == "warn" || name == "warning") *level = LogLevel::kWarn;
  else if (name == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

void WriteLogLine(LogLevel level, const std::string& message) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const int millis = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);

  std::string line;
  line.reserve(message.size() + 48);
  line += stamp;
  char ms[8];
  std::snprintf(ms, sizeof(ms), ".%03dZ ", millis);
  line += ms;
  line += LevelName(level);
  line += ' ';
  for (char c : message) {
    if (c == '\n') line += "\\n";
    else if (c == '\r') line += "\\r";
    else line += c;
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(LogMutex());
  if (Guard()) Guard()->BeforeLogLine();
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  if (Guard()) Guard()->AfterLogLine();
}

void SetLogLineGuard(LogLineGuard* guard) {
  std::lock_guard<std::mutex> lock(LogMutex());
  Guard() = guard;
}

}  // namespace rag
