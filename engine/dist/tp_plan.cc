#include "engine/dist/tp_plan.h"

#include <algorithm>

namespace rag {

Status CheckTensorParallel(const ModelConfig& c, int world) {
  if (world < 1) return InvalidArgument("tensor parallel: world size must be at least 1");
  auto divides = [&](int64_t n, const char* what) -> Status {
    if (n % world != 0) {
      return InvalidArgument("tensor parallel over " + std::to_string(world) + " GPUs: " + what +
                             " (" + std::to_string(n) + ") does not divide by " + std::to_string(world));
    }
    return Status::Ok();
  };
  RAG_RETURN_IF_ERROR(divides(c.num_attention_heads, "the query heads"));
  RAG_RETURN_IF_ERROR(divides(c.num_key_value_heads, "the key/value heads"));
  RAG_RETURN_IF_ERROR(divides(c.intermediate_size, "the intermediate size"));
  if (c.vocab_size < world) return InvalidArgument("tensor parallel: fewer vocabulary rows than GPUs");
  return Status::Ok();
}

TpSlices TensorParallelSlices(const ModelConfig& c, int rank, int world) {
  auto part = [&](int64_t n) { return TpRange{n / world * rank, n / world * (rank + 1)}; };
  TpSlices s;
  s.rank = rank;
  s.world = world;
  s.q_heads = part(c.num_attention_heads);
  s.kv_heads = part(c.num_key_value_heads);
  s.q_rows = {s.q_heads.begin * c.head_dim, s.q_heads.end * c.head_dim};
  s.k_rows = {s.kv_heads.begin * c.head_dim, s.kv_heads.end * c.head_dim};
  s.v_rows = s.k_rows;
  s.inter = part(c.intermediate_size);
  const int64_t per = (c.vocab_size + world - 1) / world;  // the last rank takes what is left
  s.vocab = {std::min(c.vocab_size, per * rank), std::min(c.vocab_size, per * (rank + 1))};
  s.lm_rows = per;
  return s;
}

ModelConfig RankConfig(const ModelConfig& config, int world) {
  ModelConfig c = config;
  c.num_attention_heads /= world;
  c.num_key_value_heads /= world;
  c.intermediate_size /= world;
  return c;
}

}  // namespace rag
