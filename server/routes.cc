// The route table (DESIGN.md section 4) and the small routes: jobs and health.
#include <pistache/http.h>

#include <exception>

#include "common/logging.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/job_queue.h"

namespace rag {
namespace {

using Pistache::Http::Method;

HttpReply MethodNotAllowed(Method method, const std::string& path, const std::string& allow) {
  HttpReply reply =
      ErrorReply(405,
                 InvalidArgument(std::string("method ") + Pistache::Http::methodString(method) +
                                 " is not allowed on " + path + " (allowed: " + allow + ")"),
                 "method_not_allowed");
  reply.headers.emplace_back("Allow", allow);
  return reply;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

HttpReply RouteUnchecked(ServerContext& ctx, const Pistache::Http::Request& request) {
  const std::string& path = request.resource();
  const Method method = request.method();

  if (path == "/v1/documents") {
    if (method == Method::Get) return HandleListDocuments(ctx, request);
    if (method == Method::Post) return HandleUpload(ctx, request);
    return MethodNotAllowed(method, path, "GET, POST");
  }
  constexpr std::string_view kDocumentPrefix = "/v1/documents/";
  if (StartsWith(path, kDocumentPrefix) && path.find('/', kDocumentPrefix.size()) == path.npos) {
    const std::string_view id = std::string_view(path).substr(kDocumentPrefix.size());
    if (method == Method::Get) return HandleGetDocument(ctx, id);
    if (method == Method::Delete) return HandleDeleteDocument(ctx, id);
    return MethodNotAllowed(method, path, "GET, DELETE");
  }
  constexpr std::string_view kJobPrefix = "/v1/jobs/";
  if (StartsWith(path, kJobPrefix) && path.find('/', kJobPrefix.size()) == path.npos) {
    if (method == Method::Get) {
      return HandleGetJob(ctx, std::string_view(path).substr(kJobPrefix.size()));
    }
    return MethodNotAllowed(method, path, "GET");
  }
  // The routes of one method each.
  auto only = [&](Method allowed, const char* allow, auto handle) -> HttpReply {
    return method == allowed ? handle() : MethodNotAllowed(method, path, allow);
  };
  if (path == "/v1/query") return only(Method::Post, "POST", [&] { return HandleQuery(ctx, request); });
  if (path == "/v1/chat/completions") {
    return only(Method::Post, "POST", [&] { return HandleChatCompletions(ctx, request); });
  }
  if (path == "/v1/models") return only(Method::Get, "GET", [&] { return HandleModels(ctx); });
  if (path == "/healthz") return only(Method::Get, "GET", [&] { return HandleHealth(ctx); });
  if (path == "/metrics") return only(Method::Get, "GET", [&] { return HandleMetrics(ctx); });
  if (std::optional<HttpReply> page = HandleStatic(ctx, path)) {
    if (method == Method::Get) return std::move(*page);
    return MethodNotAllowed(method, path, "GET");
  }
  std::string shown = path.substr(0, 200);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return ErrorReply(
      NotFound("no route for " + std::string(Pistache::Http::methodString(method)) + " " + shown));
}

}  // namespace

HttpReply Route(ServerContext& ctx, const Pistache::Http::Request& request) {
  try {
    return RouteUnchecked(ctx, request);
  } catch (const std::exception& e) {
    RAG_LOG(ERROR) << "http: handler threw: " << e.what();
    return ErrorReply(Internal("internal error while handling the request"));
  } catch (...) {
    RAG_LOG(ERROR) << "http: handler threw an unknown exception";
    return ErrorReply(Internal("internal error while handling the request"));
  }
}

Json JobToJson(const JobRecord& job) {
  Json j = {{"id", job.id},
            {"document_id", job.document_id},
            {"filename", job.filename},
            {"state", JobStateName(job.state)},
            {"progress",
             {{"pages_done", job.progress.pages_done},
              {"pages_total", job.progress.pages_total},
              {"chunks_done", job.progress.chunks_done},
              {"chunks_total", job.progress.chunks_total}}},
            {"created_at", job.created_at}};
  if (!job.error.empty()) j["error"] = job.error;
  if (!job.finished_at.empty()) j["finished_at"] = job.finished_at;
  return j;
}

HttpReply HandleGetJob(ServerContext& ctx, std::string_view id) {
  std::optional<JobRecord> job = ctx.jobs.Get(std::string(id));
  if (!job) {
    std::string shown(id.substr(0, 40));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') c = '?';
    }
    return ErrorReply(
        NotFound("no job \"" + shown + "\" (finished jobs are kept in memory until a restart)"));
  }
  return JsonReply(200, JobToJson(*job));
}

HttpReply HandleHealth(ServerContext& ctx) {
  StatusOr<DocumentStore::Counts> counts = ctx.assistant.store().CountAll();
  if (!counts.ok()) return ErrorReply(counts.status());
  Json health = {{"status", "ok"},
                 {"documents", counts->documents},
                 {"chunks", counts->chunks},
                 {"jobs_queued", ctx.jobs.queued()},
                 {"jobs_running", ctx.jobs.running()}};
  // Extractive mode keeps the original shape (no "mode"/"model": no model answers).
  if (!ctx.assistant.model_name().empty()) {
    health["mode"] = ctx.assistant.mode();
    health["model"] = ctx.assistant.model_name();
  }
  // Dense retrieval, when on: the embedder and how many chunks its index holds.
  if (DenseIndex* dense = ctx.assistant.dense()) {
    health["embedder"] = dense->embedder().name();
    health["vectors"] = dense->size();
  }
  return JsonReply(200, health);
}

// Prometheus text: the request series, then gauges and counters read now.
HttpReply HandleMetrics(ServerContext& ctx) {
  std::string out = ctx.metrics.Render();
  AppendMetric(&out, "rag_http_in_flight", "gauge",
               "Requests whose response is not yet handed to the kernel.",
               static_cast<double>(ctx.in_flight.load()));
  AppendMetric(&out, "rag_ingest_queue_depth", "gauge", "Uploaded documents waiting for ingestion.",
               static_cast<double>(ctx.jobs.queued()));
  AppendMetric(&out, "rag_ingest_running", "gauge", "Documents being ingested now.",
               static_cast<double>(ctx.jobs.running()));
  const Assistant::Counters c = ctx.assistant.counters();
  AppendMetric(&out, "rag_ingest_documents_total", "counter", "Documents ingested (ready).",
               static_cast<double>(c.documents_ingested));
  AppendMetric(&out, "rag_ingest_failed_total", "counter", "Documents whose ingestion failed.",
               static_cast<double>(c.documents_failed));
  AppendMetric(&out, "rag_ingest_pages_total", "counter", "Pages of the documents ingested.",
               static_cast<double>(c.pages_ingested));
  AppendMetric(&out, "rag_ingest_chunks_total", "counter", "Chunks stored by ingestion.",
               static_cast<double>(c.chunks_ingested));
  AppendMetric(&out, "rag_generating", "gauge", "Answers being generated now.",
               static_cast<double>(ctx.assistant.generating()));
  AppendMetric(&out, "rag_answers_total", "counter", "Answers generated by the model.",
               static_cast<double>(c.answers));
  AppendMetric(&out, "rag_prompt_tokens_total", "counter", "Prompt tokens of those answers.",
               static_cast<double>(c.prompt_tokens));
  AppendMetric(&out, "rag_completion_tokens_total", "counter", "Tokens generated.",
               static_cast<double>(c.completion_tokens));
  AppendMetric(&out, "rag_generation_seconds_total", "counter",
               "Time spent generating answers (tokens/s = rate(completion) / rate(this)).",
               c.generation_seconds);
  const PrefixCacheStats prefix = ctx.assistant.prefix_cache_stats();
  AppendMetric(&out, "rag_prefix_cache_query_tokens_total", "counter",
               "Prompt tokens looked up in the engine's prefix cache.",
               static_cast<double>(prefix.queries));
  AppendMetric(&out, "rag_prefix_cache_hit_tokens_total", "counter",
               "Prompt tokens whose keys and values came from the prefix cache.",
               static_cast<double>(prefix.hits));
  if (DenseIndex* dense = ctx.assistant.dense()) {
    AppendMetric(&out, "rag_vectors", "gauge", "Chunk vectors in the dense index.",
                 static_cast<double>(dense->size()));
  }
  HttpReply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.body = std::move(out);
  return reply;
}

}  // namespace rag
