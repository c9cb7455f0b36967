#include "retrieval/document_store.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <mutex>

#include "common/logging.h"
#include "retrieval/sqlite_util.h"

namespace rag {
namespace {

// Schema version 1. chunks.title duplicates the document title so that FTS5's external
// content table can index it next to the chunk text (FTS5 reads indexed columns by name from
// the content table).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  collection TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  filename TEXT NOT NULL,
  source_path TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  pages INTEGER NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE(collection, content_hash));
CREATE INDEX IF NOT EXISTS documents_source ON documents(collection, source_path);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL,
  page INTEGER NOT NULL,
  start_offset INTEGER NOT NULL,
  end_offset INTEGER NOT NULL,
  section TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  text, section, title, content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2');
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
)sql";

// BM25 column weights (text, section, title): the chunk's own words count most; headings and
// titles help a question that names the topic.
constexpr const char* kBm25 = "bm25(chunks_fts, 1.0, 0.6, 0.4)";

constexpr const char* kDocumentColumns =
    "id, collection, content_hash, filename, source_path, title, format, status, error, pages, "
    "chunks, bytes, created_at, updated_at";

std::string NowIso8601() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

DocumentRecord ReadDocument(const Statement& s) {
  DocumentRecord d;
  d.id = s.Int(0);
  d.collection = s.Text(1);
  d.content_hash = s.Text(2);
  d.filename = s.Text(3);
  d.source_path = s.Text(4);
  d.title = s.Text(5);
  d.format = s.Text(6);
  d.status = s.Text(7);
  d.error = s.Text(8);
  d.pages = static_cast<int>(s.Int(9));
  d.chunks = static_cast<int>(s.Int(10));
  d.bytes = s.Int(11);
  d.created_at = s.Text(12);
  d.updated_at = s.Text(13);
  return d;
}

constexpr const char* kChunkSelect =
    "SELECT c.id, c.document_id, c.ordinal, c.page, c.start_offset, c.end_offset, c.section, "
    "c.text, d.title, d.filename, d.collection FROM chunks c JOIN documents d ON d.id = c.document_id ";

ChunkRecord ReadChunk(const Statement& s) {
  ChunkRecord c;
  c.id = s.Int(0);
  c.document_id = s.Int(1);
  c.ordinal = static_cast<int>(s.Int(2));
  c.page = static_cast<int>(s.Int(3));
  c.start = s.Int(4);
  c.end = s.Int(5);
  c.section = s.Text(6);
  c.text = s.Text(7);
  c.title = s.Text(8);
  c.filename = s.Text(9);
  c.collection = s.Text(10);
  return c;
}

}  // namespace

class DocumentStore::Impl {
 public:
  sqlite3* db = nullptr;
  std::mutex mu;  // serialises use of db

  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }

  StatusOr<std::vector<DocumentRecord>> QueryDocuments(const std::string& where,
                                                        const std::vector<std::string>& args) {
    Statement s(db, std::string("SELECT ") + kDocumentColumns + " FROM documents " + where);
    for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
    std::vector<DocumentRecord> out;
    while (s.Step()) out.push_back(ReadDocument(s));
    RAG_RETURN_IF_ERROR(s.status());
    return out;
  }

  StatusOr<std::optional<DocumentRecord>> QueryOne(const std::string& where,
                                                   const std::vector<std::string>& args) {
    RAG_ASSIGN_OR_RETURN(auto docs, QueryDocuments(where + " LIMIT 1", args));
    if (docs.empty()) return std::optional<DocumentRecord>();
    return std::optional<DocumentRecord>(std::move(docs[0]));
  }

  // Appends the ids of a document's chunks to *ids; the caller holds mu.
  Status ChunkIdsLocked(int64_t id, std::vector<int64_t>* ids) {
    Statement s(db, "SELECT id FROM chunks WHERE document_id = ?1");
    s.Bind(1, id);
    while (s.Step()) ids->push_back(s.Int(0));
    return s.status();
  }

  // Removes a document's chunks and their FTS rows; the caller holds a transaction.
  Status DeleteChunksLocked(int64_t id) {
    // External-content FTS5 needs the indexed values to delete a row.
    Statement fts(db,
                  "INSERT INTO chunks_fts(chunks_fts, rowid, text, section, title) "
                  "SELECT 'delete', id, text, section, title FROM chunks WHERE document_id = ?1");
    RAG_RETURN_IF_ERROR(fts.Bind(1, id).Run());
    Statement chunks(db, "DELETE FROM chunks WHERE document_id = ?1");
    return chunks.Bind(1, id).Run();
  }

  // Removes a document's FTS rows, chunks and row; the caller holds a transaction.
  Status DeleteLocked(int64_t id) {
    RAG_RETURN_IF_ERROR(DeleteChunksLocked(id));
    Statement doc(db, "DELETE FROM documents WHERE id = ?1");
    RAG_RETURN_IF_ERROR(doc.Bind(1, id).Run());
    if (sqlite3_changes(db) == 0) return NotFound("no document with id " + std::to_string(id));
    return Status::Ok();
  }
};

