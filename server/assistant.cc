#include "server/assistant.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/file_util.h"
#include "common/logging.h"
#include "ingest/parser.h"
#include "retrieval/bm25_query.h"
#include "retrieval/extractive_answerer.h"

namespace rag {
namespace {

constexpr size_t kMaxQuestionBytes = 8192;
constexpr const char* kNoAnswer =
    "I could not find an answer to this question in your documents.";

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

Assistant::Assistant(AssistantOptions options, std::unique_ptr<DocumentStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}
Assistant::~Assistant() = default;

StatusOr<std::unique_ptr<Assistant>> Assistant::Open(const AssistantOptions& options) {
  RAG_RETURN_IF_ERROR(MakeDirs(options.data_dir + "/files"));
  RAG_ASSIGN_OR_RETURN(auto store, DocumentStore::Open(options.data_dir + "/rag.db"));
  return std::unique_ptr<Assistant>(new Assistant(options, std::move(store)));
}

std::string Assistant::StoredFilePath(const std::string& content_hash) const {
  return options_.data_dir + "/files/" + content_hash;
}

StatusOr<AddResult> Assistant::AddUpload(std::string_view bytes, const std::string& filename,
                                         const std::string& collection) {
  if (filename.empty()) return InvalidArgument("the upload has no file name");
  if (!IsSupportedFileName(filename)) {
    return Unsupported(filename + ": unsupported file type (supported: .pdf .txt .md .html)");
  }
  if (bytes.empty()) return InvalidArgument(filename + ": the file is empty");
  if (static_cast<int64_t>(bytes.size()) > options_.max_upload_bytes) {
    return ResourceExhausted(filename + ": the file is larger than the limit of " +
                             std::to_string(options_.max_upload_bytes >> 20) + " MB");
  }
  const std::string hash = Sha256Hex(bytes);
  // The file is on disk (fsync'ed) before the row exists, so a queued row always has its file.
  const std::string path = StoredFilePath(hash);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) RAG_RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
  NewDocument doc;
  doc.collection = collection;
  doc.content_hash = hash;
  doc.filename = filename;
  doc.bytes = static_cast<int64_t>(bytes.size());
  AddResult result;
  RAG_ASSIGN_OR_RETURN(result.document, store_->CreateDocument(doc, &result.duplicate));
  RAG_LOG(INFO) << "upload: " << (result.duplicate ? "duplicate of" : "stored") << " document id="
                << result.document.id << " file=" << filename << " bytes=" << bytes.size();
  return result;
}

StatusOr<IngestStats> Assistant::ProcessDocument(int64_t id, const IngestProgressFn& progress) {
  RAG_ASSIGN_OR_RETURN(DocumentRecord doc, store_->GetDocument(id));
  // Uploads live under files/; documents from `rag ingest` are read where they are.
  std::string path = StoredFilePath(doc.content_hash);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !doc.source_path.empty()) path = doc.source_path;
  StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    Status st = bytes.status().WithPrefix(doc.filename);
    (void)store_->SetStatus(id, "failed", st.message());
    return st;
  }
  if (!doc.source_path.empty() && Sha256Hex(*bytes) != doc.content_hash) {
    Status st = FailedPrecondition(doc.filename + ": the file changed on disk since it was queued; ingest it again");
    (void)store_->SetStatus(id, "failed", st.message());
    return st;
  }
  return IngestDocument(*store_, id, *bytes, doc.filename, options_.chunking, progress);
}

StatusOr<AddResult> Assistant::IngestPath(const std::string& path, const std::string& collection,
                                          const IngestProgressFn& progress) {
  const std::string filename = BaseName(path);
  if (!IsSupportedFileName(filename)) {
    return Unsupported(path + ": unsupported file type (supported: .pdf .txt .md .html)");
  }
  RAG_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.empty()) return InvalidArgument(path + ": the file is empty");
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(path, ec).lexically_normal().string();
  NewDocument doc;
  doc.collection = collection;
  doc.content_hash = Sha256Hex(bytes);
  doc.filename = filename;
  doc.source_path = absolute;
  doc.bytes = static_cast<int64_t>(bytes.size());
  AddResult result;
  RAG_ASSIGN_OR_RETURN(result.document, store_->CreateDocument(doc, &result.duplicate));
  if (result.duplicate && result.document.status == "ready") return result;
  // New, or left unfinished (or failed) by an earlier run: (re)process it now.
  RAG_ASSIGN_OR_RETURN(IngestStats stats, IngestDocument(*store_, result.document.id, bytes, filename,
                                                         options_.chunking, progress));
  (void)stats;
  RAG_ASSIGN_OR_RETURN(result.document, store_->GetDocument(result.document.id));
  result.duplicate = false;
  return result;
}

