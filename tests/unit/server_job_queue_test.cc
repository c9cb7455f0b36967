#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/job_queue.h"

namespace rag {
namespace {

using namespace std::chrono_literals;

// A processor the test controls: each call blocks until released, reporting progress first.
class Gate {
 public:
  Status Process(int64_t id, const IngestProgressFn& progress) {
    if (progress) progress(IngestProgress{1, 2, 3, 4});
    std::unique_lock<std::mutex> lock(mu_);
    ++started_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_ > 0; });
    --released_;
    return id % 2 == 0 ? Status::Ok() : InvalidArgument("odd document " + std::to_string(id));
  }
  void Release(int n = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    released_ += n;
    cv_.notify_all();
  }
  void WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return started_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  int released_ = 0;
};

JobRecord WaitFinished(const JobQueue& queue, const std::string& id) {
  for (int i = 0; i < 2000; ++i) {
    std::optional<JobRecord> job = queue.Get(id);
    if (job && (job->state == JobState::kDone || job->state == JobState::kFailed)) return *job;
    std::this_thread::sleep_for(1ms);
  }
  ADD_FAILURE() << "job " << id << " did not finish";
  return {};
}

TEST(JobQueue, RunsJobsAndRecordsOutcome) {
  Gate gate;
  JobQueue queue([&](int64_t id, const IngestProgressFn& p) { return gate.Process(id, p); }, {});
  queue.Start();
  auto ok_job = queue.Submit(2, "two.pdf");
  ASSERT_TRUE(ok_job.ok());
  EXPECT_EQ(ok_job->id, "j-1");
  EXPECT_EQ(ok_job->state, JobState::kQueued);
  EXPECT_FALSE(ok_job->created_at.empty());
  gate.WaitStarted(1);
  std::optional<JobRecord> running = queue.Get("j-1");
  ASSERT_TRUE(running);
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(running->progress.chunks_total, 4);
  EXPECT_EQ(queue.running(), 1u);
  EXPECT_EQ(queue.ActiveJobFor(2)->id, "j-1");
  gate.Release();
  JobRecord done = WaitFinished(queue, "j-1");
  EXPECT_EQ(done.state, JobState::kDone);
  EXPECT_FALSE(done.finished_at.empty());
  EXPECT_FALSE(queue.ActiveJobFor(2));

  auto bad_job = queue.Submit(3, "three.pdf");
  ASSERT_TRUE(bad_job.ok());
  gate.Release();
  JobRecord failed = WaitFinished(queue, bad_job->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error, "odd document 3");
  EXPECT_FALSE(queue.Get("j-99"));
}

TEST(JobQueue, BoundedQueueRefusesWithResourceExhausted) {
  Gate gate;
  JobQueueOptions options;
  options.capacity = 2;
  JobQueue queue([&](int64_t id, const IngestProgressFn& p) { return gate.Process(id, p); },
                 options);
  queue.Start();
  ASSERT_TRUE(queue.Submit(10, "a").ok());
  gate.WaitStarted(1);  // j-1 runs; the next two wait
  ASSERT_TRUE(queue.Submit(12, "b").ok());
  ASSERT_TRUE(queue.Submit(14, "c").ok());
  EXPECT_FALSE(queue.HasRoom());
  EXPECT_EQ(queue.Submit(16, "d").status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(queue.Resume(18, "resumed").ok());  // resumed documents are not bounded
  EXPECT_EQ(queue.queued(), 3u);
  gate.Release(4);
  WaitFinished(queue, "j-4");
  EXPECT_TRUE(queue.HasRoom());
}

TEST(JobQueue, CancelForDocumentDropsQueuedAndRefusesRunning) {
  Gate gate;
  JobQueue queue([&](int64_t id, const IngestProgressFn& p) { return gate.Process(id, p); }, {});
  queue.Start();
  ASSERT_TRUE(queue.Submit(20, "running").ok());
  gate.WaitStarted(1);
  ASSERT_TRUE(queue.Submit(22, "queued").ok());
  EXPECT_EQ(queue.CancelForDocument(20).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(queue.CancelForDocument(22).ok());
  EXPECT_TRUE(queue.CancelForDocument(99).ok());  // no job: nothing to do
  std::optional<JobRecord> cancelled = queue.Get("j-2");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, JobState::kFailed);
  EXPECT_EQ(queue.queued(), 0u);
  gate.Release(2);
  WaitFinished(queue, "j-1");
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(queue.Get("j-2")->error, "cancelled: document deleted");  // never started
}

TEST(JobQueue, ShutdownFinishesRunningJobAndLeavesQueuedOnes) {
  Gate gate;
  std::atomic<int> calls{0};
  JobQueue queue(
      [&](int64_t id, const IngestProgressFn& p) {
        ++calls;
        return gate.Process(id, p);
      },
      {});
  queue.Start();
  ASSERT_TRUE(queue.Submit(30, "a").ok());
  gate.WaitStarted(1);
  ASSERT_TRUE(queue.Submit(32, "b").ok());
  std::thread stopper([&] { queue.Shutdown(); });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(queue.Submit(34, "c").status().code(), StatusCode::kUnavailable);
  gate.Release(2);
  stopper.join();
  EXPECT_EQ(queue.Get("j-1")->state, JobState::kDone);
  EXPECT_EQ(queue.Get("j-2")->state, JobState::kQueued);
  EXPECT_EQ(calls.load(), 1);
  queue.Shutdown();  // idempotent
}

TEST(JobQueue, KeepsOnlyTheNewestFinishedRecords) {
  JobQueueOptions options;
  options.keep_finished = 3;
  options.capacity = 100;
  JobQueue queue([](int64_t, const IngestProgressFn&) { return Status::Ok(); }, options);
  queue.Start();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(queue.Submit(i, "f").ok());
  WaitFinished(queue, "j-6");
  for (int i = 0; i < 200 && queue.Get("j-3"); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(queue.Get("j-1"));
  EXPECT_FALSE(queue.Get("j-3"));
  EXPECT_TRUE(queue.Get("j-4"));
  EXPECT_TRUE(queue.Get("j-6"));
}

TEST(JobQueue, ExceptionsFromTheProcessorFailTheJob) {
  JobQueue queue(
      [](int64_t, const IngestProgressFn&) -> Status { throw std::runtime_error("boom"); }, {});
  queue.Start();
  auto job = queue.Submit(1, "x");
  ASSERT_TRUE(job.ok());
  JobRecord failed = WaitFinished(queue, job->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.error.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace rag