DocumentStore::DocumentStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DocumentStore::~DocumentStore() = default;

StatusOr<std::unique_ptr<DocumentStore>> DocumentStore::Open(const std::string& db_path) {
  auto impl = std::make_unique<Impl>();
  const int rc = sqlite3_open_v2(db_path.c_str(), &impl->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(impl->db, rc, "cannot open database " + db_path);
  }
  sqlite3_busy_timeout(impl->db, 10000);
  // WAL: readers never block the writer. synchronous=FULL: a committed document survives a
  // power loss, not only a process crash (we promise "stored" means stored).
  Status st = ExecSql(impl->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  if (st.ok()) st = ExecSql(impl->db, kSchema);
  if (!st.ok()) return st.WithPrefix(db_path);
  return std::unique_ptr<DocumentStore>(new DocumentStore(std::move(impl)));
}

StatusOr<DocumentRecord> DocumentStore::CreateDocument(const NewDocument& doc, bool* existed) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Transaction tx(impl_->db);
  RAG_RETURN_IF_ERROR(tx.status());
  RAG_ASSIGN_OR_RETURN(auto found, impl_->QueryOne("WHERE collection = ?1 AND content_hash = ?2",
                                                   {doc.collection, doc.content_hash}));
  if (found) {
    if (existed) *existed = true;
    return *found;
  }
  const std::string now = NowIso8601();
  Statement s(impl_->db,
              "INSERT INTO documents(collection, content_hash, filename, source_path, status, bytes, "
              "created_at, updated_at) VALUES(?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?6)");
  s.Bind(1, doc.collection).Bind(2, doc.content_hash).Bind(3, doc.filename).Bind(4, doc.source_path);
  s.Bind(5, doc.bytes).Bind(6, now);
  RAG_RETURN_IF_ERROR(s.Run());
  const int64_t id = sqlite3_last_insert_rowid(impl_->db);
  RAG_RETURN_IF_ERROR(tx.Commit());
  if (existed) *existed = false;
  RAG_ASSIGN_OR_RETURN(auto created, impl_->QueryOne("WHERE id = ?1", {std::to_string(id)}));
  if (!created) return Internal("document vanished after insert");
  return *created;
}

Status DocumentStore::SetStatus(int64_t id, const std::string& status, const std::string& error) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, "UPDATE documents SET status = ?1, error = ?2, updated_at = ?3 WHERE id = ?4");
  RAG_RETURN_IF_ERROR(s.Bind(1, status).Bind(2, error).Bind(3, NowIso8601()).Bind(4, id).Run());
  if (sqlite3_changes(impl_->db) == 0) return NotFound("no document with id " + std::to_string(id));
  return Status::Ok();
}

