#include "ingest/pipeline.h"

#include <chrono>

#include "common/logging.h"
#include "ingest/parser.h"

namespace rag {

StatusOr<IngestStats> IngestDocument(DocumentStore& store, int64_t id, std::string_view bytes,
                                     const std::string& filename, const ChunkOptions& chunking,
                                     const IngestProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  RAG_RETURN_IF_ERROR(store.SetStatus(id, "processing"));

  auto fail = [&](const Status& st) -> Status {
    // Record why, so the document list and the job both show it; the original error wins
    // even when recording fails (e.g. the document was deleted meanwhile).
    (void)store.SetStatus(id, "failed", st.message());
    RAG_LOG(WARN) << "ingest: failed document id=" << id << " file=" << filename << ": " << st.message();
    return st;
  };

  StatusOr<ParsedDocument> parsed = ParseDocument(bytes, filename);
  if (!parsed.ok()) return fail(parsed.status());
  IngestProgress p;
  p.pages_total = static_cast<int>(parsed->pages.size());
  p.pages_done = p.pages_total;
  if (progress) progress(p);

  const std::vector<Chunk> chunks = ChunkDocument(*parsed, chunking);
  if (chunks.empty()) return fail(InvalidArgument(filename + ": the document has no text"));
  p.chunks_total = static_cast<int>(chunks.size());
  if (progress) progress(p);

  std::vector<int64_t> removed_chunk_ids;
  Status st = store.StoreChunks(id, parsed->title, parsed->format, p.pages_total, chunks,
                                &removed_chunk_ids);
  if (!st.ok()) return fail(st);
  p.chunks_done = p.chunks_total;
  if (progress) progress(p);

  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RAG_LOG(INFO) << "ingest: stored document id=" << id << " file=" << filename
                << " pages=" << p.pages_total << " chunks=" << p.chunks_total << " ms=" << static_cast<int>(ms);
  IngestStats stats;
  stats.pages = p.pages_total;
  stats.chunks = p.chunks_total;
  stats.title = parsed->title;
  stats.format = parsed->format;
  stats.removed_chunk_ids = std::move(removed_chunk_ids);
  return stats;
}

}  // namespace rag
