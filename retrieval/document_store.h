// The document store: SQLite (WAL) holding documents, chunks and the FTS5 index over chunks.
// SQLite is the source of truth of the data directory (DESIGN.md section 4): a document whose
// status is "ready" has all its chunks committed in the same transaction that set the status.
//
// Thread-safety: all methods may be called from any thread; calls are serialised on one
// connection (SQLite's own locking also makes several processes on one file safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "ingest/chunker.h"

struct sqlite3;

namespace rag {

// Document lifecycle: queued (file saved, row created) -> processing -> ready | failed.
struct DocumentRecord {
  int64_t id = 0;
  std::string collection;    // "default" unless named
  std::string content_hash;  // SHA-256 hex of the file's bytes
  std::string filename;      // base name as uploaded or found on disk
  std::string source_path;   // absolute path for `rag ingest`, "" for uploads
  std::string title;
  std::string format;        // pdf, text, markdown, html ("" until parsed)
  std::string status;        // queued, processing, ready, failed
  std::string error;         // why it failed, "" otherwise
  int pages = 0;
  int chunks = 0;
  int64_t bytes = 0;
  std::string created_at;    // ISO 8601 UTC
  std::string updated_at;
};

struct NewDocument {
  std::string collection = "default";
  std::string content_hash;
  std::string filename;
  std::string source_path;
  int64_t bytes = 0;
};

// A stored chunk with the fields of its document that a passage shows.
struct ChunkRecord {
  int64_t id = 0;
  int64_t document_id = 0;
  int ordinal = 0;     // position in the document, from 0
  int page = 1;
  int64_t start = 0;   // byte span in the page text (see ingest/chunker.h)
  int64_t end = 0;
  std::string section;
  std::string text;
  std::string title;     // the document's title
  std::string filename;  // the document's file name
  std::string collection;
};

struct SearchHit {
  ChunkRecord chunk;
  double score = 0;  // higher is better (negated FTS5 bm25)
};

struct SearchFilter {
  std::optional<std::string> collection;  // only this collection
  std::vector<std::string> collections;   // when non-empty: only these (access control)
  std::optional<int64_t> document_id;     // only this document
};

class DocumentStore {
 public:
  // Opens or creates rag.db at db_path (the directory must exist) and migrates the schema.
  static StatusOr<std::unique_ptr<DocumentStore>> Open(const std::string& db_path);
  ~DocumentStore();
  DocumentStore(const DocumentStore&) = delete;
  DocumentStore& operator=(const DocumentStore&) = delete;

  // Inserts a queued document. When (collection, content_hash) is already stored, inserts
  // nothing and returns the existing record with *existed = true.
  StatusOr<DocumentRecord> CreateDocument(const NewDocument& doc, bool* existed);

  // Sets status (and error, "" to clear). NotFound when the document does not exist.
  Status SetStatus(int64_t id, const std::string& status, const std::string& error = "");

  // In one transaction: inserts the chunks and their FTS rows, sets title/format/pages/chunks
  // and status "ready", and deletes any other document of the same collection with the same
  // non-empty source_path (a changed file replaces its old version). NotFound when the
  // document was deleted meanwhile (nothing is written then). When removed_chunk_ids is given,
  // it receives the ids of the chunks the call deleted (the document's earlier chunks, and
  // those of the versions it replaced), whose vectors must leave the vector index too.
  Status StoreChunks(int64_t id, const std::string& title, const std::string& format, int pages,
                     const std::vector<Chunk>& chunks,
                     std::vector<int64_t>* removed_chunk_ids = nullptr);

  StatusOr<DocumentRecord> GetDocument(int64_t id);
  // Newest first. collection == nullopt: all.
  StatusOr<std::vector<DocumentRecord>> ListDocuments(const std::optional<std::string>& collection);
  // Documents whose status is one of `statuses`, oldest first.
  StatusOr<std::vector<DocumentRecord>> ListDocumentsWithStatus(const std::vector<std::string>& statuses);
  StatusOr<std::optional<DocumentRecord>> FindByHash(const std::string& collection, const std::string& hash);
  // True when any document, in any collection, has these bytes (content hash).
  StatusOr<bool> HasContentHash(const std::string& hash);
  StatusOr<std::optional<DocumentRecord>> FindBySourcePath(const std::string& collection, const std::string& path);

  // Deletes the document, its chunks and FTS rows. NotFound when absent.
  Status DeleteDocument(int64_t id);

  // Chunks by id, in the order of ids; ids that do not exist are skipped.
  StatusOr<std::vector<ChunkRecord>> GetChunks(const std::vector<int64_t>& ids);
  // All chunks of a document in order.
  StatusOr<std::vector<ChunkRecord>> GetDocumentChunks(int64_t document_id);

  // BM25 over chunks of ready documents. fts_query is an FTS5 MATCH expression (see
  // bm25_query.h); an empty query returns no hits. At most k hits, best first.
  StatusOr<std::vector<SearchHit>> SearchBm25(const std::string& fts_query, const SearchFilter& filter, int k);

  // Totals for /healthz and the summary line.
  // Key/value settings of the data folder (the embedder's name and dimension, ...).
  StatusOr<std::optional<std::string>> GetMeta(const std::string& key);
  Status SetMeta(const std::string& key, const std::string& value);

  // Ids of every chunk of a document whose status is "ready", ascending (the vector index must
  // hold exactly these).
  StatusOr<std::vector<int64_t>> ReadyChunkIds();

  struct Counts {
    int64_t documents = 0;
    int64_t chunks = 0;
  };
  StatusOr<Counts> CountAll();

 private:
  class Impl;
  explicit DocumentStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rag
