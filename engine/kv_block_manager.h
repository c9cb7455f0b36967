// Assigns KV-cache blocks to sequences (the paged KV cache of engine/backend.h). Pure CPU
// bookkeeping: block ids only, no tensors; the backend owns the memory. Not thread-safe: the
// engine's step loop is its only user.
//
// Prefix caching (vLLM's automatic prefix caching): a full block whose keys and values have been
// computed is registered under the hash chain hash(parent block's hash, the block's tokens), so a
// later sequence whose first tokens are the same can take the block instead of recomputing it.
// Blocks are reference counted; a block is shared only while it is full and computed, and no
// sequence ever writes into a block it shares (see MatchPrefix). A released block that holds a
// registered prefix is not wiped: it waits in an LRU list of evictable blocks, and is evicted
// (forgotten, then reused) only when the free list is empty.
//
// Scopes: a sequence matches only prefixes computed by sequences of its own scope (the chain's
// root hash and its first block carry the scope). A cache hit is measurably faster, so shared
// blocks would tell one API key that another recently sent the same prompt; per-key scopes keep
// that from leaking, at the price of not sharing the system prompt's blocks across keys.
//
// Exactness: the hash only finds a candidate. A hit also needs the candidate's tokens to equal
// the sequence's and its parent to be the very block matched one level up (block id and
// generation, which changes whenever a block is reused), so the whole prefix is verified by
// induction and a 64-bit collision costs a miss, never a wrong answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace rag {

class KvBlockManager {
 public:
  KvBlockManager(int num_blocks, int block_size);

  int block_size() const { return block_size_; }
  int num_blocks() const { return num_blocks_; }
  // Blocks a Reserve can take: unused ones, whether wiped or holding an evictable prefix.
  int num_free() const { return static_cast<int>(free_.size() + evictable_.size()); }
  // Of num_free(), the blocks that still hold a registered prefix.
  int num_evictable() const { return static_cast<int>(evictable_.size()); }
  // Blocks findable by MatchPrefix (in use or evictable).
  int num_cached() const { return static_cast<int>(index_.size()); }

  // Blocks needed to hold `tokens` tokens.
  int BlocksFor(int tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  // Extra blocks sequence `seq` needs to hold `tokens` tokens (0 when it already can).
  int Shortfall(int64_t seq, int tokens) const;

  // Grows seq's block table to hold `tokens` tokens. Returns false and changes nothing when
  // there are not enough free blocks. Takes wiped blocks first, then evicts the least recently
  // used evictable ones. A sequence's table never shrinks until Release.
  bool Reserve(int64_t seq, int tokens);

  // Gives seq (which must hold no blocks) the cached blocks of the longest registered prefix of
  // `tokens` (its token ids, tokens.size() >= 1) and returns how many tokens they cover: a
  // multiple of block_size, and always less than tokens.size(). The bound is the last-token
  // rule: the sequence must still compute its last token to get logits, and the block that token
  // lands in is never shared, so a prompt that ends exactly on a block boundary does not match
  // its last block (that block is recomputed rather than copied on write). Every block seq writes
  // into is therefore its own.
  // Only blocks of sequences of the same `scope` match; seq keeps its scope for MarkComputed.
  int MatchPrefix(int64_t seq, const std::vector<int32_t>& tokens, uint64_t scope = 0);

  // Records that the keys and values of seq's first `computed` tokens are in the cache (a
  // forward pass wrote them); `tokens` are seq's token ids, at least `computed` of them. Each
  // full block among them that is not yet registered is registered. When an identical block is
  // already registered (two sequences computed the same prefix at once), seq switches to that
  // one and its own copy is freed, so identical prefixes converge on one chain of blocks.
  void MarkComputed(int64_t seq, const std::vector<int32_t>& tokens, int computed);

  // Drops one reference to each of seq's blocks (no-op for an unknown seq). A block nobody
  // references goes to the evictable list when registered, else to the free list.
  void Release(int64_t seq);

  // Forgets every registered prefix: evictable blocks go to the free list, and blocks in use stay
  // with their sequences but are no longer found by MatchPrefix.
  void ResetPrefixCache();

  // The block table of seq (empty for an unknown seq). Valid until the next call of a non-const
  // method.
  const std::vector<int32_t>& Table(int64_t seq) const;
  // How many sequences hold block `block` (tests and invariant checks).
  int RefCount(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref; }

 private:
  struct Block {
    int ref = 0;                 // sequences whose table holds this block
    uint32_t generation = 0;     // bumped each time the block is handed out wiped
    bool registered = false;     // in index_ under `hash`
    uint64_t hash = 0;
    int32_t parent = -1;         // block before it in the chain it was computed in; -1: first
    uint32_t parent_generation = 0;
    std::vector<int32_t> tokens;  // (block_size) while registered
    uint64_t scope = 0;          // of the sequence that computed it (checked on first blocks)
    std::list<int32_t>::iterator lru;  // in evictable_ while registered and ref == 0
  };
  struct SequenceBlocks {
    std::vector<int32_t> table;
    std::vector<uint64_t> hashes;  // chain hashes of table's first hashes.size() (registered) blocks
    uint64_t scope = 0;            // MatchPrefix's
  };

  int32_t Allocate();
  void Unref(int32_t block);
  void Unregister(int32_t block);
  // Whether registered block `candidate` holds `tokens` right after block `parent` (-1: first,
  // computed in `scope`; later blocks inherit their parent's scope).
  bool Holds(int32_t candidate, int32_t parent, const int32_t* tokens, uint64_t scope) const;

  int num_blocks_;
  int block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;        // a stack of wiped blocks: the most recently freed first
  std::list<int32_t> evictable_;     // unused registered blocks, least recently used first
  std::unordered_map<uint64_t, int32_t> index_;  // chain hash -> registered block
  std::unordered_map<int64_t, SequenceBlocks> sequences_;
};

}  // namespace rag
