// The route table (DESIGN.md section 4), API keys at its door, and the small routes: jobs,
// health and metrics.
#include <pistache/http.h>

#include <cctype>
#include <exception>

#include "common/logging.h"
#include "common/strings.h"
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

// The key of an `Authorization: Bearer <key>` header ("" when there is none or it is not
// Bearer). Pistache parses Authorization into its typed header, so the raw map may lack it.
std::string BearerKey(const Pistache::Http::Request& request) {
  std::string value;
  if (auto typed = request.headers().tryGet<Pistache::Http::Header::Authorization>()) {
    value = typed->value();
  } else if (std::optional<std::string> raw = HeaderValue(request, "Authorization")) {
    value = *raw;
  }
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return "";
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return "";
  }
  const size_t begin = value.find_first_not_of(" \t", kScheme.size());
  const size_t end = value.find_last_not_of(" \t");
  return begin == std::string::npos ? "" : value.substr(begin, end + 1 - begin);
}

// 401 in the error JSON (OpenAI's shape too, so its clients raise AuthenticationError), with
// the RFC 6750 challenge. The message never repeats the presented key.
HttpReply Unauthorized(bool presented) {
  HttpReply reply = ErrorReply(
      401,
      Unauthenticated(presented ? "invalid API key"
                                : "this server needs an API key: send Authorization: Bearer <key>"),
      presented ? "invalid_api_key" : "missing_api_key");
  reply.headers.emplace_back("WWW-Authenticate",
                             presented ? "Bearer realm=\"rag\", error=\"invalid_token\""
                                       : "Bearer realm=\"rag\"");
  return reply;
}

