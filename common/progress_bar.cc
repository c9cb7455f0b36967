#include "common/progress_bar.h"

#include <unistd.h>

#include <algorithm>

namespace rag {

ProgressBar::ProgressBar(std::string label, size_t total, std::FILE* out)
    : label_(std::move(label)), total_(total), out_(out),
      enabled_(out != nullptr && isatty(fileno(out))),
      start_(std::chrono::steady_clock::now()) {
  if (enabled_) SetLogLineGuard(this);
}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::BeforeLogLine() {
  std::lock_guard<std::mutex> lock(mu_);
  if (enabled_ && !finished_) std::fprintf(out_, "\r\x1b[K");
}

void ProgressBar::AfterLogLine() {
  std::lock_guard<std::mutex> lock(mu_);
  if (enabled_ && !finished_) DrawLocked(true);
}

void ProgressBar::Add(size_t n, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  if (!detail.empty()) detail_ = detail;
  DrawLocked(false);
}

void ProgressBar::SetTotal(size_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
}

size_t ProgressBar::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void ProgressBar::Finish() {
  // Uninstalled before taking our lock: the log takes its lock, then ours.
  if (enabled_) SetLogLineGuard(nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  DrawLocked(true);
  std::fputc('\n', out_);
  std::fflush(out_);
}

std::string ProgressBar::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return RenderLocked();
}

std::string ProgressBar::RenderLocked() const {
  constexpr int kWidth = 30;
  std::string line = label_ + " ";
  char buf[96];
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    const int filled = static_cast<int>(frac * kWidth);
    line += '[';
    line.append(filled, '#');
    line.append(kWidth - filled, '-');
    std::snprintf(buf, sizeof(buf), "] %3d%% %zu/%zu", static_cast<int>(frac * 100), done_, total_);
  } else {
    std::snprintf(buf, sizeof(buf), "%zu", done_);
  }
  line += buf;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::snprintf(buf, sizeof(buf), " %.1fs", secs);
  line += buf;
  if (!detail_.empty()) {
    // Keep the line short enough for an 80-column terminal.
    std::string d = detail_;
    if (d.size() > 32) d = "..." + d.substr(d.size() - 29);
    line += " " + d;
  }
  return line;
}

void ProgressBar::DrawLocked(bool force) {
  if (!enabled_ || (finished_ && !force)) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  // \r and erase-to-end-of-line redraw in place.
  std::fprintf(out_, "\r%s\x1b[K", RenderLocked().c_str());
  std::fflush(out_);
}

}  // namespace rag