Status DocumentStore::StoreChunks(int64_t id, const std::string& title, const std::string& format,
                                  int pages, const std::vector<Chunk>& chunks,
                                  std::vector<int64_t>* removed_chunk_ids) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Transaction tx(impl_->db);
  RAG_RETURN_IF_ERROR(tx.status());
  RAG_ASSIGN_OR_RETURN(auto doc, impl_->QueryOne("WHERE id = ?1", {std::to_string(id)}));
  if (!doc) return NotFound("document " + std::to_string(id) + " was deleted during ingestion");
  std::vector<int64_t> removed;

  // A retry after a crash may find chunks of an earlier attempt: start clean.
  RAG_RETURN_IF_ERROR(impl_->ChunkIdsLocked(id, &removed));
  RAG_RETURN_IF_ERROR(impl_->DeleteChunksLocked(id));

  Statement ins(impl_->db,
                "INSERT INTO chunks(document_id, ordinal, page, start_offset, end_offset, section, "
                "title, text) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  Statement fts(impl_->db,
                "INSERT INTO chunks_fts(rowid, text, section, title) VALUES(?1, ?2, ?3, ?4)");
  RAG_RETURN_IF_ERROR(ins.status());
  RAG_RETURN_IF_ERROR(fts.status());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ins.Reset();
    ins.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, static_cast<int64_t>(c.page));
    ins.Bind(4, static_cast<int64_t>(c.start)).Bind(5, static_cast<int64_t>(c.end));
    ins.Bind(6, c.section).Bind(7, title).Bind(8, c.text);
    RAG_RETURN_IF_ERROR(ins.Run());
    const int64_t chunk_id = sqlite3_last_insert_rowid(impl_->db);
    fts.Reset();
    RAG_RETURN_IF_ERROR(fts.Bind(1, chunk_id).Bind(2, c.text).Bind(3, c.section).Bind(4, title).Run());
  }
  Statement upd(impl_->db,
                "UPDATE documents SET title = ?1, format = ?2, pages = ?3, chunks = ?4, "
                "status = 'ready', error = '', updated_at = ?5 WHERE id = ?6");
  upd.Bind(1, title).Bind(2, format).Bind(3, static_cast<int64_t>(pages));
  upd.Bind(4, static_cast<int64_t>(chunks.size())).Bind(5, NowIso8601()).Bind(6, id);
  RAG_RETURN_IF_ERROR(upd.Run());

  if (!doc->source_path.empty()) {
    RAG_ASSIGN_OR_RETURN(auto older,
                         impl_->QueryDocuments("WHERE collection = ?1 AND source_path = ?2 AND id != ?3",
                                               {doc->collection, doc->source_path, std::to_string(id)}));
    for (const auto& o : older) {
      RAG_RETURN_IF_ERROR(impl_->ChunkIdsLocked(o.id, &removed));
      RAG_RETURN_IF_ERROR(impl_->DeleteLocked(o.id));
      RAG_LOG(INFO) << "store: replaced document id=" << o.id << " by id=" << id
                    << " path=" << doc->source_path;
    }
  }
  RAG_RETURN_IF_ERROR(tx.Commit());
  if (removed_chunk_ids) *removed_chunk_ids = std::move(removed);
  return Status::Ok();
}

StatusOr<DocumentRecord> DocumentStore::GetDocument(int64_t id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  RAG_ASSIGN_OR_RETURN(auto doc, impl_->QueryOne("WHERE id = ?1", {std::to_string(id)}));
  if (!doc) return NotFound("no document with id " + std::to_string(id));
  return *doc;
}

StatusOr<std::vector<DocumentRecord>> DocumentStore::ListDocuments(
    const std::optional<std::string>& collection) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (collection) return impl_->QueryDocuments("WHERE collection = ?1 ORDER BY id DESC", {*collection});
  return impl_->QueryDocuments("ORDER BY id DESC", {});
}

StatusOr<std::vector<DocumentRecord>> DocumentStore::ListDocumentsWithStatus(
    const std::vector<std::string>& statuses) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (statuses.empty()) return std::vector<DocumentRecord>();
  std::string where = "WHERE status IN (";
  for (size_t i = 0; i < statuses.size(); ++i) where += (i ? ", ?" : "?") + std::to_string(i + 1);
  where += ") ORDER BY id ASC";
  return impl_->QueryDocuments(where, statuses);
}

StatusOr<std::optional<DocumentRecord>> DocumentStore::FindByHash(const std::string& collection,
                                                                  const std::string& hash) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->QueryOne("WHERE collection = ?1 AND content_hash = ?2", {collection, hash});
}

StatusOr<bool> DocumentStore::HasContentHash(const std::string& hash) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  RAG_ASSIGN_OR_RETURN(auto found, impl_->QueryOne("WHERE content_hash = ?1", {hash}));
  return found.has_value();
}

