// The calls rank 0 of a tensor-parallel group spread over processes sends to its followers
// (engine/dist/tp_process.h): each Backend call of TensorParallelBackend, with everything the
// follower's rank needs to launch the same kernels and collectives (the batch, the sampling
// rows, the decode steps). Binary, little-endian, versioned by the rendezvous' hello; CUDA-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"

namespace rag {

enum class TpCall : uint8_t {
  kForward = 1,        // Forward(batch)
  kForwardArgmax = 2,  // ForwardArgmax(batch)
  kForwardSample = 3,  // ForwardSample(batch, sampling)
  kGreedyDecode = 4,   // GreedyDecode(batch, steps)
  kClose = 5,          // rank 0 ends the group: destroy the communicators with it (no batch)
};

struct TpStep {
  TpCall call = TpCall::kForward;
  ForwardBatch batch;
  std::vector<DeviceSampling> sampling;  // kForwardSample
  int32_t steps = 0;                     // kGreedyDecode
};

std::string EncodeTpStep(const TpStep& step);
// InvalidArgument for a message that is truncated, has bytes left over, an unknown call or a
// negative count.
StatusOr<TpStep> DecodeTpStep(const std::string& message);

}  // namespace rag
