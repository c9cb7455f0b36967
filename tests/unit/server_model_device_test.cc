// The GPU flags' checks in ModelLoadOptionsFor (server/model_device.h): what `--device`, `--tp`,
// `--kv-cache`, `--gpu-memory`, `--step-tokens`, `--seats` and `--tp-rendezvous` refuse (and `rag
// tp-worker`'s rank) before any model is read, with a message naming the flag. Runs without a GPU:
// "auto" then falls back to the CPU, which has no FP8 KV cache.
#include <gtest/gtest.h>

#include <string>

#include "server/model_device.h"

namespace rag {
namespace {

void ExpectRefused(const std::string& device, const GpuFlags& gpu, const std::string& flag) {
  auto options = ModelLoadOptionsFor(device, CpuBackendOptions{}, gpu);
  ASSERT_FALSE(options.ok()) << "--device " << device << " was accepted";
  EXPECT_EQ(options.status().code(), StatusCode::kInvalidArgument) << options.status().ToString();
  EXPECT_NE(options.status().message().find(flag), std::string::npos) << options.status().ToString();
}

TEST(ModelDeviceTest, BadGpuFlagsAreRefusedByName) {
  GpuFlags kv;
  kv.kv_cache = "int4";
  ExpectRefused("auto", kv, "--kv-cache");
  for (double fraction : {0.0, -0.5, 1.5}) {
    GpuFlags memory;
    memory.memory_fraction = fraction;
    ExpectRefused("auto", memory, "--gpu-memory");
  }
  for (int tokens : {0, 63, 65537}) {
    GpuFlags step;
    step.step_tokens = tokens;
    ExpectRefused("auto", step, "--step-tokens");
  }
  for (int seats : {0, 129}) {
    GpuFlags many;
    many.seats = seats;
    ExpectRefused("auto", many, "--seats");
  }
  GpuFlags crowded;  // more seats than one step feeds: some answers would skip steps
  crowded.step_tokens = 64;
  crowded.seats = 100;
  ExpectRefused("auto", crowded, "--seats");
  GpuFlags tp;
  tp.tp = 9;
  ExpectRefused("auto", tp, "--tp");
  tp.tp = 2;
  ExpectRefused("cpu", tp, "--tp");
  ExpectRefused("gpu", GpuFlags{}, "--device");
}

TEST(ModelDeviceTest, TheRendezvousOfAGroupOfProcessesIsChecked) {
  GpuFlags flags;
  flags.tp = 2;
  for (const char* bad : {"localhost", "localhost:0", "localhost:70000", "host:port"}) {
    flags.tp_rendezvous = bad;
    ExpectRefused("auto", flags, "--tp-rendezvous");
  }
  flags.tp = 1;
  flags.tp_rendezvous = "127.0.0.1:29500";
  ExpectRefused("auto", flags, "--tp-rendezvous needs --tp 2");
}

// `rag tp-worker` refuses a rank outside 1..tp-1 before it reaches for a GPU, and on a machine
// (or build) without one says so instead of waiting for rank 0.
TEST(ModelDeviceTest, ATpWorkerChecksItsRankAndItsGpu) {
  GpuFlags flags;
  flags.tp = 2;
  flags.tp_rendezvous = "127.0.0.1:29500";
  for (int rank : {0, 2, -1}) {
    const Status s = RunTpFollower("unused", flags, rank, -1);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << rank << ": " << s.ToString();
    EXPECT_NE(s.message().find("--rank"), std::string::npos) << s.ToString();
  }
#ifndef RAG_HAVE_CUDA
  const Status no_gpu = RunTpFollower("unused", flags, 1, -1);
  EXPECT_EQ(no_gpu.code(), StatusCode::kUnavailable) << no_gpu.ToString();
#endif
}

TEST(ModelDeviceTest, TheCpuHasNoFp8KvCache) {
  GpuFlags fp8;
  fp8.kv_cache = "fp8";
  ExpectRefused("cpu", fp8, "--kv-cache fp8");
  for (const char* kv : {"auto", "bf16"}) {
    GpuFlags flags;
    flags.kv_cache = kv;
    auto options = ModelLoadOptionsFor("cpu", CpuBackendOptions{}, flags);
    ASSERT_TRUE(options.ok()) << kv << ": " << options.status().ToString();
    EXPECT_FALSE(options->from_dir) << "--device cpu must not pick a GPU backend";
  }
}

}  // namespace
}  // namespace rag
