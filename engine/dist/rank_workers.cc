#include "engine/dist/rank_workers.h"

namespace rag {

RankWorkers::RankWorkers(int ranks) : results_(static_cast<size_t>(ranks > 0 ? ranks : 1)) {
  for (int r = 0; r < static_cast<int>(results_.size()); ++r) threads_.emplace_back([this, r] { Loop(r); });
}

RankWorkers::~RankWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankWorkers::Loop(int rank) {
  unsigned long seen = 0;
  for (;;) {
    const std::function<Status(int)>* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    Status s = (*job)(rank);
    std::lock_guard<std::mutex> lock(mu_);
    results_[static_cast<size_t>(rank)] = std::move(s);
    if (--pending_ == 0) done_cv_.notify_all();
  }
}

Status RankWorkers::RunAll(const std::function<Status(int rank)>& job) {
  std::lock_guard<std::mutex> call(call_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    pending_ = size();
    ++generation_;
  }
  start_cv_.notify_all();
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
  for (Status& s : results_) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace rag
