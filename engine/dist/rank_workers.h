// One thread per rank of a tensor-parallel group (issue 8: "one thread and communicator per
// GPU"). A rank's CUDA work is always enqueued from its own thread: its current device is set
// once, its graphs are captured in thread-local mode, and the ranks' host-side work (planning,
// uploads, launches) runs side by side instead of one rank after the other.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"

namespace rag {

class RankWorkers {
 public:
  explicit RankWorkers(int ranks);  // starts the threads
  ~RankWorkers();                   // joins them (after the job in flight)
  RankWorkers(const RankWorkers&) = delete;
  RankWorkers& operator=(const RankWorkers&) = delete;

  int size() const { return static_cast<int>(threads_.size()); }

  // Runs job(rank) on every rank's thread at once and waits for all of them; returns the
  // error of the lowest rank that failed, or Ok. One job at a time (calls are serialised).
  Status RunAll(const std::function<Status(int rank)>& job);

 private:
  void Loop(int rank);

  std::mutex call_mu_;  // one RunAll at a time
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<Status(int)>* job_ = nullptr;
  unsigned long generation_ = 0;  // bumped per job; a thread runs each generation once
  int pending_ = 0;
  bool stop_ = false;
  std::vector<Status> results_;
  std::vector<std::thread> threads_;
};

}  // namespace rag
