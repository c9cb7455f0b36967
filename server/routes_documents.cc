// /v1/documents: upload (multipart), list, get, delete.
//
// With API keys a caller sees only its collections (http_internal.h): uploads elsewhere are
// refused (403), other documents are missing (404) or left out of lists.
//
// Deleting a document whose ingestion job is running is refused with 409 (the client retries
// when the job has finished); a queued job is cancelled first, so no worker starts it.
#include <pistache/http.h>

#include <mutex>

#include "common/logging.h"
#include "server/api_json.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/job_queue.h"
#include "server/multipart.h"

namespace rag {
namespace {

constexpr int kQueueRetryAfterS = 10;  // a full ingestion queue: Retry-After

// The same bytes uploaded again after their ingestion failed (the disk was full, say): the
// document is queued again, as `rag ingest` retries a failed file, instead of answering with the
// failed record forever. One retry at a time per document (two jobs must never ingest it at
// once); while one is queued or running, the upload answers like any duplicate.
HttpReply RetryFailed(ServerContext& ctx, const DocumentRecord& doc) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  StatusOr<DocumentRecord> now = ctx.assistant.store().GetDocument(doc.id);
  if (!now.ok()) return ErrorReply(now.status());
  if (now->status != "failed" || ctx.jobs.ActiveJobFor(doc.id)) {
    return JsonReply(200, {{"document_id", now->id},
                           {"job_id", nullptr},
                           {"status", now->status},
                           {"duplicate", true},
                           {"document", DocumentToJson(*now)}});
  }
  if (Status st = ctx.assistant.store().SetStatus(doc.id, "queued"); !st.ok()) return ErrorReply(st);
  StatusOr<JobRecord> job = ctx.jobs.Submit(doc.id, doc.filename);
  if (!job.ok()) {
    (void)ctx.assistant.store().SetStatus(doc.id, "failed", now->error);
    if (job.status().code() == StatusCode::kResourceExhausted) {
      return BusyReply(job.status(), kQueueRetryAfterS);
    }
    return ErrorReply(job.status());
  }
  RAG_LOG(INFO) << "http: failed document " << doc.id << " (" << doc.filename
                << ") uploaded again, queued as " << job->id;
  DocumentRecord queued = *now;
  queued.status = "queued";
  queued.error.clear();
  return JsonReply(202, {{"document_id", doc.id},
                         {"job_id", job->id},
                         {"status", "queued"},
                         {"duplicate", true},
                         {"document", DocumentToJson(queued)}});
}

}  // namespace

StatusOr<DocumentRecord> VisibleDocument(ServerContext& ctx, int64_t id, const Access& access) {
  StatusOr<DocumentRecord> doc = ctx.assistant.store().GetDocument(id);
  if (doc.ok() && !access.MaySee(doc->collection)) {
    // Word for word the store's answer for a missing id, so that ids cannot be probed.
    return NotFound("no document with id " + std::to_string(id));
  }
  return doc;
}

