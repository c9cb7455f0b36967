#include "engine/backend.h"

#include <string>

namespace rag {

Status ValidateForwardBatch(const ForwardBatch& batch, const ModelConfig& config, int64_t block_size,
                            int64_t num_blocks) {
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceInput& seq = batch.sequences[s];
    const std::string where = "sequence " + std::to_string(s) + ": ";
    if (seq.tokens.empty()) return InvalidArgument(where + "no tokens");
    if (seq.start_pos < 0) return InvalidArgument(where + "negative start_pos");
    const int64_t end = static_cast<int64_t>(seq.start_pos) + static_cast<int64_t>(seq.tokens.size());
    if (end > config.max_position_embeddings) {
      return InvalidArgument(where + "position " + std::to_string(end - 1) +
                             " is past max_position_embeddings (" +
                             std::to_string(config.max_position_embeddings) + ")");
    }
    const int64_t blocks_needed = (end + block_size - 1) / block_size;
    if (static_cast<int64_t>(seq.block_table.size()) < blocks_needed) {
      return InvalidArgument(where + "block table has " + std::to_string(seq.block_table.size()) +
                             " blocks, positions up to " + std::to_string(end - 1) + " need " +
                             std::to_string(blocks_needed));
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      int32_t id = seq.block_table[static_cast<size_t>(b)];
      if (id < 0 || id >= num_blocks) {
        return InvalidArgument(where + "block id " + std::to_string(id) + " outside [0, " +
                               std::to_string(num_blocks) + ")");
      }
    }
    for (int32_t t : seq.tokens) {
      if (t < 0 || t >= config.vocab_size) {
        return InvalidArgument(where + "token id " + std::to_string(t) + " outside the vocabulary (" +
                               std::to_string(config.vocab_size) + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace rag
