#include "common/load_progress.h"

#include <chrono>
#include <cstdio>
#include <utility>

#include "common/logging.h"

namespace rag {

LoadProgress::LoadProgress(std::string what, int64_t total, std::string unit, double quiet_s,
                           Clock clock, Sink sink)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      quiet_s_(quiet_s),
      clock_(std::move(clock)),
      sink_(std::move(sink)) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
  if (!sink_) sink_ = [](const std::string& line) { RAG_LOG(INFO) << line; };
  start_ = clock_();
}

void LoadProgress::Add(int64_t n) {
  if (total_ <= 0 || finished_) return;
  done_ += n;
  if (done_ >= total_) return;  // the closing line says it
  const int tenths = static_cast<int>(done_ * 10 / total_);
  if (tenths <= tenths_written_) return;
  const double elapsed = clock_() - start_;
  if (elapsed < quiet_s_) return;
  tenths_written_ = tenths;
  char line[64];
  std::snprintf(line, sizeof line, " after %.1f s", elapsed);
  Write(what_ + ": " + std::to_string(tenths * 10) + "% (" + std::to_string(done_) + " of " +
        std::to_string(total_) + " " + unit_ + ")" + line);
}

void LoadProgress::Finish() {
  if (total_ <= 0 || finished_) return;
  finished_ = true;
  const double elapsed = clock_() - start_;
  if (elapsed < quiet_s_ && lines_ == 0) return;
  char line[64];
  std::snprintf(line, sizeof line, " in %.1f s", elapsed);
  Write(what_ + ": " + std::to_string(done_) + " " + unit_ + line);
}

void LoadProgress::Write(const std::string& line) {
  sink_(line);
  ++lines_;
}

}  // namespace rag
