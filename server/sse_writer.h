// Server-sent events (text/event-stream) over a Pistache ResponseStream, i.e. a chunked body.
//
// How it meets the Pistache 0.0.5 pitfalls of DESIGN.md section 7: each event is one
// ResponseStream::write(data, n) followed by `stream << Http::flush` (chaining operator<< with
// the member flush() broke streams in a probe); every write and flush is inside try/catch,
// because a write to a peer that is gone throws "Write failed: Broken pipe", and an escaping
// exception would terminate the server; Pistache sends with MSG_NOSIGNAL and RunServer ignores
// SIGPIPE, so a closed socket is an error code, never a signal. A client that hangs up
// mid-stream costs nothing but the rest of the (discarded) events.
//
// Thread-safety: use an SseWriter only on the HTTP thread that runs the request's handler.
// ResponseStream::flush() drains the transport's write queue on the calling thread; from any
// other thread it races with the transport's own thread on a single-consumer queue and on the
// peer table (pistache issues 1006, 1007, 1290; fixed upstream in 2025, after Debian's 0.0.5).
#pragma once

#include <pistache/http.h>

#include <string_view>

namespace rag {

class SseWriter {
 public:
  explicit SseWriter(Pistache::Http::ResponseStream stream);

  // Sends one event whose data is one line (JSON text has no raw newlines); an empty `event`
  // sends the data line alone (the unnamed events of OpenAI's streams). Returns false once a
  // write has failed; every later call then does nothing.
  bool Send(std::string_view event, std::string_view data);
  // Ends the chunked body (the zero-length chunk). Idempotent.
  void End();
  bool failed() const { return failed_; }

 private:
  Pistache::Http::ResponseStream stream_;
  bool failed_ = false;
  bool ended_ = false;
};

}  // namespace rag
