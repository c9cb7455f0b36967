// A terminal progress bar for long work (ingestion). On a terminal it redraws one line on
// stderr, at most ~10 times a second; when stderr is not a terminal it draws nothing, so logs
// and CI output stay clean. Thread-safe: workers may call Add() concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <string>

#include "common/logging.h"

namespace rag {

class ProgressBar : public LogLineGuard {
 public:
  // total == 0 means unknown: the bar shows a count instead of a percentage.
  ProgressBar(std::string label, size_t total, std::FILE* out = stderr);
  ~ProgressBar();  // calls Finish()

  void Add(size_t n = 1, const std::string& detail = "");
  void SetTotal(size_t total);
  // Draws the final state and moves to a new line (once).
  void Finish();

  // The line as it would be drawn, e.g. "ingest [#####-----]  50% 5/10 file.pdf"; for tests.
  std::string Render() const;
  bool enabled() const { return enabled_; }
  size_t done() const;

  // LogLineGuard: log lines written while the bar is on screen appear above it.
  void BeforeLogLine() override;
  void AfterLogLine() override;

 private:
  void DrawLocked(bool force);
  std::string RenderLocked() const;

  mutable std::mutex mu_;
  std::string label_;
  size_t total_;
  size_t done_ = 0;
  std::string detail_;
  std::FILE* out_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace rag