HttpReply HandleUpload(ServerContext& ctx, const Pistache::Http::Request& request,
                       const Access& access) {
  const std::string content_type = HeaderValue(request, "Content-Type").value_or("");
  StatusOr<std::vector<MultipartPart>> parts = ParseMultipart(content_type, request.body());
  if (!parts.ok()) return ErrorReply(parts.status());
  for (const MultipartPart& part : *parts) {
    if (part.name != "file" && part.name != "collection") {
      const std::string shown = part.name.size() > 64 ? part.name.substr(0, 64) + "..." : part.name;
      return ErrorReply(InvalidArgument("unknown multipart field \"" + shown +
                                        "\" (expected \"file\" and optionally \"collection\")"));
    }
  }
  const MultipartPart* file = FindPart(*parts, "file");
  if (file == nullptr) return ErrorReply(InvalidArgument("missing multipart field \"file\""));
  if (!file->filename) {
    return ErrorReply(InvalidArgument("multipart field \"file\" has no filename"));
  }
  std::string collection = "default";
  if (const MultipartPart* c = FindPart(*parts, "collection")) {
    collection = std::string(c->data);
    Status valid = ValidateCollection(collection);
    if (!valid.ok()) return ErrorReply(valid);
  }
  // Writing is not reading: naming the collection in the refusal reveals nothing the caller
  // did not send.
  if (!access.MaySee(collection)) {
    return ErrorReply(PermissionDenied("this API key may not add documents to collection \"" +
                                       collection + "\""));
  }
  // Refuse before storing the file when the queue is full; Submit below re-checks.
  if (!ctx.jobs.HasRoom()) {
    if (ctx.draining.load()) return ErrorReply(Unavailable("the server is shutting down"));
    return BusyReply(ResourceExhausted("the ingestion queue is full; try again later"),
                     kQueueRetryAfterS);
  }

  StatusOr<AddResult> added = ctx.assistant.AddUpload(file->data, *file->filename, collection);
  if (!added.ok()) return ErrorReply(added.status());
  const DocumentRecord& doc = added->document;
  if (added->duplicate && doc.status == "failed") return RetryFailed(ctx, doc);
  if (added->duplicate) {
    return JsonReply(200, {{"document_id", doc.id},
                           {"job_id", nullptr},
                           {"status", doc.status},
                           {"duplicate", true},
                           {"document", DocumentToJson(doc)}});
  }
  StatusOr<JobRecord> job = ctx.jobs.Submit(doc.id, doc.filename);
  if (!job.ok()) {
    // Without a job the new document would sit queued until the next start: remove it, so
    // that the client's retry uploads it afresh instead of finding a stuck duplicate.
    Status removed = ctx.assistant.DeleteDocument(doc.id);
    if (!removed.ok()) {
      RAG_LOG(WARN) << "http: could not remove unqueued document " << doc.id << ": "
                    << removed.message();
    }
    if (job.status().code() == StatusCode::kResourceExhausted) {
      return BusyReply(job.status(), kQueueRetryAfterS);
    }
    return ErrorReply(job.status());
  }
  RAG_LOG(INFO) << "http: document " << doc.id << " (" << doc.filename << ", " << doc.bytes
                << " bytes) queued as " << job->id;
  return JsonReply(202, {{"document_id", doc.id},
                         {"job_id", job->id},
                         {"status", "queued"},
                         {"duplicate", false},
                         {"document", DocumentToJson(doc)}});
}

HttpReply HandleListDocuments(ServerContext& ctx, const Pistache::Http::Request& request,
                              const Access& access) {
  StatusOr<std::map<std::string, std::string>> params = QueryParams(request, {"collection"});
  if (!params.ok()) return ErrorReply(params.status());
  std::optional<std::string> collection;
  if (auto it = params->find("collection"); it != params->end()) {
    Status valid = ValidateCollection(it->second);
    if (!valid.ok()) return ErrorReply(valid);
    collection = it->second;
  }
  StatusOr<std::vector<DocumentRecord>> docs = ctx.assistant.store().ListDocuments(collection);
  if (!docs.ok()) return ErrorReply(docs.status());
  // A collection the caller may not see lists as empty, like one that does not exist.
  Json list = Json::array();
  for (const DocumentRecord& doc : *docs) {
    if (access.MaySee(doc.collection)) list.push_back(DocumentToJson(doc));
  }
  return JsonReply(200, {{"documents", std::move(list)}});
}

HttpReply HandleGetDocument(ServerContext& ctx, std::string_view id_text, const Access& access) {
  StatusOr<int64_t> id = ParsePathId(id_text, "document");
  if (!id.ok()) return ErrorReply(id.status());
  StatusOr<DocumentRecord> doc = VisibleDocument(ctx, *id, access);
  if (!doc.ok()) return ErrorReply(doc.status());
  return JsonReply(200, DocumentToJson(*doc));
}

HttpReply HandleDeleteDocument(ServerContext& ctx, std::string_view id_text,
                               const Access& access) {
  StatusOr<int64_t> id = ParsePathId(id_text, "document");
  if (!id.ok()) return ErrorReply(id.status());
  StatusOr<DocumentRecord> doc = VisibleDocument(ctx, *id, access);
  if (!doc.ok()) return ErrorReply(doc.status());
  Status cancelled = ctx.jobs.CancelForDocument(*id);
  if (!cancelled.ok()) return ErrorReply(cancelled);
  Status deleted = ctx.assistant.DeleteDocument(*id);
  if (!deleted.ok()) return ErrorReply(deleted);
  RAG_LOG(INFO) << "http: deleted document " << *id << " (" << doc->filename << ")";
  return JsonReply(200, {{"deleted", true}, {"id", *id}});
}

}  // namespace rag
