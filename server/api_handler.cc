#include "server/api_handler.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>

#include "common/strings.h"
#include "common/logging.h"
#include "server/metrics.h"

namespace rag {

namespace Http = Pistache::Http;
namespace Tcp = Pistache::Tcp;

namespace {

constexpr char kConnectionKey[] = "rag.connection";

// Counts a response in flight from the start of its handling until Pistache has written it or
// dropped it (the token lives in the send promise's continuations, which Pistache destroys in
// both cases). Shutdown waits for the count to reach zero.
class InFlight {
 public:
  explicit InFlight(std::shared_ptr<ServerContext> ctx) : ctx_(std::move(ctx)) {
    ctx_->in_flight.fetch_add(1);
  }
  ~InFlight() { ctx_->in_flight.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::shared_ptr<ServerContext> ctx_;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The path as a log line may show it: at most 200 bytes, no control bytes.
std::string LoggedPath(const std::string& path) {
  if (path.empty()) return "-";
  std::string out = path.substr(0, 200);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// The request's log line and its place in GET /metrics. `caller` is the API key's name (never
// the key), "" without keys or before a key was checked.
void LogRequest(HttpMetrics& metrics, const char* method, const std::string& path, int status,
                std::chrono::steady_clock::time_point start, const std::string& caller = "") {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  char took[32];
  std::snprintf(took, sizeof(took), "%.1fms", ms);
  RAG_LOG(INFO) << "http: " << method << " " << LoggedPath(path) << " " << status << " " << took
                << (caller.empty() ? "" : " key=" + caller);
  // Paths of no API route that were answered (not 404) are the web page's files.
  metrics.RecordRequest(RouteLabel(path, status != 404), method, status, ms / 1e3);
}

// The bytes of reply on the wire (what Pistache's ResponseWriter would write).
std::string WireResponse(const HttpReply& reply, bool close) {
  const char* reason = Http::codeString(static_cast<Http::Code>(reply.status));
  std::string wire = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                     (reason != nullptr && *reason != '\0' ? reason : "Status") + "\r\n";
  wire += close ? "Connection: Close\r\n" : "Connection: Keep-Alive\r\n";
  if (!reply.content_type.empty()) wire += "Content-Type: " + reply.content_type + "\r\n";
  for (const auto& [name, value] : reply.headers) wire += name + ": " + value + "\r\n";
  wire += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
  wire += reply.body;
  return wire;
}

int64_t BodyLimit(const ServerOptions& options, bool upload) {
  return upload ? options.max_body_bytes : options.max_json_bytes;
}

bool IsUpload(const Http::Request& request) {
  return request.method() == Http::Method::Post && request.resource() == "/v1/documents";
}

std::string OverLimit(int64_t limit) {
  return "request body is over the limit of " + std::to_string(limit) + " bytes for this route";
}

// What the raw request line and headers (without the final empty line) declare, checked before
// Pistache parses them: Pistache reserves memory for the declared body length as soon as it has
// the headers, so an absurd Content-Length must never reach it. Malformed request lines and
// headers are left to Pistache's parser.
struct HeadCheck {
  Status status;
  bool expect_continue = false;
};

HeadCheck CheckHead(const ServerOptions& options, std::string_view head) {
  HeadCheck check;
  const size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const size_t sp1 = request_line.find(' ');
  const std::string_view method = request_line.substr(0, sp1);
  std::string_view target =
      sp1 == std::string_view::npos ? std::string_view() : request_line.substr(sp1 + 1);
  target = target.substr(0, target.find_first_of(" ?"));
  const bool upload = method == "POST" && target == "/v1/documents";

  std::optional<std::string_view> length;
  size_t pos = line_end;
  while (pos != std::string_view::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string_view line = head.substr(pos + 2, next == head.npos ? next : next - pos - 2);
    pos = next;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    const std::string_view name = line.substr(0, colon);
    if (EqualsIgnoreCase(name, "content-length")) {
      if (length && *length != value) {
        check.status = InvalidArgument("conflicting Content-Length headers");
        return check;
      }
      length = value;
    } else if (EqualsIgnoreCase(name, "expect")) {
      check.expect_continue = EqualsIgnoreCase(value, "100-continue");
    }
  }
  if (!length) return check;
  bool digits = !length->empty() && length->size() <= 18;
  int64_t n = 0;
  for (char c : *length) {
    if (c < '0' || c > '9') digits = false;
    if (digits) n = n * 10 + (c - '0');
  }
  if (!digits) {
    check.status = InvalidArgument("malformed Content-Length header");
  } else if (n > BodyLimit(options, upload)) {
    check.status =
        ResourceExhausted("request body of " + std::to_string(n) + " bytes is over the limit of " +
                          std::to_string(BodyLimit(options, upload)) + " bytes for this route");
  }
  return check;
}

bool WantsClose(const Http::Request& request) {
  const std::string connection = Lower(HeaderValue(request, "Connection").value_or(""));
  if (connection.find("close") != std::string::npos) return true;
  return request.version() == Http::Version::Http10 &&
         connection.find("keep-alive") == std::string::npos;
}

}  // namespace

struct ApiHandler::Connection {
  size_t request_bytes = 0;   // bytes of the request being received so far
  std::string head;           // its request line and headers while they are incomplete
  bool head_checked = false;  // CheckHead passed (and 100-continue was sent) for this request
  bool closing = false;       // an error was answered: discard input until the peer closes
  std::chrono::steady_clock::time_point start;
};

ApiHandler::Connection& ApiHandler::ConnectionOf(const std::shared_ptr<Tcp::Peer>& peer) {
  std::shared_ptr<void> data = peer->tryGetData(kConnectionKey);
  if (!data) {
    data = std::make_shared<Connection>();
    peer->putData(kConnectionKey, data);
  }
  return *std::static_pointer_cast<Connection>(data);
}

void ApiHandler::onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) {
  Connection* conn = nullptr;
  try {
    conn = &ConnectionOf(peer);
  } catch (const std::exception& e) {
    RAG_LOG(ERROR) << "http: no connection state: " << e.what();
    return;
  }
  if (conn->closing) return;
  const auto now = std::chrono::steady_clock::now();
  if (conn->request_bytes == 0) conn->start = now;
  conn->request_bytes += len;
  // The request's deadlines, checked here as well as by Pistache's idle-peer timer (every 500 ms
  // on the connection's thread, which once let two of 40 dribbling clients finish their headers
  // after 13 s of a 3 s limit on a loaded machine): a client that keeps sending is cut at its
  // first byte past the deadline; one that goes silent is left to the timer.
  const int limit_s = conn->head_checked ? ctx_->options.body_timeout_s : ctx_->options.header_timeout_s;
  if (limit_s > 0 && now - conn->start > std::chrono::seconds(limit_s)) {
    Reject(peer, *conn, 408,
           InvalidArgument(std::string("the request's ") + (conn->head_checked ? "body" : "headers") +
                           " did not arrive within " + std::to_string(limit_s) + " s"),
           "request_timeout");
    return;
  }
  if (!conn->head_checked) {
    const size_t room = kMaxHeaderBytes + 4 - conn->head.size();
    conn->head.append(buffer, std::min(len, room));
    const size_t head_end = conn->head.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (conn->head.size() > kMaxHeaderBytes) {
        Reject(peer, *conn, 431,
               InvalidArgument("request line and headers are over " +
                               std::to_string(kMaxHeaderBytes) + " bytes"),
               "headers_too_large");
        return;
      }
    } else {
      const HeadCheck check =
          CheckHead(ctx_->options, std::string_view(conn->head).substr(0, head_end));
      conn->head.clear();
      conn->head_checked = true;
      if (!check.status.ok()) {
        Reject(peer, *conn, HttpCodeFor(check.status), check.status);
        return;
      }
      if (check.expect_continue) {
        // Written directly, as every response is (Send), so that it cannot come after the
        // final response of a client that sent its body without waiting.
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        [[maybe_unused]] ssize_t n =
            ::send(peer->fd(), kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    }
  }
  std::shared_ptr<Http::RequestParser> parser = getParser(peer);
  try {
    if (!parser->feed(buffer, len)) {
      Reject(peer, *conn, 413, ResourceExhausted("request is over the server's size limit"));
      return;
    }
    if (parser->parse() != Http::Private::State::Done) {
      // Bodies without Content-Length (chunked) are measured as they come.
      if (parser->step()->id() == Http::Private::BodyStep::Id) {
        const int64_t limit = BodyLimit(ctx_->options, IsUpload(parser->request));
        if (static_cast<int64_t>(conn->request_bytes) > limit + int64_t{kMaxHeaderBytes}) {
          Reject(peer, *conn, 413, ResourceExhausted(OverLimit(limit)));
        }
      }
      return;
    }

    Http::Request& request = parser->request;
    const int64_t limit = BodyLimit(ctx_->options, IsUpload(request));
    if (static_cast<int64_t>(request.body().size()) > limit) {
      Reject(peer, *conn, 413, ResourceExhausted(OverLimit(limit)));
      return;
    }
    const auto start = conn->start;
    conn->request_bytes = 0;
    conn->head_checked = false;
    request.copyAddress(peer->address());
    Http::ResponseWriter writer(request.version(), transport(), this, peer);
    peer->setIdle(false);
    Dispatch(request, std::move(writer), peer, start);
    parser->reset();
  } catch (const Http::HttpError& e) {
    const int code = e.code() >= 400 && e.code() < 600 ? e.code() : 400;
    Reject(peer, *conn, code, InvalidArgument("malformed HTTP request: " + e.reason()),
           code == 400 ? "" : "unsupported_request");
  } catch (const std::exception& e) {
    Reject(peer, *conn, 400, InvalidArgument(std::string("malformed HTTP request: ") + e.what()));
  }
}

void ApiHandler::onRequest(const Http::Request& request, Http::ResponseWriter response) {
  // Only reached if Pistache calls it directly (onInput above dispatches itself).
  std::shared_ptr<Tcp::Peer> peer = response.getPeer();
  Dispatch(request, std::move(response), peer, std::chrono::steady_clock::now());
}

void ApiHandler::Reject(const std::shared_ptr<Tcp::Peer>& peer, Connection& conn, int http_status,
                        const Status& status, const std::string& code) {
  conn.closing = true;
  std::shared_ptr<Http::RequestParser> parser = getParser(peer);
  // The request may be half parsed: its method and path are only a hint for the log.
  LogRequest(
      ctx_->metrics,
      parser->request.resource().empty() ? "-" : Http::methodString(parser->request.method()),
      parser->request.resource(), http_status, conn.start);
  try {
    Http::ResponseWriter writer(Http::Version::Http11, transport(), this, peer);
    Send(std::move(writer), ErrorReply(http_status, status, code), /*close=*/true, peer,
         std::make_shared<InFlight>(ctx_));
  } catch (const std::exception& e) {
    RAG_LOG(WARN) << "http: could not answer a rejected request: " << e.what();
  }
  parser->reset();
}

void ApiHandler::Dispatch(const Http::Request& request, Http::ResponseWriter writer,
                          const std::shared_ptr<Tcp::Peer>& peer,
                          std::chrono::steady_clock::time_point start) {
  auto token = std::make_shared<InFlight>(ctx_);
  int status = 500;
  std::string caller;
  bool logged = false;
  try {
    const bool draining = ctx_->draining.load();
    const bool close = draining || WantsClose(request);
    HttpReply reply =
        draining ? ErrorReply(Unavailable("the server is shutting down")) : Route(*ctx_, request);
    caller = reply.caller;
    if (reply.later || reply.stream) {
      (void)writer;  // the answer thread writes the response on its own descriptor
      Defer(std::move(reply), request, peer, start, token);
      logged = true;  // by the answer thread
    } else {
      status = reply.status;
      // Logged (and counted in /metrics) before the client can have the response and ask again.
      LogRequest(ctx_->metrics, Http::methodString(request.method()), request.resource(), status,
                 start, caller);
      logged = true;
      Send(std::move(writer), reply, close, peer, token);
    }
  } catch (const std::exception& e) {
    RAG_LOG(ERROR) << "http: could not answer: " << e.what();
  } catch (...) {
    RAG_LOG(ERROR) << "http: could not answer: unknown exception";
  }
  if (!logged) {
    LogRequest(ctx_->metrics, Http::methodString(request.method()), request.resource(), status,
               start, caller);
  }
}

void ApiHandler::Defer(HttpReply reply, const Http::Request& request,
                       const std::shared_ptr<Tcp::Peer>& peer,
                       std::chrono::steady_clock::time_point start, std::shared_ptr<void> in_flight) {
  Connection& conn = ConnectionOf(peer);
  // Whatever happens next, this connection ends with this request's response: Pistache must
  // neither parse further input of it nor write to it (its header timer would write a 408 into
  // the answer: the keep-alive timer, which only closes Pistache's descriptor, applies instead).
  conn.closing = true;
  peer->setIdle(true);
  auto method = std::string(Http::methodString(request.method()));
  std::string resource = request.resource(), caller = reply.caller;
  auto answer_now = [&](const HttpReply& error) {
    LogRequest(ctx_->metrics, method.c_str(), resource, error.status, start, caller);
    Send(Http::ResponseWriter(request.version(), transport(), this, peer), error, /*close=*/true,
         peer, in_flight);
  };
  if (ctx_->answers_running.fetch_add(1) >= ctx_->options.max_answers) {
    ctx_->answers_running.fetch_sub(1);
    return answer_now(BusyReply(ResourceExhausted(std::to_string(ctx_->options.max_answers) +
                                                  " answers are being made; try again shortly"),
                                /*retry_after_s=*/5, "too_many_answers"));
  }
  // Our own descriptor of the socket: Pistache may close its own (the client hangs up, its
  // keep-alive timer) and reuse the number for another connection meanwhile.
  const int fd = ::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    ctx_->answers_running.fetch_sub(1);
    return answer_now(ErrorReply(Unavailable("the server is out of file descriptors")));
  }
  ctx_->answers->Submit([ctx = ctx_, fd, reply = std::move(reply), method = std::move(method),
                         resource = std::move(resource), caller = std::move(caller), start,
                         in_flight = std::move(in_flight)]() mutable {
    try {
      if (reply.stream) {
        SseWriter sse(fd, std::chrono::seconds(ctx->options.send_stall_timeout_s));  // owns fd
        const int status = reply.stream(sse);
        LogRequest(ctx->metrics, method.c_str(), resource, status, start, caller);
      } else {
        HttpReply answer;
        try {
          answer = reply.later([&ctx, fd] { return !ctx->draining.load() && !SocketGone(fd, /*eof_is_gone=*/true); });
        } catch (const std::exception& e) {
          answer = ErrorReply(Internal(std::string("the answer failed: ") + e.what()));
        }
        LogRequest(ctx->metrics, method.c_str(), resource, answer.status, start, caller);
        ctx->sender.Send(fd, WireResponse(answer, /*close=*/true), /*close=*/true, [in_flight](bool) {});
        ::close(fd);  // the sender keeps a duplicate for what it has still to write
      }
    } catch (const std::exception& e) {
      RAG_LOG(ERROR) << "http: could not answer " << method << " " << resource << ": " << e.what();
    }
    ctx->answers_running.fetch_sub(1);
  });
}

void ApiHandler::Send(Http::ResponseWriter writer, const HttpReply& reply, bool close,
                      const std::shared_ptr<Tcp::Peer>& peer, std::shared_ptr<void> in_flight) {
  // Not through Pistache's writer, whose transport spins on a client that does not read
  // (response_sender.h): the same bytes it would write, put on the wire by ctx_->sender. When
  // written, a half-close ends a closing connection cleanly (the client reads the response and
  // then EOF; its unread upload bytes are drained, not answered with a reset).
  (void)writer;  // never sent: destroying it unsent writes nothing
  peer->setIdle(true);  // as Pistache's send does: the keep-alive timeout applies again
  const bool sent_now =
      ctx_->sender.Send(peer->fd(), WireResponse(reply, close), close, [in_flight](bool) {});
  // The rest goes out from the sender's thread: this connection takes no further request.
  if (!sent_now) ConnectionOf(peer).closing = true;
}

}  // namespace rag
