// Progress of a long load that nobody watches on a bar, such as a model's weights (a 70B model
// reads ~140 GB: a minute or more before `rag serve` answers): an INFO log line each time another
// tenth is done, once the load has run `quiet_s` seconds (so a small model loads without a
// word), and a closing line with the time it took when the load was that long. Not thread-safe:
// one loading thread calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace rag {

class LoadProgress {
 public:
  using Clock = std::function<double()>;                 // seconds, monotonic
  using Sink = std::function<void(const std::string&)>;  // one line

  // `what` names the load ("model weights"), `unit` what total counts ("layers"). total <= 0
  // makes it silent (e.g. the ranks of a tensor-parallel group other than rank 0). The clock
  // (default: steady_clock) and the sink (default: RAG_LOG(INFO)) are for tests.
  LoadProgress(std::string what, int64_t total, std::string unit, double quiet_s = 2.0,
               Clock clock = {}, Sink sink = {});

  // n more units done.
  void Add(int64_t n = 1);
  // The closing line ("model weights: 80 layers in 71.3 s"), where the load ran quiet_s or
  // more. Safe to call more than once.
  void Finish();

  int lines() const { return lines_; }

 private:
  void Write(const std::string& line);

  std::string what_, unit_;
  int64_t total_, done_ = 0;
  double quiet_s_, start_ = 0;
  Clock clock_;
  Sink sink_;
  int tenths_written_ = 0;  // the highest tenth a line was written for
  int lines_ = 0;
  bool finished_ = false;
};

}  // namespace rag
