#include "retrieval/dense_index.h"

#include <algorithm>
#include <filesystem>

#include "common/logging.h"

namespace rag {
namespace {

constexpr const char kMetaKey[] = "embedder";
constexpr size_t kEmbedBatch = 64;  // chunks embedded (and their text held) at a time

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
    std::vector<int64_t> found;
    for (const ChunkRecord& c : chunks) {
      // The passage text alone: a title repeated on every chunk of a document pulls its
      // chunks together (FAQ dev set: recall@5 0.831 with the title, 0.864 without).
      texts.push_back(c.text);
      found.push_back(c.id);
    }
    RAG_ASSIGN_OR_RETURN(std::vector<std::vector<float>> vectors, embedder_->Embed(texts));
    std::vector<float> flat;
    flat.reserve(vectors.size() * static_cast<size_t>(dim));
    for (const auto& v : vectors) flat.insert(flat.end(), v.begin(), v.end());
    RAG_RETURN_IF_ERROR(index->Remove(found));  // a retried batch replaces, never duplicates
    RAG_RETURN_IF_ERROR(index->Add(found, flat.data()));
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
  std::error_code ec;
  if (recorded && std::filesystem::exists(d->path_, ec)) {
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
  // Repair: add what the store has and the index lacks; rebuild when the index holds more.
  std::vector<int64_t> missing;
  for (int64_t id : ready) {
    if (!d->index_->Contains(id)) missing.push_back(id);
  }
  const int64_t present = static_cast<int64_t>(ready.size() - missing.size());
  if (d->index_->size() > present) {
    RAG_LOG(WARN) << "dense index: " << d->index_->size() - present
                  << " vectors of deleted chunks; rebuilding it";
    RAG_RETURN_IF_ERROR(d->Rebuild(progress));
    return d;
  }
  if (!missing.empty()) {
    RAG_LOG(INFO) << "dense index: embedding " << missing.size() << " chunks it lacks";
    RAG_RETURN_IF_ERROR(d->EmbedInto(d->index_.get(), missing, progress));
    RAG_RETURN_IF_ERROR(d->index_->Save(d->path_));
  }
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
                       VectorIndex::Create(embedder_->dim(),
                                           VectorIndex::DefaultFactory(static_cast<int64_t>(ready.size()))));
  RAG_RETURN_IF_ERROR(EmbedInto(fresh.get(), ready, progress));
  RAG_RETURN_IF_ERROR(fresh->Save(path_));
  RAG_RETURN_IF_ERROR(store_->SetMeta(kMetaKey, MetaValue()));
  index_ = std::move(fresh);
  RAG_LOG(INFO) << "dense index: " << index_->size() << " chunks embedded with " << MetaValue()
                << " (" << index_->factory() << ")";
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
  RAG_RETURN_IF_ERROR(index_->Remove(chunk_ids));
  return index_->Save(path_);
}

StatusOr<std::vector<VectorHit>> DenseIndex::Search(const std::string& query, int k,
                                                    const std::function<bool(int64_t)>& filter) const {
  RAG_ASSIGN_OR_RETURN(std::vector<std::vector<float>> q, embedder_->Embed({query}));
  if (q.size() != 1 || static_cast<int>(q[0].size()) != embedder_->dim()) {
    return Internal("dense index: the embedder returned no vector for the query");
  }
  return index_->Search(q[0].data(), k, filter);
}

}  // namespace rag
