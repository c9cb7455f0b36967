// POST /v1/query: strict request parsing, then Assistant::Query (JSON) or Retrieve + Answer
// streamed as server-sent events. POST /v1/retrieve: the same request (without "stream"), then
// Assistant::Retrieve alone: the passages a query would be answered from, for callers that
// bring their own language model.
//
// Streaming (`"stream": true`) sends server-sent events in this order:
//   event: passages   data: {"passages":[...]}            (as in the JSON answer)
//   event: token      data: {"text":"..."}                (the answer in pieces as it is made:
//                                                          extractive answers concatenate to
//                                                          "answer" exactly; a model's pieces are
//                                                          its raw text, <co:N> tags included)
//   event: citations  data: {"citations":[...],"unsupported":[...]}
//   event: done       data: the JSON answer without "passages"
//   event: error      data: {"error":{...}}               (instead of citations/done when the
//                                                          engine fails mid-answer)
// Errors found before streaming (bad request, failed retrieval) are ordinary JSON errors with a
// 4xx/5xx status.
//
// Threads: the answer is made on an answer thread (http_internal.h), never on Pistache's; a
// stream is written there by an SseWriter on the connection's socket. A client that hangs up
// (ClientGone, or a write that fails) or a server that shuts down makes on_event return false,
// which cancels the request in the engine.
#include <pistache/http.h>

#include <cctype>
#include <chrono>

#include "common/logging.h"
#include "server/api_json.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/sse_writer.h"

