// Byte-level BPE by merge rank (the "model" part of a Hugging Face tokenizer.json of type BPE).
// Works on raw bytes: the byte-level alphabet of the file is undone when the model is built, so
// encoding never maps text through it.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace rag {

class BpeModel {
 public:
  // `token_bytes[id]` is the byte string of vocabulary token id ("" where the id is unused).
  // `merges` are (left id, right id) in rank order; the merged token must be in the vocabulary.
  // `ignore_merges`: a piece that is itself a vocabulary token is emitted whole (Llama 3 sets it).
  // Every single byte must be a token (byte-level BPE) unless `allow_missing_bytes`: then bytes
  // without a token are dropped from the input, as Hugging Face does without an unk_token
  // (SmolLM2's vocabulary lacks 21 bytes, most of which never occur in UTF-8). `what` names the
  // source in errors.
  static StatusOr<BpeModel> Create(std::vector<std::string> token_bytes,
                                   const std::vector<std::pair<int32_t, int32_t>>& merges,
                                   bool ignore_merges, const std::string& what,
                                   bool allow_missing_bytes = false);

  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&&) = delete;
  BpeModel(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized piece (any bytes). Thread-safe: the word cache is
  // guarded by a mutex.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const;

  // Vocabulary id of a byte string, or -1.
  int32_t TokenId(std::string_view bytes) const;
  const std::string& TokenBytes(int32_t id) const { return token_bytes_[id]; }
  int32_t size() const { return static_cast<int32_t>(token_bytes_.size()); }

 private:
  BpeModel() = default;
  struct MergeEntry {
    uint64_t key;     // (left << 32) | right; kEmptyKey marks a free slot
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  const MergeEntry* FindMerge(int32_t left, int32_t right) const;
  void MergeSymbols(std::string_view piece, std::vector<int32_t>* ids) const;

  std::vector<std::string> token_bytes_;
  std::unordered_map<std::string_view, int32_t> bytes_to_id_;  // views into token_bytes_
  int32_t byte_ids_[256] = {};
  std::vector<MergeEntry> merge_table_;  // open addressing, power-of-two size, linear probing
  uint64_t merge_mask_ = 0;
  bool ignore_merges_ = false;

  // Pieces seen before (words repeat a lot in text). Bounded: no insertions once full, as HF.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kCacheMaxPieceBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace rag
