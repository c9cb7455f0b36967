// Internals of the HTTP server shared by its .cc files; not an interface for other modules.
//
// Request flow: ApiHandler (api_handler.cc) frames requests and enforces size limits, Route()
// (routes.cc) picks a handler, the handler returns an HttpReply, and ApiHandler sends it and
// logs the request. Handlers run on Pistache's threads, must not throw and must not block on
// anything slower than SQLite, the file system and retrieval (ingestion is queued, never run
// here). A model's answer, which takes seconds to minutes, is not made by the handler: it
// returns the work as HttpReply::later or ::stream, which ApiHandler runs on the answer threads
// (ServerContext::answers), so no HTTP thread waits for a model.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_util.h"
#include "common/status.h"
#include "retrieval/document_store.h"
#include "server/api_keys.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "common/thread_pool.h"
#include "server/response_sender.h"
#include "server/sse_writer.h"

namespace Pistache::Http {
class Request;
class ResponseWriter;
}  // namespace Pistache::Http
namespace Pistache::Tcp {
class Peer;
}  // namespace Pistache::Tcp

namespace rag {

class Assistant;
class JobQueue;

// State shared by every HTTP thread. Thread-safety: the references are to thread-safe objects;
// the counters are atomics.
struct ServerContext {
  // Responses left unsent by clients that do not read them, at most (then such clients are
  // disconnected): response_sender.h.
  static constexpr size_t kMaxUnsentBytes = 512u << 20;

  ServerContext(Assistant& a, JobQueue& j, ServerOptions o)
      : assistant(a),
        jobs(j),
        options(std::move(o)),
        sender(std::chrono::seconds(options.send_stall_timeout_s), kMaxUnsentBytes),
        answers(std::make_unique<ThreadPool>(static_cast<size_t>(std::max(1, options.max_answers)))) {}

  Assistant& assistant;
  JobQueue& jobs;
  const ServerOptions options;
  std::atomic<bool> draining{false};  // shutting down: new requests get 503
  std::atomic<int64_t> in_flight{0};  // requests whose response is not yet with the kernel
  HttpMetrics metrics;                // GET /metrics: requests and latencies
  ResponseSender sender;              // puts every non-streamed response on the wire
  // The answer threads: one per answer being made (options.max_answers; more are refused with
  // 429 by answers_running). Reset (joined) at shutdown, after `draining` cancelled the answers.
  std::unique_ptr<ThreadPool> answers;
  std::atomic<int> answers_running{0};
};

// What a handler answers: a response, or the work that makes one on an answer thread. When
// `later` is set, the rest is ignored and later(goes_on) makes the response there (a model's
// whole answer); goes_on() turns false once the client is gone or the server shuts down, and
// the work then stops (cancels its answer in the engine). When `stream` is set, stream() writes
// server-sent events there (sse_writer.h), stops the same way (AnswerGoesOn) and returns the
// HTTP status for the log line. Either way the connection ends with the response
// (`Connection: close`).
using GoesOnFn = std::function<bool()>;
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  std::function<HttpReply(const GoesOnFn& goes_on)> later;
  std::function<int(SseWriter&)> stream;
  std::string caller;  // the API key's name, for the request's log line ("" without keys)
};

// JSON text of j; invalid UTF-8 in strings becomes U+FFFD instead of an exception.
std::string DumpJson(const Json& j);
HttpReply JsonReply(int status, const Json& body);
// The error JSON of `status` with the HTTP status HttpCodeFor(status).
HttpReply ErrorReply(const Status& status);
// The error JSON of `status` with another HTTP status (405, 429, 431, ...) and, when given,
// another "code" string.
HttpReply ErrorReply(int http_status, const Status& status, const std::string& code = "");

// 429 with the error JSON of `status` (and `code`, when given) and `Retry-After: retry_after_s`.
HttpReply BusyReply(const Status& status, int retry_after_s, const std::string& code = "");

// The reply to one request. Never throws. With API keys, /v1/* and /metrics first need a known
// `Authorization: Bearer` key (401 otherwise); its Access goes to the handler.
HttpReply Route(ServerContext& ctx, const Pistache::Http::Request& request);

// Handlers, one per route (routes_*.cc, static_files.cc). `access` says which collections the
// caller sees: a document of another collection is answered exactly like one that does not
// exist (404), so ids cannot be probed; lists and answers leave such documents out.
HttpReply HandleUpload(ServerContext& ctx, const Pistache::Http::Request& request,
                       const Access& access);
HttpReply HandleListDocuments(ServerContext& ctx, const Pistache::Http::Request& request,
                              const Access& access);
HttpReply HandleGetDocument(ServerContext& ctx, std::string_view id, const Access& access);
HttpReply HandleDeleteDocument(ServerContext& ctx, std::string_view id, const Access& access);
HttpReply HandleDocumentFile(ServerContext& ctx, std::string_view id, const Access& access);
HttpReply HandleGetJob(ServerContext& ctx, std::string_view id, const Access& access);
HttpReply HandleMetrics(ServerContext& ctx);
HttpReply HandleModels(ServerContext& ctx);
HttpReply HandleChatCompletions(ServerContext& ctx, const Pistache::Http::Request& request,
                                const Access& access);

// The document with this id when `access` may see it; NotFound (the store's own message for a
// missing id) otherwise.
StatusOr<DocumentRecord> VisibleDocument(ServerContext& ctx, int64_t id, const Access& access);

// Whether a streamed answer goes on: false (cancel it in the engine) once the server is
// shutting down, the client is gone or a write to it failed.
bool AnswerGoesOn(const ServerContext& ctx, const SseWriter& sse);
HttpReply HandleQuery(ServerContext& ctx, const Pistache::Http::Request& request,
                      const Access& access);
// POST /v1/retrieve: the passages of HandleQuery's retrieval, without an answer.
HttpReply HandleRetrieve(ServerContext& ctx, const Pistache::Http::Request& request,
                         const Access& access);
// Liveness for everyone; the counts of documents, chunks and jobs only for admin access (they
// are totals over every collection).
HttpReply HandleHealth(ServerContext& ctx, const Access& access);
// nullopt when `path` is not a file of the web page.
std::optional<HttpReply> HandleStatic(const ServerContext& ctx, std::string_view path);

// Request helpers.
// The value of a request header (case-insensitive name), if present.
std::optional<std::string> HeaderValue(const Pistache::Http::Request& request,
                                       const std::string& name);
// Query parameters, percent-decoded; InvalidArgument naming a parameter not in `allowed`.
StatusOr<std::map<std::string, std::string>> QueryParams(
    const Pistache::Http::Request& request, std::initializer_list<std::string_view> allowed);
// A positive decimal id as it appears in a path; InvalidArgument otherwise.
StatusOr<int64_t> ParsePathId(std::string_view text, std::string_view what);
// Collection names: [A-Za-z0-9_.-]{1,64}.
Status ValidateCollection(std::string_view name);
// Percent-decoding of a query string component ('+' is a space); InvalidArgument on bad escapes.
StatusOr<std::string> PercentDecode(std::string_view text);

}  // namespace rag
