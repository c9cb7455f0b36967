#include "retrieval/dense_index.h"

#include <algorithm>
#include <filesystem>

#include "common/logging.h"
#include "retrieval/passage_windows.h"

namespace rag {
namespace {

constexpr const char kMetaKey[] = "embedder";
// How the store's chunks map to vectors (retrieval/passage_windows.h). An index made another
// way (one vector a chunk, before windows) is rebuilt on open: it is derived data.
constexpr const char kLayoutKey[] = "vector_layout";
constexpr const char kLayout[] = "windows:60/30:64";
static_assert(kWindowWords == 60 && kWindowStride == 30 && kWindowSlots == 64,
              "kLayout must name the window parameters: change both together");
constexpr size_t kEmbedBatch = 64;  // chunks embedded (and their text held) at a time
constexpr int64_t kTypicalWindows = 6;  // windows of a 200-word chunk: sizes the index type

// Every vector id a chunk may own (absent ones are ignored by VectorIndex::Remove).
std::vector<int64_t> WindowIdsOf(const std::vector<int64_t>& chunk_ids) {
  std::vector<int64_t> ids;
  ids.reserve(chunk_ids.size() * static_cast<size_t>(kWindowSlots));
  for (int64_t c : chunk_ids) {
    for (int64_t w = 0; w < kWindowSlots; ++w) ids.push_back(WindowVectorId(c, w));
  }
  return ids;
}

}  // namespace

std::string DenseIndex::MetaValue() const {
  return embedder_->name() + ":" + std::to_string(embedder_->dim());
}

Status DenseIndex::EmbedInto(VectorIndex* index, const std::vector<int64_t>& chunk_ids,
                             const std::function<void(int64_t, int64_t)>& progress) {
  const int dim = embedder_->dim();
  for (size_t at = 0; at < chunk_ids.size(); at += kEmbedBatch) {
    const size_t end = std::min(chunk_ids.size(), at + kEmbedBatch);
    std::vector<int64_t> ids(chunk_ids.begin() + static_cast<std::ptrdiff_t>(at),
                             chunk_ids.begin() + static_cast<std::ptrdiff_t>(end));
    RAG_ASSIGN_OR_RETURN(std::vector<ChunkRecord> chunks, store_->GetChunks(ids));
    std::vector<std::string> texts;
    std::vector<int64_t> found, vector_ids;
    for (const ChunkRecord& c : chunks) {
      // The passage text alone: a title repeated on every chunk of a document pulls its
      // chunks together (FAQ dev set: recall@5 0.831 with the title, 0.864 without).
      std::vector<std::string> windows = PassageWindows(c.text);
      if (windows.empty()) windows.push_back(c.text);  // no words: still one vector a chunk
      for (size_t w = 0; w < windows.size(); ++w) {
        texts.push_back(std::move(windows[w]));
        vector_ids.push_back(WindowVectorId(c.id, static_cast<int64_t>(w)));
      }
      found.push_back(c.id);
    }
    RAG_ASSIGN_OR_RETURN(std::vector<std::vector<float>> vectors, embedder_->Embed(texts));
    std::vector<float> flat;
    flat.reserve(vectors.size() * static_cast<size_t>(dim));
    for (const auto& v : vectors) flat.insert(flat.end(), v.begin(), v.end());
    // A retried batch replaces, never duplicates (a re-chunked text may have fewer windows).
    RAG_RETURN_IF_ERROR(index->Remove(WindowIdsOf(found)));
    RAG_RETURN_IF_ERROR(index->Add(vector_ids, flat.data()));
    if (progress) progress(static_cast<int64_t>(end), static_cast<int64_t>(chunk_ids.size()));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Open(
    const std::string& data_dir, std::unique_ptr<Embedder> embedder, DocumentStore* store,
    const std::function<void(int64_t, int64_t)>& progress) {
  std::unique_ptr<DenseIndex> d(new DenseIndex(data_dir + "/vectors.faiss", std::move(embedder), store));
  RAG_ASSIGN_OR_RETURN(std::optional<std::string> recorded, store->GetMeta(kMetaKey));
  if (recorded && *recorded != d->MetaValue()) {
    return FailedPrecondition("the vectors in " + data_dir + " were made by " + *recorded + ", not " +
                              d->MetaValue() + ": run `rag reindex --data " + data_dir +
                              "` to embed the documents again");
  }
  RAG_ASSIGN_OR_RETURN(std::vector<int64_t> ready, store->ReadyChunkIds());
  RAG_ASSIGN_OR_RETURN(std::optional<std::string> layout, store->GetMeta(kLayoutKey));
  std::error_code ec;
  if (recorded && layout != std::optional<std::string>(kLayout)) {
    RAG_LOG(WARN) << "dense index: made with the vector layout " << layout.value_or("one vector a chunk")
                  << ", not " << kLayout << "; rebuilding it";
  } else if (recorded && std::filesystem::exists(d->path_, ec)) {
    StatusOr<std::unique_ptr<VectorIndex>> loaded = VectorIndex::Load(d->path_, d->embedder_->dim());
    if (loaded.ok()) {
      d->index_ = std::move(*loaded);
    } else {
      RAG_LOG(WARN) << "dense index: " << loaded.status().message() << "; rebuilding it";
    }
  }
  if (!d->index_) {
    RAG_RETURN_IF_ERROR(d->Rebuild(progress));
    return d;
  }
  // Repair: add what the store has and the index lacks (every chunk has a window 0), and drop
  // the vectors of chunks the store no longer has (a crash between a deletion's commit and the
  // index save, or a replaced version whose vectors were not removed). Only those: the other
  // vectors are still right, and embedding every chunk again would take hours on big folders.
  std::vector<int64_t> missing;
  for (int64_t id : ready) {
    if (!d->index_->Contains(WindowVectorId(id, 0))) missing.push_back(id);
  }
  std::vector<int64_t> stale;  // ready is ascending (ReadyChunkIds)
  for (int64_t vector_id : d->index_->Ids()) {
    if (!std::binary_search(ready.begin(), ready.end(), ChunkOfVector(vector_id))) {
      stale.push_back(vector_id);
    }
  }
  if (!stale.empty()) {
    RAG_LOG(WARN) << "dense index: removing " << stale.size() << " vectors of deleted chunks";
    RAG_RETURN_IF_ERROR(d->index_->Remove(stale));
  }
  if (!missing.empty()) {
    RAG_LOG(INFO) << "dense index: embedding " << missing.size() << " chunks it lacks";
    RAG_RETURN_IF_ERROR(d->EmbedInto(d->index_.get(), missing, progress));
  }
  if (!stale.empty() || !missing.empty()) RAG_RETURN_IF_ERROR(d->index_->Save(d->path_));
  return d;
}

StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Reindex(
    const std::string& data_dir, std::unique_ptr<Embedder> embedder, DocumentStore* store,
    const std::function<void(int64_t, int64_t)>& progress) {
  std::unique_ptr<DenseIndex> d(new DenseIndex(data_dir + "/vectors.faiss", std::move(embedder), store));
  RAG_RETURN_IF_ERROR(d->Rebuild(progress));
  return d;
}

Status DenseIndex::Rebuild(const std::function<void(int64_t, int64_t)>& progress) {
  std::lock_guard<std::mutex> lock(write_mu_);
  RAG_ASSIGN_OR_RETURN(std::vector<int64_t> ready, store_->ReadyChunkIds());
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> fresh,
                       VectorIndex::Create(embedder_->dim(), VectorIndex::DefaultFactory(
                                                                 static_cast<int64_t>(ready.size()) * kTypicalWindows)));
  RAG_RETURN_IF_ERROR(EmbedInto(fresh.get(), ready, progress));
  RAG_RETURN_IF_ERROR(fresh->Save(path_));
  RAG_RETURN_IF_ERROR(store_->SetMeta(kMetaKey, MetaValue()));
  RAG_RETURN_IF_ERROR(store_->SetMeta(kLayoutKey, kLayout));
  index_ = std::move(fresh);
  RAG_LOG(INFO) << "dense index: " << ready.size() << " chunks embedded as " << index_->size()
                << " windows with " << MetaValue() << " (" << index_->factory() << ")";
  return Status::Ok();
}

Status DenseIndex::AddDocument(int64_t document_id) {
  std::lock_guard<std::mutex> lock(write_mu_);
  RAG_ASSIGN_OR_RETURN(std::vector<ChunkRecord> chunks, store_->GetDocumentChunks(document_id));
  std::vector<int64_t> ids;
  for (const ChunkRecord& c : chunks) ids.push_back(c.id);
  RAG_RETURN_IF_ERROR(EmbedInto(index_.get(), ids, {}));
  return index_->Save(path_);
}

Status DenseIndex::RemoveChunks(const std::vector<int64_t>& chunk_ids) {
  std::lock_guard<std::mutex> lock(write_mu_);
  RAG_RETURN_IF_ERROR(index_->Remove(WindowIdsOf(chunk_ids)));
  return index_->Save(path_);
}

StatusOr<std::vector<VectorHit>> DenseIndex::Search(const std::string& query, int k,
                                                    const std::function<bool(int64_t)>& filter) const {
  RAG_ASSIGN_OR_RETURN(std::vector<std::vector<float>> q, embedder_->Embed({query}));
  if (q.size() != 1 || static_cast<int>(q[0].size()) != embedder_->dim()) {
    return Internal("dense index: the embedder returned no vector for the query");
  }
  // The best window of each chunk is the chunk's score: fetch windows until k chunks are seen
  // (or the index is exhausted), 4k windows first (chunks of ~6 windows rarely fill 4k slots).
  std::function<bool(int64_t)> window_filter;
  if (filter) window_filter = [&filter](int64_t vector_id) { return filter(ChunkOfVector(vector_id)); };
  const int64_t total = index_->size();
  for (int64_t want = 4 * static_cast<int64_t>(k);; want *= 4) {
    const int fetch = static_cast<int>(std::min<int64_t>(want, std::max<int64_t>(total, 1)));
    RAG_ASSIGN_OR_RETURN(std::vector<VectorHit> windows, index_->Search(q[0].data(), fetch, window_filter));
    std::vector<VectorHit> chunks;
    for (const VectorHit& w : windows) {  // best first: a chunk's first window is its best
      const int64_t chunk = ChunkOfVector(w.id);
      const bool seen = std::any_of(chunks.begin(), chunks.end(),
                                    [chunk](const VectorHit& h) { return h.id == chunk; });
      if (!seen) chunks.push_back({chunk, w.score});
      if (static_cast<int>(chunks.size()) == k) break;
    }
    if (static_cast<int>(chunks.size()) == k || fetch >= total) return chunks;
  }
}

}  // namespace rag