namespace rag {
namespace {

constexpr int kMaxTopK = 50;

int StreamQueryEvents(ServerContext& ctx, const QueryRequest& query, std::vector<Passage> passages,
                      SseWriter& sse) {
  sse.Send("passages", DumpJson({{"passages", PassagesToJson(passages)}}));
  StatusOr<QueryResult> result =
      ctx.assistant.Answer(query, std::move(passages), [&ctx, &sse](const QueryEvent& e) {
        if (!AnswerGoesOn(ctx, sse)) return false;
        return e.kind != QueryEvent::Kind::kToken || sse.Send("token", DumpJson({{"text", e.text}}));
      });
  if (result.ok()) {
    Json done = QueryResultToJson(*result);
    sse.Send("citations", DumpJson({{"citations", done["citations"]}, {"unsupported", done["unsupported"]}}));
    done.erase("passages");
    sse.Send("done", DumpJson(done));
  } else if (AnswerGoesOn(ctx, sse)) {
    RAG_LOG(WARN) << "http: answer failed mid-stream: " << result.status().message();
    sse.Send("error", DumpJson({{"error", {{"message", result.status().message()},
                                          {"type", "server_error"}, {"code", "internal"}}}}));
  }
  sse.End();
  if (sse.failed() || sse.ClientGone()) {
    RAG_LOG(INFO) << "http: query stream cut short: the client hung up (request cancelled)";
  } else if (ctx.draining.load()) {
    RAG_LOG(INFO) << "http: query stream cut short: the server is shutting down";
  }
  return 200;
}

}  // namespace

bool AnswerGoesOn(const ServerContext& ctx, const SseWriter& sse) {
  return !ctx.draining.load() && !sse.failed() && !sse.ClientGone();
}

namespace {

struct QueryBody {
  QueryRequest query;
  bool stream = false;
};

// The JSON body of POST /v1/query and POST /v1/retrieve: {"question", "top_k"?, "collection"?,
// "document_id"?} and, where `stream_allowed`, "stream"?. Unknown fields, wrong types, a blank
// question, top_k outside 1..50, a bad collection name or document id are InvalidArgument, a
// Content-Type other than JSON (or curl's form label) Unsupported. The question's length is
// checked by Assistant::Retrieve. Retrieval is limited to `access`'s collections.
StatusOr<QueryBody> ParseQueryBody(const Pistache::Http::Request& request, const Access& access,
                                   bool stream_allowed) {
  if (std::optional<std::string> type = HeaderValue(request, "Content-Type")) {
    std::string media = type->substr(0, type->find(';'));
    while (!media.empty() && media.back() == ' ') media.pop_back();
    for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // `curl -d '{...}'` labels its body application/x-www-form-urlencoded; the body must still
    // be a JSON object, so accepting that label only spares users a -H flag.
    if (media != "application/json" && media != "application/x-www-form-urlencoded") {
      return Unsupported("Content-Type must be application/json");
    }
  }
  RAG_ASSIGN_OR_RETURN(
      Json body,
      stream_allowed
          ? ParseJsonObject(request.body(),
                            {"question", "collection", "top_k", "document_id", "stream"})
          : ParseJsonObject(request.body(), {"question", "collection", "top_k", "document_id"}));

  QueryBody out;
  QueryRequest& query = out.query;
  RAG_ASSIGN_OR_RETURN(query.question, GetString(body, "question"));
  bool blank = true;
  for (char c : query.question) blank = blank && std::isspace(static_cast<unsigned char>(c));
  if (blank) return InvalidArgument("question must not be empty");

  RAG_ASSIGN_OR_RETURN(std::optional<std::string> collection,
                       GetOptionalString(body, "collection"));
  if (collection) {
    RAG_RETURN_IF_ERROR(ValidateCollection(*collection));
    query.collection = std::move(*collection);
  }
  RAG_ASSIGN_OR_RETURN(std::optional<long long> top_k, GetOptionalInt(body, "top_k"));
  if (top_k) {
    if (*top_k < 1 || *top_k > kMaxTopK) {
      return InvalidArgument("top_k must be between 1 and " + std::to_string(kMaxTopK));
    }
    query.top_k = static_cast<int>(*top_k);
  }
  RAG_ASSIGN_OR_RETURN(std::optional<long long> document_id, GetOptionalInt(body, "document_id"));
  if (document_id) {
    if (*document_id < 1) return InvalidArgument("document_id must be positive");
    query.document_id = *document_id;
  }
  if (stream_allowed) {
    RAG_ASSIGN_OR_RETURN(std::optional<bool> stream, GetOptionalBool(body, "stream"));
    out.stream = stream.value_or(false);
  }
  // Retrieval itself keeps to the caller's collections, so a "collection" or "document_id" it
  // may not see finds nothing, exactly like one that does not exist.
  if (!access.all_collections) query.allowed_collections = access.collections;
  query.cache_scope = access.CacheScope();
  return out;
}

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

HttpReply HandleQuery(ServerContext& ctx, const Pistache::Http::Request& request,
                      const Access& access) {
  StatusOr<QueryBody> body = ParseQueryBody(request, access, /*stream_allowed=*/true);
  if (!body.ok()) return ErrorReply(body.status());
  QueryRequest& query = body->query;
  if (!body->stream && ctx.assistant.mode() != "model") {  // extractive: no model to wait for
    StatusOr<QueryResult> result = ctx.assistant.Query(query);
    if (!result.ok()) return ErrorReply(result.status());
    return JsonReply(200, QueryResultToJson(*result));
  }
  // Retrieval here (errors are ordinary JSON errors), the answer on an answer thread.
  const auto t0 = std::chrono::steady_clock::now();
  StatusOr<std::vector<Passage>> passages = ctx.assistant.Retrieve(query);
  if (!passages.ok()) return ErrorReply(passages.status());
  const double retrieve_ms = MillisSince(t0);
  HttpReply reply;
  if (body->stream) {
    reply.stream = [&ctx, query = std::move(query), passages = std::move(*passages)](SseWriter& sse) mutable {
      return StreamQueryEvents(ctx, query, std::move(passages), sse);
    };
  } else {
    reply.later = [&ctx, query = std::move(query), passages = std::move(*passages),
                   retrieve_ms](const GoesOnFn& goes_on) mutable {
      StatusOr<QueryResult> result =
          ctx.assistant.Answer(query, std::move(passages), [&goes_on](const QueryEvent&) { return goes_on(); });
      if (!result.ok()) return ErrorReply(result.status());
      result->retrieve_ms = retrieve_ms;
      return JsonReply(200, QueryResultToJson(*result));
    };
  }
  return reply;
}

HttpReply HandleRetrieve(ServerContext& ctx, const Pistache::Http::Request& request,
                         const Access& access) {
  const auto t0 = std::chrono::steady_clock::now();
  StatusOr<QueryBody> body = ParseQueryBody(request, access, /*stream_allowed=*/false);
  if (!body.ok()) return ErrorReply(body.status());
  const auto t1 = std::chrono::steady_clock::now();
  StatusOr<std::vector<Passage>> passages = ctx.assistant.Retrieve(body->query);
  if (!passages.ok()) return ErrorReply(passages.status());
  const double retrieve_ms = MillisSince(t1);
  Json answer = {{"passages", PassagesToJson(*passages)}};
  answer["timings"] = {{"retrieve_ms", retrieve_ms}, {"total_ms", MillisSince(t0)}};
  return JsonReply(200, answer);
}

}  // namespace rag
