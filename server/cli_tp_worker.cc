// `rag tp-worker --model DIR --tp N --tp-rendezvous HOST:PORT --rank R [--gpu G]`: one GPU of a
// model split over processes; the serving process (rag serve ... --tp N --tp-rendezvous
// HOST:PORT) is rank 0 and sends it every step.
#include <cstdio>

#include "server/cli_commands.h"
#include "server/model_device.h"

namespace rag {

int RunTpWorkerCommand(const TpWorkerFlags& flags) {
  if (flags.gpu.tp_rendezvous.empty()) {
    std::fprintf(stderr, "rag tp-worker: give --tp-rendezvous HOST:PORT (rank 0's) and --tp N\n");
    return 2;
  }
  const Status s = RunTpFollower(flags.model_dir, flags.gpu, flags.rank, flags.device);
  if (!s.ok()) {
    std::fprintf(stderr, "rag tp-worker: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace rag