StatusOr<std::vector<DocumentRecord>> Assistant::PendingDocuments() {
  return store_->ListDocumentsWithStatus({"queued", "processing"});
}

Status Assistant::DeleteDocument(int64_t id) {
  RAG_ASSIGN_OR_RETURN(DocumentRecord doc, store_->GetDocument(id));
  RAG_RETURN_IF_ERROR(store_->DeleteDocument(id));
  // The saved upload goes too, unless another collection holds the same bytes.
  RAG_ASSIGN_OR_RETURN(auto all, store_->ListDocuments(std::nullopt));
  bool shared = false;
  for (const auto& d : all) shared = shared || d.content_hash == doc.content_hash;
  if (!shared) {
    std::error_code ec;
    std::filesystem::remove(StoredFilePath(doc.content_hash), ec);
  }
  RAG_LOG(INFO) << "delete: document id=" << id << " file=" << doc.filename;
  return Status::Ok();
}

StatusOr<std::vector<Passage>> Assistant::Retrieve(const QueryRequest& request) {
  if (IsBlank(request.question)) return InvalidArgument("the question is empty");
  if (request.question.size() > kMaxQuestionBytes) {
    return InvalidArgument("the question is longer than " + std::to_string(kMaxQuestionBytes) + " bytes");
  }
  if (request.top_k < 1 || request.top_k > 50) return InvalidArgument("top_k must be between 1 and 50");
  SearchFilter filter;
  filter.collection = request.collection;
  filter.document_id = request.document_id;
  filter.collections = request.allowed_collections;
  // A chunk that mostly repeats a better one (more than half of the smaller shared, e.g. a
  // short last chunk inside its neighbour's overlap) adds nothing: fetch extra hits and keep
  // the top_k that are not such near-duplicates. Ordinary neighbours share less and stay.
  RAG_ASSIGN_OR_RETURN(auto hits, store_->SearchBm25(BuildFtsQuery(request.question), filter,
                                                     request.top_k * 3));
  std::vector<Passage> passages;
  passages.reserve(request.top_k);
  for (auto& h : hits) {
    if (static_cast<int>(passages.size()) == request.top_k) break;
    bool overlaps = false;
    for (const auto& kept : passages) {
      const ChunkRecord& k = kept.chunk;
      if (k.document_id != h.chunk.document_id || k.page != h.chunk.page) continue;
      const int64_t shared = std::min(k.end, h.chunk.end) - std::max(k.start, h.chunk.start);
      const int64_t smaller = std::min(k.end - k.start, h.chunk.end - h.chunk.start);
      overlaps = overlaps || (shared > 0 && 2 * shared > smaller);
    }
    if (overlaps) continue;
    Passage p;
    p.index = static_cast<int>(passages.size());
    p.chunk = std::move(h.chunk);
    p.score = h.score;
    passages.push_back(std::move(p));
  }
  return passages;
}

StatusOr<QueryResult> Assistant::Query(const QueryRequest& request) {
  QueryResult result;
  result.mode = "extractive";
  const auto t0 = std::chrono::steady_clock::now();
  RAG_ASSIGN_OR_RETURN(result.passages, Retrieve(request));
  result.retrieve_ms = MillisSince(t0);

  const auto t1 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  for (const auto& p : result.passages) texts.push_back(p.chunk.text);
  const std::string tagged = ExtractiveAnswer(request.question, texts);
  result.answer = ParseCitations(tagged, static_cast<int>(texts.size()));
  if (result.answer.answer.empty()) result.answer.answer = kNoAnswer;
  result.answer_ms = MillisSince(t1);
  return result;
}

}  // namespace rag
