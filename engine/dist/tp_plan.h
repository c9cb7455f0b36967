// Tensor parallelism (issue 8): which part of each weight a rank of `world` GPUs holds, as
// Megatron-LM splits a Llama layer so that a layer costs two all-reduces:
//  - column-parallel q|k|v: rank r computes query heads [r * nq / W, (r + 1) * nq / W) and KV
//    heads [r * nkv / W, ...): attention needs no communication (each rank's query heads use
//    only its own KV heads, GQA groups staying whole);
//  - row-parallel o: rank r multiplies its heads' attention output by the matching columns of o;
//    the partial results are summed by an all-reduce;
//  - column-parallel gate and up (rows [r * I / W, ...) of each), row-parallel down (the same
//    columns): SwiGLU is elementwise, so it runs on each rank's slice; one all-reduce after down;
//  - lm_head split over the vocabulary (rows), the logits gathered; embeddings and norms whole.
// Every range is [begin, end) in the unsplit matrix's rows or columns. This file is only the
// plan; engine/dist's backend (to come) reads each rank's slices from the safetensors.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/model_config.h"

namespace rag {

struct TpRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

struct TpSlices {
  int rank = 0, world = 1;
  TpRange q_heads, kv_heads;  // attention heads of this rank
  TpRange q_rows, k_rows, v_rows;  // rows of q_proj, k_proj, v_proj (= o_proj's columns for q)
  TpRange inter;                   // rows of gate_proj and up_proj, columns of down_proj
  TpRange vocab;                   // rows of lm_head (the last rank takes the remainder)
  // Rows of lm_head every rank holds and multiplies: ceil(vocab / world), the last rank's
  // slice padded with zero rows, so the gathered logit slices have one width.
  int64_t lm_rows = 0;
  // Whether the rank's slice is a view of the whole (world 1) or a part of it.
  bool whole() const { return world == 1; }
};

// Ok when the config splits over `world` ranks: query and KV heads and the intermediate size
// divide by it. InvalidArgument naming what does not (e.g. 8 KV heads over 16 ranks).
Status CheckTensorParallel(const ModelConfig& config, int world);

// The slices of `rank` (0 <= rank < world); the config must pass CheckTensorParallel.
TpSlices TensorParallelSlices(const ModelConfig& config, int rank, int world);

// The config a rank's backend runs: the query and KV heads and the intermediate size divided by
// `world`; hidden size, head size, vocabulary (the embedding stays whole) and the rest as is.
ModelConfig RankConfig(const ModelConfig& config, int world);

}  // namespace rag
