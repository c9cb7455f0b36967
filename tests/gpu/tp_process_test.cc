// A tensor-parallel group of two processes (issue 8: several processes form one group): this
// test is rank 0 and starts rank 1 as a second copy of the test binary (the disabled test below,
// run on its own), which meet through the TCP rendezvous, join one NCCL group and, on one
// host with NVLink, map each other's buffers through CUDA IPC handles. The group's logits must
// equal those of the same split in one process (same kernels, same partial sums), and its
// greedy decoding (the decode graphs with the IPC-mapped all-reduces) transformers' tokens; the
// Engine over it too. A follower that names another host stands for a rank on another node.
// Skipped with fewer than 2 GPUs.
#include <gtest/gtest.h>

#ifdef RAG_HAVE_NCCL

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/dist/child_processes.h"
#include "engine/dist/tp_process.h"
#include "tests/gpu/golden_gpu.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/testing/golden_json.h"

namespace rag {
namespace {

using testing::JsonInts;

constexpr const char* kModel = "tp8_gqa_hd64_bf16";
constexpr const char* kAddressVariable = "RAG_TP_TEST_RENDEZVOUS";

TpBackendFactory Factory() {
  return [](const TensorParallelOptions& tp) {
    return TensorParallelBackend::Create(GoldenDir(kModel), GoldenTpOptions(), tp);
  };
}

// A rank whose model directory is gone: it fails its load after the rendezvous.
TpBackendFactory MissingModel() {
  return [](const TensorParallelOptions& tp) {
    return TensorParallelBackend::Create(GoldenDir("no-such-model"), GoldenTpOptions(), tp);
  };
}

TpProcessOptions Process(const std::string& address, int rank) {
  TpProcessOptions p;
  p.rendezvous = *ParseTpAddress(address);
  p.rank = rank;
  p.world = 2;
  p.timeout = std::chrono::seconds(60);
  return p;
}

std::string Settings() {
  TensorParallelOptions tp;
  tp.world = 2;
  return TpSettings(*LoadModelConfig(GoldenDir(kModel)), GoldenTpOptions(), tp, "");
}

class TpProcessTest : public testing_gpu::GpuTest {
 protected:
  void SetUp() override {
    testing_gpu::GpuTest::SetUp();
    if (IsSkipped()) return;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2)
      GTEST_SKIP() << "a group of processes needs 2 GPUs";
  }

  // Starts the other rank: this binary running the disabled test `test` alone, given the
  // rendezvous address it returns (empty if no port was free or the start failed).
  std::string StartOtherRank(const std::string& test) {
    const StatusOr<int> port = FreeLoopbackPort();
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    if (!port.ok()) return "";
    const std::string address = "127.0.0.1:" + std::to_string(*port);
    setenv(kAddressVariable, address.c_str(), 1);
    const Status spawned = other_rank_.Spawn({"/proc/self/exe", "--gtest_also_run_disabled_tests",
                                              "--gtest_filter=TpProcessTest." + test});
    EXPECT_TRUE(spawned.ok()) << spawned.ToString();
    return spawned.ok() ? address : "";
  }

