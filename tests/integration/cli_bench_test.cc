// `rag bench` and `--device` from the command line: the bench's own flag parser gets every
// argument after `bench` (help, bad flags, missing model), and a machine without a GPU gets a
// clear error instead of a crash. The timings themselves run on a GPU machine
// (bench/gpu_bench.sh), not here.
#include <gtest/gtest.h>

#include "tests/testing/subprocess.h"

namespace rag {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

std::string Rag(const std::string& args) { return ShellQuote(RAG_BINARY) + " " + args + " 2>&1"; }

TEST(CliBenchTest, HelpAndBadFlagsReachTheBenchParser) {
  auto help = RunCommand(Rag("bench --help"));
  if (help.out.find("this build has no CUDA backend") != std::string::npos) {
    // A -DRAG_CUDA=OFF build (the sanitizer build of `make test-sanitize`) has no bench parser.
    EXPECT_EQ(help.exit_code, 1);
    GTEST_SKIP() << "built without the CUDA backend";
  }
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--load-format dummy --shape 8b|70b|405b"), std::string::npos) << help.out;

  auto bad = RunCommand(Rag("bench --load-format dummy --shape 8b --batch 0"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("--batch: each size in 1..64"), std::string::npos) << bad.out;

  auto unknown = RunCommand(Rag("bench --frobnicate"));
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.out.find("unknown argument '--frobnicate'"), std::string::npos) << unknown.out;

  auto no_model = RunCommand(Rag("bench --prompt 10"));
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_NE(no_model.out.find("give --model DIR"), std::string::npos) << no_model.out;
}

// Without a GPU (CI) `rag bench` and `--device cuda` say so and fail cleanly; with one, the
// bench of a tiny golden model runs and prints its JSON line.
TEST(CliBenchTest, RunsOrSaysThereIsNoGpu) {
  const std::string model = std::string(RAG_TEST_DATA_DIR) + "/golden-gpu/gqa_hd64_bf16";
  auto r = RunCommand(Rag("bench --model " + ShellQuote(model) + " --prompt 40 --new 4 --batch 1,2 --runs 1"));
  if (r.out.find("no CUDA device") != std::string::npos ||
      r.out.find("no CUDA backend") != std::string::npos) {
    EXPECT_EQ(r.exit_code, 1) << r.out;
    auto gen = RunCommand("echo hi | " + Rag("generate --raw --max-tokens 2 --device cuda --model " + ShellQuote(model)));
    EXPECT_EQ(gen.exit_code, 1) << gen.out;
    EXPECT_NE(gen.out.find("--device cuda"), std::string::npos) << gen.out;
    return;
  }
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"bench\":\"rag\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"batch\":2"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace rag
