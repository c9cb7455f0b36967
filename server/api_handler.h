// The Pistache handler of the HTTP server (internal to server/).
//
// It replaces Http::Handler::onInput (a private virtual of Pistache, which C++ lets a subclass
// override) with the same framing over Pistache's own request parser, so that:
//  - every error is the API's JSON, including malformed requests, which Pistache would answer
//    in plain text;
//  - body limits are checked on the raw headers, before Pistache's parser sees them
//    (Content-Length against the route's limit: max_body_bytes for uploads, max_json_bytes
//    elsewhere; Pistache would reserve memory for any declared length), and an `Expect:
//    100-continue` within the limit is answered, so curl does not wait a second per upload;
//  - request line and headers are limited to 64 KiB (431);
//  - after an error answer the connection is half-closed and its further input discarded
//    (Pistache would parse the rest of a rejected upload as new requests); a client's
//    `Connection: close` (or HTTP/1.0 without keep-alive) is honoured the same way.
// Everything here runs on the connection's transport thread, one request at a time, except the
// answers a handler defers (HttpReply::later and ::stream): Defer runs them on the answer
// threads, which write their response on their own duplicate of the socket's descriptor.
#pragma once

#include <pistache/http.h>
#include <pistache/peer.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/http_internal.h"

namespace rag {

class ApiHandler : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(ApiHandler)

  explicit ApiHandler(std::shared_ptr<ServerContext> ctx) : ctx_(std::move(ctx)) {}

  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;
  void onRequest(const Pistache::Http::Request& request,
                 Pistache::Http::ResponseWriter response) override;

  // Bytes allowed for the request line and headers of one request.
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;

 private:
  struct Connection;
  static Connection& ConnectionOf(const std::shared_ptr<Pistache::Tcp::Peer>& peer);

  // Answers an error that ends the connection: the response, then a half-close.
  void Reject(const std::shared_ptr<Pistache::Tcp::Peer>& peer, Connection& conn, int http_status,
              const Status& status, const std::string& code = "");
  // Routes a complete request and answers it; never throws.
  void Dispatch(const Pistache::Http::Request& request, Pistache::Http::ResponseWriter writer,
                const std::shared_ptr<Pistache::Tcp::Peer>& peer,
                std::chrono::steady_clock::time_point start);
  // Runs reply.later or reply.stream on an answer thread (429 when max_answers are running),
  // which writes the response, logs the request and ends the connection.
  void Defer(HttpReply reply, const Pistache::Http::Request& request,
             const std::shared_ptr<Pistache::Tcp::Peer>& peer,
             std::chrono::steady_clock::time_point start, std::shared_ptr<void> in_flight);
  // Sends reply; with `close`, half-closes the connection once the response is written.
  // in_flight is released when Pistache has written or dropped the response.
  void Send(Pistache::Http::ResponseWriter writer, const HttpReply& reply, bool close,
            const std::shared_ptr<Pistache::Tcp::Peer>& peer, std::shared_ptr<void> in_flight);

  std::shared_ptr<ServerContext> ctx_;
};

}  // namespace rag
