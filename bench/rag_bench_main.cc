// `rag-bench`: the `rag bench` command alone, for GPU machines that build the engine without
// the server's packages (-DRAG_BUILD_SERVER=OFF). Same flags and output as `rag bench`.
#include <string>
#include <vector>

#include "engine/cuda/bench_command.h"

int main(int argc, char** argv) {
  return rag::RunBenchCommand(std::vector<std::string>(argv + 1, argv + argc), {});
}
