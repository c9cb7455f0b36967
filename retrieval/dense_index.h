// The dense half of hybrid retrieval: a sentence embedder and the vector index of a data folder
// (data/vectors.faiss), kept in step with the document store, which stays the source of truth.
//
// Each chunk is embedded as windows of words (retrieval/passage_windows.h), one vector each.
//
// Consistency. The index is saved (atomically) after every change; a crash between a store
// commit and the index save leaves the index behind the store, and Open repairs it: chunks of
// ready documents that the index lacks are embedded and added, and vectors of chunks the store
// no longer has are removed. The embedder's name and dimension are recorded in
// the store's meta; opening with another embedder is FailedPrecondition naming `rag reindex`,
// which rebuilds the index for the new one (Rebuild).
//
// Thread-safety: Search may run from many threads at once, beside AddDocument and
// RemoveChunks, which serialise among themselves (the vector index has its own reader-writer
// lock); rebuilding happens only in Open and Reindex, before the object is shared.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/bert/embedder.h"
#include "retrieval/document_store.h"
#include "retrieval/vector_index.h"

namespace rag {

class DenseIndex {
 public:
  // Opens (or creates) data_dir/vectors.faiss for `embedder` and repairs it against `store`
  // (which must outlive the index). progress(done, total) is called while chunks are embedded.
  static StatusOr<std::unique_ptr<DenseIndex>> Open(
      const std::string& data_dir, std::unique_ptr<Embedder> embedder, DocumentStore* store,
      const std::function<void(int64_t, int64_t)>& progress = {});

  // `rag reindex`: embeds every chunk of the ready documents into a fresh index, whatever
  // embedder made the old one, records the new embedder and replaces vectors.faiss.
  static StatusOr<std::unique_ptr<DenseIndex>> Reindex(
      const std::string& data_dir, std::unique_ptr<Embedder> embedder, DocumentStore* store,
      const std::function<void(int64_t, int64_t)>& progress = {});

  // Embeds and adds the chunks of a document that just became ready (chunks already present
  // are replaced, so a re-ingested document never keeps stale vectors), then saves.
  Status AddDocument(int64_t document_id);
  // Removes the chunks' vectors (absent ids are ignored), then saves.
  Status RemoveChunks(const std::vector<int64_t>& chunk_ids);

  // The k chunks most similar to the query, best first, each scored by its best window
  // (retrieval/passage_windows.h); filter (on chunk ids) as VectorIndex::Search's.
  StatusOr<std::vector<VectorHit>> Search(const std::string& query, int k,
                                          const std::function<bool(int64_t)>& filter = {}) const;

  const Embedder& embedder() const { return *embedder_; }
  int64_t size() const { return index_->size(); }  // vectors: windows, not chunks

 private:
  DenseIndex(std::string path, std::unique_ptr<Embedder> embedder, DocumentStore* store)
      : path_(std::move(path)), embedder_(std::move(embedder)), store_(store) {}
  // Builds a fresh index from the store (not concurrently with Search: it replaces index_).
  Status Rebuild(const std::function<void(int64_t, int64_t)>& progress);
  // Embeds the chunks with these ids in batches and adds them to `index`.
  Status EmbedInto(VectorIndex* index, const std::vector<int64_t>& chunk_ids,
                   const std::function<void(int64_t, int64_t)>& progress);
  std::string MetaValue() const;

  std::string path_;
  std::unique_ptr<Embedder> embedder_;
  DocumentStore* store_;
  std::unique_ptr<VectorIndex> index_;
  std::mutex write_mu_;
};

}  // namespace rag
