// What a CUDA backend that is one rank of a tensor-parallel group needs from its peers (issue 8;
// engine/dist/tp_group.h implements it over NCCL and peer memory). The rank's backend holds the
// slices of engine/dist/tp_plan.h; a layer costs two AllReduceAdd (after o and after down) and
// a step one GatherColumns (the vocabulary-split logits). Every rank makes the same calls with
// the same shapes in the same order on its own stream; the calls only enqueue work, and may be
// captured in a CUDA graph (decode steps).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace rag {

class TpCollectives {
 public:
  virtual ~TpCollectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;

  // Makes `buffer` (this rank's device memory, `bytes` long) readable by the peers as the
  // buffer of the same registration index on every rank. Called in the same order on every
  // rank, before the first collective on the buffer.
  virtual Status Register(void* buffer, size_t bytes) = 0;

  // Ends the communicator at once, for a group that has lost a rank: collectives of this rank
  // still waiting for the lost one return (NCCL's abort; a peer-memory barrier traps on its own
  // timeout), and every later call fails. Safe from another thread than the rank's.
  virtual void Abort() = 0;

  // The smallest of the ranks' `value`s (host-side and blocking: setup, on every rank at once;
  // e.g. the KV blocks every rank can hold).
  virtual StatusOr<int64_t> MinOverRanks(int64_t value) = 0;

  // x (count fp32, identical on every rank before and after) += the sum over ranks of each
  // rank's `partial` (a registered buffer; its contents are undefined afterwards). Then
  // `zero_next` (count floats, or null) is zeroed: the other partial buffer, which the peers
  // read in the previous AllReduceAdd, for the next split-K GEMV to accumulate into.
  virtual Status AllReduceAdd(float* partial, float* x, int64_t count, float* zero_next,
                              cudaStream_t stream) = 0;

  // x (count fp32) += the sum over ranks of each rank's bf16 `partial` (prefill-sized sums:
  // half the bytes of AllReduceAdd on the wire; `partial` is undefined afterwards).
  virtual Status AllReduceAddBf16(__nv_bfloat16* partial, float* x, int64_t count, cudaStream_t stream) = 0;

  // out (rows, out_cols) = every rank's `local` (rows, cols; a registered buffer) side by side
  // in rank order, cropped to out_cols columns.
  virtual Status GatherColumns(float* local, float* out, int64_t rows, int64_t cols,
                               int64_t out_cols, cudaStream_t stream) = 0;
};

}  // namespace rag
