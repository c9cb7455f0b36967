// The HTTP API and web page of `rag serve` (DESIGN.md section 4), on Pistache.
//
// Requests are parsed and answered on Pistache's threads; ingestion runs on the JobQueue's
// worker threads. Every error is the JSON of rag::ErrorJson with the matching 4xx/5xx status,
// and every request is logged in one INFO line (method, path, status, milliseconds).
//
// Deleting a document whose ingestion job is running is refused with 409 (retry when the job is
// done); a queued job of a deleted document is cancelled. A full ingestion queue answers 429
// with Retry-After.
//
// Shutdown is graceful: new requests get 503, responses already being produced are finished
// and handed to the kernel (up to shutdown_grace_ms), the HTTP threads stop, then the job queue
// lets its running job finish; documents still queued resume at the next start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace rag {

class ApiKeys;
class Assistant;

struct ServerOptions {
  std::string host = "127.0.0.1";
  // API keys (`rag serve --keys FILE`, server/api_keys.h); null: no keys, every client sees
  // every document. With keys, /v1/* and /metrics need `Authorization: Bearer <key>` and each
  // key sees only its collections.
  std::shared_ptr<const ApiKeys> api_keys;
  // Without API keys every client that reaches the port sees every document: Start refuses an
  // address other than loopback (127.0.0.0/8, ::1, localhost) unless this is set
  // (`rag serve --insecure`). With keys any address is allowed.
  bool insecure = false;
  int port = 8080;                       // 0: any free port; on_listening tells which
  int threads = 4;                       // HTTP threads (they never wait for a model)
  // Model answers (streamed or not) being made at once, each on its own answer thread while
  // the engine batches them; more at once are refused with 429 and Retry-After.
  int max_answers = 64;
  int64_t max_body_bytes = 110ll << 20;  // request body of POST /v1/documents (multipart)
  int64_t max_json_bytes = 1ll << 20;    // request body of every other route
  int ingest_workers = 1;                // JobQueue threads
  size_t job_queue_capacity = 256;       // queued uploads before 429
  std::string web_dir;            // "" serves the page embedded at build time; else files from here
  int header_timeout_s = 30;      // a request's line and headers must arrive within this
  int body_timeout_s = 600;       // a whole request (large uploads on slow links) within this
  int keepalive_timeout_s = 120;  // idle keep-alive connections close after
  // A client that takes no byte of its response for this long is disconnected (a response it
  // does not read never holds an HTTP thread: server/response_sender.h).
  int send_stall_timeout_s = 60;
  int shutdown_grace_ms = 5000;   // how long shutdown waits for responses in flight
  // Called once the socket listens, with the actual port (tests pass port 0).
  std::function<void(int port)> on_listening;
};

// A running server. Thread-safety: Shutdown() and port() may be called from any thread.
class HttpServer {
 public:
  // Re-queues documents left pending by an earlier run, binds host:port, then starts the HTTP
  // threads and the job queue. Unavailable when the address cannot be bound, PermissionDenied
  // for a non-loopback host with neither API keys nor `insecure`. Ignores SIGPIPE for the whole
  // process.
  // `assistant` must outlive the server.
  static StatusOr<std::unique_ptr<HttpServer>> Start(Assistant& assistant,
                                                     const ServerOptions& options);
  ~HttpServer();  // Shutdown()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  // Graceful shutdown (see the top of this file); idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True for the loopback addresses: 127.0.0.0/8, ::1 (also written [::1]) and "localhost".
bool IsLoopbackHost(const std::string& host);

// Starts the server and serves until SIGINT or SIGTERM, then shuts down gracefully and returns
// Ok (so `rag serve` exits 0). While it runs, SIGINT/SIGTERM handlers of its own are installed
// (a second signal during shutdown gets the previous disposition, so a second Ctrl-C kills);
// SIGPIPE is ignored for the whole process (writes to closed sockets must fail, not kill).
Status RunServer(Assistant& assistant, const ServerOptions& options);

}  // namespace rag