StatusOr<std::optional<DocumentRecord>> DocumentStore::FindBySourcePath(const std::string& collection,
                                                                        const std::string& path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->QueryOne("WHERE collection = ?1 AND source_path = ?2 ORDER BY id DESC", {collection, path});
}

Status DocumentStore::DeleteDocument(int64_t id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Transaction tx(impl_->db);
  RAG_RETURN_IF_ERROR(tx.status());
  RAG_RETURN_IF_ERROR(impl_->DeleteLocked(id));
  return tx.Commit();
}

StatusOr<std::vector<ChunkRecord>> DocumentStore::GetChunks(const std::vector<int64_t>& ids) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, std::string(kChunkSelect) + "WHERE c.id = ?1");
  std::vector<ChunkRecord> out;
  for (int64_t id : ids) {
    s.Reset();
    s.Bind(1, id);
    if (s.Step()) out.push_back(ReadChunk(s));
    RAG_RETURN_IF_ERROR(s.status());
  }
  return out;
}

StatusOr<std::vector<ChunkRecord>> DocumentStore::GetDocumentChunks(int64_t document_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, std::string(kChunkSelect) + "WHERE c.document_id = ?1 ORDER BY c.ordinal");
  s.Bind(1, document_id);
  std::vector<ChunkRecord> out;
  while (s.Step()) out.push_back(ReadChunk(s));
  RAG_RETURN_IF_ERROR(s.status());
  return out;
}

StatusOr<std::vector<SearchHit>> DocumentStore::SearchBm25(const std::string& fts_query,
                                                           const SearchFilter& filter, int k) {
  std::vector<SearchHit> hits;
  if (fts_query.empty() || k <= 0) return hits;
  std::string sql =
      "SELECT c.id, c.document_id, c.ordinal, c.page, c.start_offset, c.end_offset, c.section, "
      "c.text, d.title, d.filename, d.collection, -" + std::string(kBm25) +
      " AS score FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
      "JOIN documents d ON d.id = c.document_id "
      "WHERE chunks_fts MATCH ?1 AND d.status = 'ready'";
  int next = 3;  // ?1 query, ?2 limit
  if (filter.collection) sql += " AND d.collection = ?" + std::to_string(next++);
  if (filter.document_id) sql += " AND d.id = ?" + std::to_string(next++);
  if (!filter.collections.empty()) {
    sql += " AND d.collection IN (";
    for (size_t i = 0; i < filter.collections.size(); ++i) {
      sql += (i ? ", ?" : "?") + std::to_string(next++);
    }
    sql += ")";
  }
  sql += std::string(" ORDER BY ") + kBm25 + " LIMIT ?2";

  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, sql);
  s.Bind(1, fts_query).Bind(2, static_cast<int64_t>(k));
  int bind = 3;
  if (filter.collection) s.Bind(bind++, *filter.collection);
  if (filter.document_id) s.Bind(bind++, *filter.document_id);
  for (const auto& c : filter.collections) s.Bind(bind++, c);
  while (s.Step()) hits.push_back({ReadChunk(s), s.Double(11)});
  if (!s.status().ok()) return s.status().WithPrefix("BM25 search for [" + fts_query + "]");
  return hits;
}

StatusOr<std::optional<std::string>> DocumentStore::GetMeta(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, "SELECT value FROM meta WHERE key = ?");
  s.Bind(1, key);
  std::optional<std::string> value;
  if (s.Step()) value = s.Text(0);
  RAG_RETURN_IF_ERROR(s.status());
  return value;
}

Status DocumentStore::SetMeta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db, "INSERT INTO meta(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

StatusOr<std::vector<int64_t>> DocumentStore::ReadyChunkIds() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db,
              "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
              "WHERE d.status = 'ready' ORDER BY c.id");
  std::vector<int64_t> ids;
  while (s.Step()) ids.push_back(s.Int(0));
  RAG_RETURN_IF_ERROR(s.status());
  return ids;
}

StatusOr<DocumentStore::Counts> DocumentStore::CountAll() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Statement s(impl_->db,
              "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)");
  Counts c;
  if (s.Step()) {
    c.documents = s.Int(0);
    c.chunks = s.Int(1);
  }
  RAG_RETURN_IF_ERROR(s.status());
  return c;
}

}  // namespace rag