HttpReply RouteWithAccess(ServerContext& ctx, const Pistache::Http::Request& request,
                          const Access& access) {
  const std::string& path = request.resource();
  const Method method = request.method();
  if (path == "/v1/documents") {
    if (method == Method::Get) return HandleListDocuments(ctx, request, access);
    if (method == Method::Post) return HandleUpload(ctx, request, access);
    return MethodNotAllowed(method, path, "GET, POST");
  }
  constexpr std::string_view kDocumentPrefix = "/v1/documents/";
  if (StartsWith(path, kDocumentPrefix)) {
    std::string_view id = std::string_view(path).substr(kDocumentPrefix.size());
    const size_t slash = id.find('/');
    if (slash == id.npos) {
      if (method == Method::Get) return HandleGetDocument(ctx, id, access);
      if (method == Method::Delete) return HandleDeleteDocument(ctx, id, access);
      return MethodNotAllowed(method, path, "GET, DELETE");
    }
    if (id.substr(slash) == "/file") {
      id = id.substr(0, slash);
      if (method == Method::Get) return HandleDocumentFile(ctx, id, access);
      return MethodNotAllowed(method, path, "GET");
    }
  }
  constexpr std::string_view kJobPrefix = "/v1/jobs/";
  if (StartsWith(path, kJobPrefix) && path.find('/', kJobPrefix.size()) == path.npos) {
    if (method == Method::Get) {
      return HandleGetJob(ctx, std::string_view(path).substr(kJobPrefix.size()), access);
    }
    return MethodNotAllowed(method, path, "GET");
  }
  // The routes of one method each.
  auto only = [&](Method allowed, const char* allow, auto handle) -> HttpReply {
    return method == allowed ? handle() : MethodNotAllowed(method, path, allow);
  };
  if (path == "/v1/query") {
    return only(Method::Post, "POST", [&] { return HandleQuery(ctx, request, access); });
  }
  if (path == "/v1/retrieve") {
    return only(Method::Post, "POST", [&] { return HandleRetrieve(ctx, request, access); });
  }
  if (path == "/v1/chat/completions") {
    return only(Method::Post, "POST", [&] { return HandleChatCompletions(ctx, request, access); });
  }
  if (path == "/v1/models") return only(Method::Get, "GET", [&] { return HandleModels(ctx); });
  if (path == "/healthz") {
    return only(Method::Get, "GET", [&] { return HandleHealth(ctx, access); });
  }
  if (path == "/metrics") {
    // Server-wide totals (documents, chunks, vectors of every collection): admin keys only.
    if (!access.admin()) {
      return ErrorReply(PermissionDenied("/metrics needs an admin key (collections [\"*\"])"));
    }
    return only(Method::Get, "GET", [&] { return HandleMetrics(ctx); });
  }
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

HttpReply RouteUnchecked(ServerContext& ctx, const Pistache::Http::Request& request) {
  const std::string& path = request.resource();

  // Without keys everyone sees everything (loopback only, unless --insecure). With keys, every
  // API path (known or not, so routes cannot be probed) and /metrics need a known key; the
  // page and /healthz stay open, /healthz showing its totals to admin keys only.
  Access access;
  if (ctx.options.api_keys) {
    const std::string key = BearerKey(request);
    std::optional<Access> found = key.empty() ? std::nullopt : ctx.options.api_keys->Find(key);
    if (StartsWith(path, "/v1/") || path == "/v1" || path == "/metrics") {
      if (!found) return Unauthorized(!key.empty());
    }
    if (found) {
      access = std::move(*found);
    } else {
      access.all_collections = false;  // an anonymous caller of /healthz: no totals
    }
  }
  // Compressed request bodies are not decoded (so no decompression bomb can come this way):
  // say so, rather than failing to parse the compressed bytes.
  if (const std::optional<std::string> encoding = HeaderValue(request, "Content-Encoding");
      encoding && !encoding->empty() && !EqualsIgnoreCase(*encoding, "identity")) {
    HttpReply reply = ErrorReply(Unsupported(
        "Content-Encoding \"" + encoding->substr(0, 32) + "\" is not supported: send the body uncompressed"));
    reply.caller = access.key_name;
    return reply;
  }
  HttpReply reply = RouteWithAccess(ctx, request, access);
  reply.caller = access.key_name;
  return reply;
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

HttpReply HandleGetJob(ServerContext& ctx, std::string_view id, const Access& access) {
  std::optional<JobRecord> job = ctx.jobs.Get(std::string(id));
  // A job of a collection the caller may not see is no job for it; nor, for a key limited to
  // some collections, is the job of a document deleted since (its collection is unknown).
  if (job && !access.all_collections && !VisibleDocument(ctx, job->document_id, access).ok()) {
    job.reset();
  }
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

HttpReply HandleHealth(ServerContext& ctx, const Access& access) {
  Json health = {{"status", "ok"}};
  if (access.admin()) {
    StatusOr<DocumentStore::Counts> counts = ctx.assistant.store().CountAll();
    if (!counts.ok()) return ErrorReply(counts.status());
    health["documents"] = counts->documents;
    health["chunks"] = counts->chunks;
    health["jobs_queued"] = ctx.jobs.queued();
    health["jobs_running"] = ctx.jobs.running();
  }
  // Extractive mode keeps the original shape (no "mode"/"model": no model answers).
  if (!ctx.assistant.model_name().empty()) {
    health["mode"] = ctx.assistant.mode();
    health["model"] = ctx.assistant.model_name();
  }
  // Dense retrieval, when on: the embedder and how many chunks its index holds.
  if (DenseIndex* dense = ctx.assistant.dense()) {
    health["embedder"] = dense->embedder().name();
    if (access.admin()) health["vectors"] = dense->size();
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
  ctx.assistant.first_token_latency().AppendTo(
      &out, "rag_time_to_first_token_seconds",
      "From an answer's prompt reaching the model to its first token (retrieval not included).");
  ctx.assistant.token_gap_latency().AppendTo(
      &out, "rag_time_between_tokens_seconds",
      "Between two consecutive tokens of an answer (longer while other prompts are read: "
      "rag serve --step-tokens).");
  const PrefixCacheStats prefix = ctx.assistant.prefix_cache_stats();
  AppendMetric(&out, "rag_prefix_cache_query_tokens_total", "counter",
               "Prompt tokens looked up in the engine's prefix cache.",
               static_cast<double>(prefix.queries));
  AppendMetric(&out, "rag_prefix_cache_hit_tokens_total", "counter",
               "Prompt tokens whose keys and values came from the prefix cache.",
               static_cast<double>(prefix.hits));
  AppendMetric(&out, "rag_preemptions_total", "counter",
               "Answers set back to be recomputed later, the KV cache being full (more means "
               "the cache is too small for the answers at once: --seats, --gpu-memory).",
               static_cast<double>(ctx.assistant.preemptions()));
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
