// Writes HTTP responses to client sockets without ever spinning on a client that does not read
// (internal to server/).
//
// Why: Pistache 0.0.5 retries a write that would block at once, in a loop, on the connection's
// event-loop thread until the socket drains (Transport::asyncWriteImpl; pistache issue 949). A
// client that asks for a large response and does not read it therefore pins one HTTP thread at
// 100% CPU for as long as it stays connected, and the other connections of that thread wait:
// measured, one 20 MB `GET /v1/documents/{id}/file` left unread kept a core busy, and 30 of them
// made the server answer nothing else (and hold 1.2 GB). So the server puts every non-streamed
// response on the wire itself: Send writes as much as the socket takes at once, on the calling
// thread (all of it, for a client that reads: the usual case); the rest goes to this object's
// thread, which polls the sockets it holds and writes as they drain, and gives up on a client
// that takes no byte for stall_timeout (its connection is shut down). A connection whose
// response went to the thread takes no further request (the caller closes it after).
//
// Thread-safety: Send may be called from any thread; Stop from one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace rag {

// Writes what the non-blocking socket `fd` takes now (never SIGPIPE): the bytes written, or -1
// on an error other than "would block".
ssize_t WriteAvailable(int fd, std::string_view data);

class ResponseSender {
 public:
  // done(written): called once per Send, with true when every byte went out.
  using DoneFn = std::function<void(bool written)>;

  ResponseSender(std::chrono::milliseconds stall_timeout, size_t max_pending_bytes);
  ~ResponseSender();  // Stop()
  ResponseSender(const ResponseSender&) = delete;
  ResponseSender& operator=(const ResponseSender&) = delete;

  // Writes `data` to the non-blocking socket `fd`. When the socket takes it all now, shuts its
  // writing side down if `close` and calls done(true) before returning true. Otherwise keeps
  // the rest (and a duplicate of fd, so that the socket outlives the caller's descriptor) for
  // its thread, which shuts the writing side down when done, and returns false: the caller must
  // not write to this connection again. A failed write, or a backlog over max_pending_bytes,
  // shuts the connection down and calls done(false).
  bool Send(int fd, std::string data, bool close, DoneFn done);

  // Stops the thread; pending writes are abandoned (their connections shut down, done(false)).
  void Stop();

  size_t pending_bytes() const;

 private:
  struct Pending {
    int fd = -1;  // our duplicate
    std::string data;
    size_t offset = 0;
    std::chrono::steady_clock::time_point last_progress;
    DoneFn done;
  };
  void Run();
  static void Finish(Pending& p, bool written);

  const std::chrono::milliseconds stall_timeout_;
  const size_t max_pending_bytes_;
  mutable std::mutex mu_;
  std::deque<Pending> incoming_;  // handed over by Send, not yet taken by the thread
  size_t pending_bytes_ = 0;      // bytes left in incoming_ and in the thread's set
  bool stopping_ = false;
  int wake_fd_ = -1;  // eventfd: wakes the thread's poll for new work or Stop
  std::thread thread_;
};

}  // namespace rag
