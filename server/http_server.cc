#include "server/http_server.h"

#include <pistache/endpoint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "server/api_handler.h"
#include "server/api_keys.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/job_queue.h"

namespace rag {

class HttpServer::Impl {
 public:
  Impl(Assistant& assistant, const ServerOptions& options)
      : assistant_(assistant),
        jobs_(assistant, JobQueueOptions{options.ingest_workers, options.job_queue_capacity}),
        ctx_(std::make_shared<ServerContext>(assistant, jobs_, options)) {}

  ~Impl() { Shutdown(); }

  Status Start() {
    const ServerOptions& options = ctx_->options;
    if (options.port < 0 || options.port > 65535) {
      return InvalidArgument("port must be between 0 and 65535");
    }
    if (options.threads < 1) return InvalidArgument("threads must be at least 1");
    // Pending documents are queued before the socket opens, so that no upload can race with
    // them; the workers start only once the server listens (a failed bind processes nothing).
    StatusOr<int> resumed = ResumePendingDocuments(assistant_, jobs_);
    if (!resumed.ok()) {
      RAG_LOG(WARN) << "jobs: could not list pending documents: " << resumed.status().message();
    } else if (*resumed > 0) {
      RAG_LOG(INFO) << "jobs: resuming " << *resumed << " document(s) left by an earlier run";
    }
    const size_t max_request = static_cast<size_t>(
        std::max(options.max_body_bytes, options.max_json_bytes) + ApiHandler::kMaxHeaderBytes);
    try {
      endpoint_ = std::make_unique<Pistache::Http::Endpoint>(
          Pistache::Address(options.host, Pistache::Port(static_cast<uint16_t>(options.port))));
      auto endpoint_options =
          Pistache::Http::Endpoint::options()
              .threads(options.threads)
              .threadsName("rag-http")
              .flags(Pistache::Tcp::Options::ReuseAddr | Pistache::Tcp::Options::CloseOnExec)
              .maxRequestSize(max_request)
              .headerTimeout(std::chrono::seconds(options.header_timeout_s))
              .bodyTimeout(std::chrono::seconds(options.body_timeout_s))
              .keepaliveTimeout(std::chrono::seconds(options.keepalive_timeout_s));
      endpoint_->init(endpoint_options);
      endpoint_->setHandler(std::make_shared<ApiHandler>(ctx_));
      endpoint_->serveThreaded();
      port_ = endpoint_->getPort();
    } catch (const std::exception& e) {
      endpoint_.reset();
      jobs_.Shutdown();
      return Unavailable("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                         ": " + e.what());
    }
    jobs_.Start();
    RAG_LOG(INFO) << "http: listening on http://" << options.host << ":" << port_ << "/ ("
                  << options.threads << " threads, "
                  << (options.api_keys ? std::to_string(options.api_keys->size()) + " API keys"
                                       : std::string("no API keys"))
                  << ")";
    if (options.on_listening) options.on_listening(port_);
    return Status::Ok();
  }

  void Shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (stopped_) return;
    stopped_ = true;
    ctx_->draining.store(true);
    if (endpoint_) {
      // Responses being produced or written finish first; new requests meanwhile get 503.
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(ctx_->options.shutdown_grace_ms);
      while (ctx_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (ctx_->in_flight.load() > 0) {
        RAG_LOG(WARN) << "http: " << ctx_->in_flight.load()
                      << " response(s) still in flight at shutdown";
      }
      try {
        endpoint_->shutdown();
        endpoint_.reset();  // joins Pistache's threads
      } catch (const std::exception& e) {
        RAG_LOG(WARN) << "http: shutdown: " << e.what();
      }
    }
    // The answers still being made were cancelled by `draining` (their next token); their
    // threads end, and what they wrote goes to the sender.
    ctx_->answers.reset();
    ctx_->sender.Stop();  // responses still unread by their clients are abandoned
    jobs_.Shutdown();  // lets the running job finish
  }

  int port() const { return port_; }

 private:
  Assistant& assistant_;
  JobQueue jobs_;
  std::shared_ptr<ServerContext> ctx_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  int port_ = 0;
  std::mutex shutdown_mu_;
  bool stopped_ = false;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Shutdown(); }

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // 127.x.y.z in dotted-quad form, each part a number up to 255.
  int parts[4];
  char tail = 0;
  if (std::sscanf(host.c_str(), "%d.%d.%d.%d%c", &parts[0], &parts[1], &parts[2], &parts[3],
                  &tail) != 4) {
    return false;
  }
  for (int p : parts) {
    if (p < 0 || p > 255) return false;
  }
  return parts[0] == 127;
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Assistant& assistant,
                                                        const ServerOptions& options) {
  // Keys make every /v1 route ask who is calling, so any address is then as safe as loopback.
  if (!options.api_keys && !options.insecure && !IsLoopbackHost(options.host)) {
    return PermissionDenied("refusing to listen on " + options.host +
                            ": without API keys anyone who reaches it can read and delete every "
                            "document; give --keys FILE, listen on 127.0.0.1 (the default), or "
                            "pass --insecure to accept that");
  }
  // Writes to a socket whose peer is gone must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>(assistant, options);
  RAG_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Shutdown() {
  if (impl_) impl_->Shutdown();
}

namespace {

// The eventfd that the signal handler writes to; -1 outside RunServer. One RunServer at a time.
std::atomic<int> g_stop_fd{-1};
std::atomic<int> g_stop_signal{0};

void OnStopSignal(int signo) {
  g_stop_signal.store(signo);
  const int fd = g_stop_fd.load();
  if (fd >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));  // async-signal-safe
  }
}

}  // namespace

Status RunServer(Assistant& assistant, const ServerOptions& options) {
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  int expected = -1;
  if (!g_stop_fd.compare_exchange_strong(expected, stop_fd)) {
    ::close(stop_fd);
    return FailedPrecondition("RunServer is already running in this process");
  }
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  auto restore_signals = [&] {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  };

  StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(assistant, options);
  if (server.ok()) {
    uint64_t value = 0;
    while (::read(stop_fd, &value, sizeof(value)) < 0 && errno == EINTR) {
    }
    // From here a second Ctrl-C gets the previous disposition (by default: terminate).
    restore_signals();
    RAG_LOG(INFO) << "http: " << (g_stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM")
                  << " received, shutting down";
    (*server)->Shutdown();
    RAG_LOG(INFO) << "http: stopped";
  } else {
    restore_signals();
  }
  g_stop_fd.store(-1);
  ::close(stop_fd);
  return server.ok() ? Status::Ok() : server.status();
}

}  // namespace rag
