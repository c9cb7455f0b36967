// The dense vector index: FAISS over L2-normalised vectors with the inner-product metric, so a
// score is the cosine similarity (in [-1, 1], higher is better). Vector ids are our chunk ids.
// The index is derived data (DESIGN.md section 4): SQLite is the source of truth and
// `rag reindex` rebuilds vectors.faiss from it.
//
// Index types. Any FAISS factory string that needs no training is accepted ("Flat", "HNSW32",
// "HNSW32_SQ8", ...); IVF and PQ factories need training on a sample before the first add,
// which does not fit incremental ingestion, and are refused. DefaultFactory picks Flat (exact)
// for small corpora and HNSW (approximate, ~log n per query, incremental adds) for large ones.
//
// Removal. Flat-code indexes (Flat, SQ, ...) remove vectors in place (O(n) per Remove call).
// HNSW cannot delete graph nodes, so a removed vector stays in the graph as a tombstone: its id
// is relabelled to a negative value, every search skips it, a re-added id gets a fresh node, and
// tombstones are saved with the index. Compact() rebuilds the index from the live vectors; Remove
// compacts by itself once there are at least 1024 tombstones and they outnumber the live vectors
// (so the rebuild cost is amortised over as many removals as vectors it re-inserts).
//
// Thread-safety: a writer-preferring reader-writer lock. Search, Save and the accessors may run
// concurrently from any number of threads; Add, Remove and Compact take the index exclusively:
// a writer waits for the running searches, and searches that arrive meanwhile wait for it (so a
// steady query load cannot starve ingestion). A search never sees a half-applied batch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace rag {

struct VectorHit {
  int64_t id = 0;     // the chunk id given to Add
  float score = 0;    // cosine similarity of the normalised query and vector
};

class VectorIndex {
 public:
  // Up to this many expected vectors an exact Flat index (a query scans all vectors: ~10 ms
  // at 100k x 384 on one core) is fast enough and has perfect recall; above it, HNSW.
  static constexpr int64_t kFlatLimit = 100000;
  // HNSW beam width at search time (raised to k when k is larger): recall@10 ~0.99 on
  // clustered 384-dim data at ~1 ms a query. Used for every HNSW index, loaded ones included.
  static constexpr int kHnswEfSearch = 128;
  // HNSW beam width while inserting (FAISS's default 40 gives a noticeably weaker graph).
  static constexpr int kHnswEfConstruction = 80;

  // "Flat" below kFlatLimit expected vectors, "HNSW32" (32 links per node) from there on.
  static std::string DefaultFactory(int64_t expected_vectors);

  // An empty index of `dim`-dimensional vectors. InvalidArgument for dim < 1, an unknown
  // factory string, one that already names an id map (IDMap) or one that needs training.
  static StatusOr<std::unique_ptr<VectorIndex>> Create(int dim, const std::string& factory);

  // Reads an index written by Save. NotFound when the file does not exist; DataLoss when it is
  // truncated, corrupt or not an index file; FailedPrecondition when its dimension is not
  // expected_dim (the embedder changed). The last two name `rag reindex` in the message.
  static StatusOr<std::unique_ptr<VectorIndex>> Load(const std::string& path, int expected_dim);

  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // vectors: (ids.size(), dim()) row-major; each row is L2-normalised before it is stored.
  // All or nothing: InvalidArgument for a negative id, an id twice in the batch, or a zero or
  // non-finite row; AlreadyExists when an id is already in the index (Remove it first: an
  // update is remove + add, so that a retried batch never stores two vectors for one chunk).
  Status Add(const std::vector<int64_t>& ids, const float* vectors);

  // Removes the ids that are present; absent ids are ignored (removal is idempotent, so a
  // document delete can be retried). Never returns a removed id from Search again.
  Status Remove(const std::vector<int64_t>& ids);

  // The at most k live vectors most similar to query (dim() floats, normalised here), best
  // first. filter, when set, keeps only ids for which it returns true (collection or document
  // filters); it must be thread-safe and cheap (it may run once per visited vector, from
  // FAISS's worker threads). With a filter, HNSW searches the graph for matching vectors and,
  // when that finds fewer than k, falls back to an exact scan, so selective filters never come
  // back short. InvalidArgument for k < 1 or a zero or non-finite query.
  StatusOr<std::vector<VectorHit>> Search(const float* query, int k,
                                          const std::function<bool(int64_t)>& filter = {}) const;

  // Rebuilds the index from its live vectors, dropping tombstones (a no-op without any).
  // O(n log n) for HNSW; needs memory for a second copy of the index while it runs.
  Status Compact();

  // Writes the index crash-safely: a temporary file in the same directory, fsync, rename over
  // path, fsync of the directory. A failed save leaves the previous file untouched. Holds the
  // whole serialised index in memory while writing (dim * 4 bytes per vector for Flat/HNSW).
  Status Save(const std::string& path) const;

  bool Contains(int64_t id) const;
  std::vector<int64_t> Ids() const;  // the live ids, ascending
  int64_t size() const;        // live vectors (tombstones not counted)
  int64_t tombstones() const;  // removed vectors still held by a non-removable index
  int dim() const { return dim_; }
  const std::string& factory() const { return factory_; }

 private:
  struct Impl;
  VectorIndex(int dim, std::string factory, std::unique_ptr<Impl> impl);

  const int dim_;
  const std::string factory_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rag
