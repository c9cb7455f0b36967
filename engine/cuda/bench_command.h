// `rag bench` (and the engine-only `rag-bench` binary of GPU machines without the server
// packages): time to first token and decode speed of the CUDA backend at several batch sizes,
// on a model directory or on dummy weights of a real shape, with the achieved bandwidth next to
// the card's measured copy bandwidth. Prints a table, then one JSON line.
#pragma once

#include <string>
#include <vector>

namespace rag {

// args: the flags after `bench` (see the usage text: `rag bench --help`); self_words: what
// follows the binary's path to run this command again (`rag`: "bench"; `rag-bench`: nothing),
// for --tp-processes' followers. Returns the exit code.
int RunBenchCommand(const std::vector<std::string>& args,
                    const std::vector<std::string>& self_words);

}  // namespace rag
