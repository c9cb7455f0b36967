// Assigns KV-cache blocks to sequences (the paged KV cache of engine/backend.h). Pure CPU
// bookkeeping: block ids only, no tensors; the backend owns the memory. Not thread-safe: the
// engine's step loop is its only user.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace rag {

class KvBlockManager {
 public:
  KvBlockManager(int num_blocks, int block_size);

  int block_size() const { return block_size_; }
  int num_blocks() const { return num_blocks_; }
  int num_free() const { return static_cast<int>(free_.size()); }

  // Blocks needed to hold `tokens` tokens.
  int BlocksFor(int tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  // Extra blocks sequence `seq` needs to hold `tokens` tokens (0 when it already can).
  int Shortfall(int64_t seq, int tokens) const;

  // Grows seq's block table to hold `tokens` tokens. Returns false and changes nothing when
  // there are not enough free blocks. A sequence's table never shrinks until Release.
  bool Reserve(int64_t seq, int tokens);

  // Returns all of seq's blocks to the free list (no-op for an unknown seq).
  void Release(int64_t seq);

  // The block table of seq (empty for an unknown seq). Valid until the next Reserve/Release.
  const std::vector<int32_t>& Table(int64_t seq) const;

 private:
  int num_blocks_;
  int block_size_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
  std::unordered_map<int64_t, std::vector<int32_t>> tables_;
};

}  // namespace rag
