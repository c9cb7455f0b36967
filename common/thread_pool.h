// A fixed-size thread pool. Submit() is thread-safe; tasks run in FIFO order. The destructor
// finishes every task already submitted, then joins. Tasks must not throw (an escaping exception
// terminates, as with std::thread).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace rag {

class ThreadPool {
 public:
  // num_threads == 0 means std::thread::hardware_concurrency() (at least 1).
  explicit ThreadPool(size_t num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);

  // Submits a callable and returns a future for its result.
  template <typename F>
  auto Async(F&& f) -> std::future<decltype(f())> {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::forward<F>(f));
    auto future = task->get_future();
    Submit([task] { (*task)(); });
    return future;
  }

  // Runs fn(i) for i in [0, n) over the pool and waits for all of them.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

  // Tasks queued and not yet started.
  size_t pending() const;
  size_t size() const { return workers_.size(); }

 private:
  void WorkerLoop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace rag