  // Starts rank 1 (the follower test) and hosts the group as rank 0.
  std::unique_ptr<TensorParallelBackend> HostGroup() {
    return HostGroupAt(StartOtherRank("DISABLED_FollowerRank"));
  }
  std::unique_ptr<TensorParallelBackend> HostGroupAt(const std::string& address) {
    if (address.empty()) return nullptr;
    TensorParallelOptions tp;
    auto b = HostTpProcessGroup(Process(address, 0), Settings(), tp, Factory());
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  // Waits for the other rank, which must end (status 1) within 10 s.
  void ExpectOtherRankEnds() {
    const auto start = std::chrono::steady_clock::now();
    const Status exit = other_rank_.WaitAll();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    EXPECT_NE(exit.message().find("exited with status 1"), std::string::npos) << exit.ToString();
  }

  // Closes the group (the follower sees rank 0 go and exits) and checks the follower's exit.
  void CloseGroup(std::unique_ptr<TensorParallelBackend> group) {
    group.reset();
    const Status s = other_rank_.WaitAll();
    EXPECT_TRUE(s.ok()) << "the follower rank: " << s.ToString();
  }

  // What PrefillGoldenPrompts leaves for the decode steps.
  struct GoldenPrefills {
    ForwardBatch decode;                     // each prompt's first greedy token, one batch
    std::vector<std::vector<int32_t>> want;  // transformers' greedy tokens of each prompt
    int next_block = 0;                      // the first KV block no prompt holds
  };

  // Prefills every golden prompt on `group` and on `local` (the same split in one process): their
  // logits within 1e-5 (every row where the prompt asks for all), the last row's argmax
  // transformers' first greedy token.
  GoldenPrefills PrefillGoldenPrompts(TensorParallelBackend& group, TensorParallelBackend& local) {
    GoldenPrefills g;
    const int64_t vocab = group.config().vocab_size;
    const JsonValue golden = testing::LoadJsonFile(GoldenDir(kModel) + "/golden.json");
    for (const JsonValue& p : golden.Find("prompts")->items()) {
      const std::vector<int32_t> ids = JsonInts(*p.Find("ids"));
      g.want.push_back(JsonInts(*p.Find("greedy")));
      const std::vector<int32_t> table =
          ConsecutiveBlocks(g.next_block, static_cast<int>(ids.size()) + 40);
      g.next_block += static_cast<int>(table.size());
      const bool all = p.Find("all_logits") != nullptr;
      const ForwardBatch prefill{{{ids, 0, table, all}}};
      auto a = group.Forward(prefill);
      auto b = local.Forward(prefill);
      EXPECT_TRUE(a.ok()) << a.status().ToString();
      EXPECT_TRUE(b.ok()) << b.status().ToString();
      if (!a.ok() || !b.ok() || a->size() != b->size()) {
        ADD_FAILURE() << "prefill of the " << ids.size() << "-token prompt";
        return g;
      }
      const size_t rows = all ? ids.size() : 1;
      for (size_t r = 0; r < rows; ++r) {
        EXPECT_LE(RelError(a->data() + r * vocab, b->data() + r * vocab, vocab), 1e-5)
            << "row " << r;
      }
      const float* last = a->data() + (rows - 1) * vocab;
      EXPECT_EQ(static_cast<int32_t>(std::max_element(last, last + vocab) - last),
                g.want.back()[0]);
      g.decode.sequences.push_back(
          {{g.want.back()[0]}, static_cast<int32_t>(ids.size()), table, false});
    }
    return g;
  }

  ChildProcesses other_rank_;  // the process of the other rank (this binary, a disabled test)
};

// Rank 1, run only by the tests above as a process of its own.
TEST_F(TpProcessTest, DISABLED_FollowerRank) {
  const char* address = std::getenv(kAddressVariable);
  ASSERT_NE(address, nullptr) << "started by TpProcessTest's rank 0 only";
  TensorParallelOptions tp;
  const Status s = FollowTpProcessGroup(Process(address, 1), Settings(), tp, Factory());
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(TpProcessTest, TwoProcessesComputeWhatOneProcessDoes) {
  auto group = HostGroup();
  ASSERT_NE(group, nullptr);
  TensorParallelOptions one_process;
  one_process.world = 2;
  auto local = TensorParallelBackend::Create(GoldenDir(kModel), GoldenTpOptions(), one_process);
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_EQ(group->gpus(), 2);
  EXPECT_EQ(group->peer_access(), (*local)->peer_access())
      << "CUDA IPC should give what peer access gives";
  EXPECT_EQ(group->info().num_blocks, (*local)->info().num_blocks);

  GoldenPrefills g = PrefillGoldenPrompts(*group, **local);
  ASSERT_FALSE(HasFailure());
  // A batch every rank refuses alike (more logit rows than a step returns): the group goes on.
  const std::vector<int32_t> long_prompt(300, 1);
  auto refused = group->Forward({{{long_prompt, 0, ConsecutiveBlocks(g.next_block, 300), true}}});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status().ToString();
  // Decode steps through the graphs (their all-reduces on the IPC-mapped buffers), one call
  // (single steps as the Engine makes them: TheEngineGeneratesTransformersTokensOverTwoProcesses).
  ExpectGreedyContinuations(*group, g.decode, g.want);
  CloseGroup(std::move(group));
}

// Rank 1 as on another node: RAG_TP_HOST and NCCL_HOSTID give its process another host name,
// so the ranks map no memory of each other (no CUDA IPC, no peer all-reduce) and NCCL carries
// every collective (prefill and decode all-reduces, the logits' all-gather) over its network
// transport: sockets on loopback, InfiniBand left out, as between two machines on Ethernet.
// Same prefill logits as the split in one process, transformers' greedy tokens after them.
TEST_F(TpProcessTest, RanksOnTwoHostsTakeNcclForEveryCollective) {
  setenv("NCCL_SOCKET_IFNAME", "lo", 1);
  setenv("NCCL_IB_DISABLE", "1", 1);
  setenv("RAG_TP_HOST", "rag-test-node-b", 1);
  setenv("NCCL_HOSTID", "rag-test-node-b", 1);
  const std::string address = StartOtherRank("DISABLED_FollowerRank");
  unsetenv("RAG_TP_HOST");  // this process stays on its own host
  unsetenv("NCCL_HOSTID");
  auto group = HostGroupAt(address);
  ASSERT_NE(group, nullptr);
  EXPECT_FALSE(group->peer_access()) << "ranks of two hosts must not map each other's memory";
  TensorParallelOptions one_process;
  one_process.world = 2;
  auto local = TensorParallelBackend::Create(GoldenDir(kModel), GoldenTpOptions(), one_process);
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  GoldenPrefills g = PrefillGoldenPrompts(*group, **local);
  ASSERT_FALSE(HasFailure());
  ExpectGreedyContinuations(*group, g.decode, g.want);  // decode graphs with NCCL all-reduces
  CloseGroup(std::move(group));
  unsetenv("NCCL_SOCKET_IFNAME");
  unsetenv("NCCL_IB_DISABLE");
}

TEST_F(TpProcessTest, TheEngineGeneratesTransformersTokensOverTwoProcesses) {
  auto group = HostGroup();
  ASSERT_NE(group, nullptr);
  // The Engine owns the backend; its end closes the group.
  const EngineRun run =
      RunEngine(std::move(group), testing::LoadJsonFile(GoldenDir(kModel) + "/golden.json"), {});
  ASSERT_EQ(run.got.size(), run.greedy.size());
  for (size_t i = 0; i < run.got.size(); ++i)
    EXPECT_EQ(run.got[i], run.greedy[i]) << "prompt " << i;
  const Status s = other_rank_.WaitAll();
  EXPECT_TRUE(s.ok()) << "the follower rank: " << s.ToString();
}

// A follower killed while the group serves: rank 0 sees it go, its next call fails naming rank 1
// instead of waiting in a collective for ever, and closing the group does not wait for it.
TEST_F(TpProcessTest, AKilledFollowerFailsTheGroupInsteadOfHangingIt) {
  auto group = HostGroup();
  ASSERT_NE(group, nullptr);
  const JsonValue golden = testing::LoadJsonFile(GoldenDir(kModel) + "/golden.json");
  const std::vector<int32_t> ids = JsonInts(*golden.Find("prompts")->items().front().Find("ids"));
  const ForwardBatch prefill{{{ids, 0, ConsecutiveBlocks(0, static_cast<int>(ids.size())), false}}};
  ASSERT_TRUE(group->ForwardArgmax(prefill).ok());
  other_rank_.SignalAll(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the watchdog looks every 200 ms
  const auto start = std::chrono::steady_clock::now();
  auto after = group->ForwardArgmax(prefill);
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().ToString();
  EXPECT_NE(after.status().message().find("rank 1"), std::string::npos)
      << after.status().ToString();
  group.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  const Status exit = other_rank_.WaitAll();
  EXPECT_NE(exit.message().find("killed by signal 9"), std::string::npos) << exit.ToString();
}

// Rank 0 failing its own load (here: its model directory is gone) after the rendezvous: its
// error comes back, and the follower, which would wait for it in NCCL's join for ever, ends.
TEST_F(TpProcessTest, ARank0ThatFailsToLoadEndsItsFollowers) {
  const std::string address = StartOtherRank("DISABLED_FollowerRank");
  ASSERT_FALSE(address.empty());
  TensorParallelOptions tp;
  auto host = HostTpProcessGroup(Process(address, 0), Settings(), tp, MissingModel());
  ASSERT_FALSE(host.ok());
  ExpectOtherRankEnds();
}

// Rank 0, run only by AFollowerThatFailsToLoadEndsRank0 as a process of its own: it never gets
// a follower that loads, so it must end (status 1) instead of returning.
TEST_F(TpProcessTest, DISABLED_HostRank) {
  const char* address = std::getenv(kAddressVariable);
  ASSERT_NE(address, nullptr) << "started by TpProcessTest only";
  TensorParallelOptions tp;
  auto host = HostTpProcessGroup(Process(address, 0), Settings(), tp, Factory());
  ADD_FAILURE() << "rank 0 returned: "
                << (host.ok() ? std::string("a group") : host.status().ToString());
}

// The other way round: this process is rank 1 and fails its load (its model directory is gone);
// rank 0, waiting for it in NCCL's join, ends instead of waiting for ever.
TEST_F(TpProcessTest, AFollowerThatFailsToLoadEndsRank0) {
  const std::string address = StartOtherRank("DISABLED_HostRank");
  ASSERT_FALSE(address.empty());
  TensorParallelOptions tp;
  EXPECT_FALSE(FollowTpProcessGroup(Process(address, 1), Settings(), tp, MissingModel()).ok());
  ExpectOtherRankEnds();
}

// A follower whose settings differ (here its KV block count) is refused by rank 0, and both
// say which line differs.
TEST_F(TpProcessTest, AFollowerWithOtherSettingsIsRefused) {
  const StatusOr<int> port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string address = "127.0.0.1:" + std::to_string(*port);
  TensorParallelOptions tp;
  tp.world = 2;
  CudaBackendOptions other = GoldenTpOptions();
  other.num_blocks = 128;
  const std::string theirs = TpSettings(*LoadModelConfig(GoldenDir(kModel)), other, tp, "");
  Status follower;
  std::thread rank1(
      [&] { follower = FollowTpProcessGroup(Process(address, 1), theirs, tp, Factory()); });
  auto host = HostTpProcessGroup(Process(address, 0), Settings(), tp, Factory());
  rank1.join();
  ASSERT_FALSE(host.ok());
  ASSERT_FALSE(follower.ok());
  EXPECT_NE(host.status().message().find("num_blocks"), std::string::npos)
      << host.status().ToString();
  EXPECT_NE(follower.message().find("num_blocks"), std::string::npos) << follower.ToString();
}

}  // namespace
}  // namespace rag

#endif  // RAG_HAVE_NCCL
