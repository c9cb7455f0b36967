// Server-sent events (text/event-stream, a chunked HTTP/1.1 body) written straight to a client's
// socket from an answer thread (internal to server/).
//
// Why not Pistache's ResponseStream: it may only be used on the connection's transport thread
// (its flush drains the transport's single-consumer write queue; pistache issues 1006, 1007,
// 1290, fixed upstream after Debian's 0.0.5), so a streamed answer used to hold an HTTP thread
// for its whole length, and the other connections of that thread waited. The answer threads
// (answer_pool.h) write instead to their own duplicate of the socket's descriptor: Pistache's
// transport never writes to a connection whose answer went to an answer thread (ApiHandler
// marks it closing), and closing its own descriptor (a client hang-up, its keep-alive timer)
// leaves ours valid, so the two never share a write and a reused descriptor number never
// receives our bytes.
//
// Writes never block for long: the socket is non-blocking, and a client that takes no byte for
// `stall_timeout` fails the stream (as ResponseSender does for ordinary responses). Every
// response says `Connection: close`; the destructor ends the body, half-closes the socket and
// closes the descriptor. Thread-safety: one thread uses an SseWriter at a time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace rag {

// True once the client's side of the socket `fd` is gone: reset, or closed and a write bounced;
// with `eof_is_gone` also once the client closed its sending side (what a client that gives up
// on a response it awaits does; while its answer is being written, a client that half-closes
// still reads it, so a stream counts only resets and bounced writes).
bool SocketGone(int fd, bool eof_is_gone = false);

class SseWriter {
 public:
  // Takes ownership of `fd` (a duplicate of the connection's socket).
  SseWriter(int fd, std::chrono::milliseconds stall_timeout);
  ~SseWriter();
  SseWriter(const SseWriter&) = delete;
  SseWriter& operator=(const SseWriter&) = delete;

  // Sends one event whose data is one line (JSON text has no raw newlines); an empty `event`
  // sends the data line alone (the unnamed events of OpenAI's streams). The status line and
  // headers (200, event stream, not cached, not buffered by proxies) go out with the first
  // event. Returns false once a write has failed; every later call then does nothing.
  bool Send(std::string_view event, std::string_view data);
  // Ends the chunked body (the zero-length chunk). Idempotent.
  void End();
  bool failed() const { return failed_; }
  bool started() const { return started_; }  // the status line is out
  // True once the client's side of the connection is gone (reset, or closed and a write
  // bounced): a hang-up cancels the answer before its next token is written. A client that
  // only half-closes is not gone.
  bool ClientGone() const;

 private:
  bool Write(std::string_view bytes);  // all of it, or failed_

  int fd_;
  std::chrono::milliseconds stall_timeout_;
  bool started_ = false;
  bool failed_ = false;
  bool ended_ = false;
};

}  // namespace rag
