// RankWorkers (engine/dist/rank_workers.h): every job runs on all rank threads at once (a job
// that waits for all ranks to arrive finishes only if they run concurrently), each rank always
// on the same thread, and the lowest failing rank's error comes back.
#include "engine/dist/rank_workers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace rag {
namespace {

TEST(RankWorkersTest, RunsEveryRankAtOnceOnItsOwnThread) {
  constexpr int kRanks = 4;
  RankWorkers workers(kRanks);
  ASSERT_EQ(workers.size(), kRanks);
  std::vector<std::thread::id> first(kRanks), again(kRanks);
  for (std::vector<std::thread::id>* ids : {&first, &again}) {
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    const Status s = workers.RunAll([&](int rank) -> Status {
      std::unique_lock<std::mutex> lock(mu);
      (*ids)[static_cast<size_t>(rank)] = std::this_thread::get_id();
      ++arrived;
      cv.notify_all();
      // A barrier of all ranks: only reached by all if they run side by side.
      if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived == kRanks; })) {
        return Internal("rank " + std::to_string(rank) + " ran alone");
      }
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(first, again);
  EXPECT_EQ(std::set<std::thread::id>(first.begin(), first.end()).size(), static_cast<size_t>(kRanks));
  EXPECT_EQ(std::count(first.begin(), first.end(), std::this_thread::get_id()), 0);
}

TEST(RankWorkersTest, ReturnsTheLowestFailingRanksErrorAfterAllFinish) {
  RankWorkers workers(3);
  std::atomic<int> done{0};
  const Status s = workers.RunAll([&](int rank) -> Status {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (3 - rank)));
    ++done;
    if (rank == 0) return Status::Ok();
    return InvalidArgument("rank " + std::to_string(rank));
  });
  EXPECT_EQ(done.load(), 3);  // RunAll waited for every rank, the failing ones too
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "rank 1");
  // The workers stay usable after a failed job.
  std::atomic<int> ran{0};
  EXPECT_TRUE(workers.RunAll([&](int) { ++ran; return Status::Ok(); }).ok());
  EXPECT_EQ(ran.load(), 3);
}

}  // namespace
}  // namespace rag
