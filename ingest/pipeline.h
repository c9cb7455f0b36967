// The ingest pipeline of one document: bytes -> parser -> chunker -> DocumentStore.
// Used by `rag ingest` (synchronously) and by the server's job queue (on a worker thread).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/chunker.h"
#include "retrieval/document_store.h"

namespace rag {

struct IngestProgress {
  int pages_done = 0;
  int pages_total = 0;
  int chunks_done = 0;
  int chunks_total = 0;
};
using IngestProgressFn = std::function<void(const IngestProgress&)>;

struct IngestStats {
  int pages = 0;
  int chunks = 0;
  std::string title;
  std::string format;
  // Chunks the store deleted when it stored these (DocumentStore::StoreChunks): an earlier
  // attempt's, and those of the versions of the same file this one replaced.
  std::vector<int64_t> removed_chunk_ids;
};

// Parses `bytes` (the file `filename`) and stores the chunks of the queued document `id`:
// status goes processing -> ready, or -> failed with the error message (which is also
// returned). The document must already exist (DocumentStore::CreateDocument).
StatusOr<IngestStats> IngestDocument(DocumentStore& store, int64_t id, std::string_view bytes,
                                     const std::string& filename, const ChunkOptions& chunking,
                                     const IngestProgressFn& progress = nullptr);

}  // namespace rag
