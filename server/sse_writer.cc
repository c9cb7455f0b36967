#include "server/sse_writer.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/logging.h"
#include "server/response_sender.h"

namespace rag {

SseWriter::SseWriter(int fd, std::chrono::milliseconds stall_timeout)
    : fd_(fd), stall_timeout_(stall_timeout) {}

SseWriter::~SseWriter() {
  End();
  if (fd_ < 0) return;
  // The client reads the end of the body, then EOF; further input of its is discarded.
  ::shutdown(fd_, SHUT_WR);
  ::close(fd_);
}

bool SseWriter::Write(std::string_view bytes) {
  auto last_progress = std::chrono::steady_clock::now();
  while (!bytes.empty() && !failed_) {
    const ssize_t n = WriteAvailable(fd_, bytes);
    if (n < 0) {
      RAG_LOG(DEBUG) << "sse: write failed (client gone?): errno " << errno;
      failed_ = true;
      break;
    }
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      last_progress = std::chrono::steady_clock::now();
      continue;
    }
    // The socket is full: wait for room, up to the stall timeout since the last byte went out.
    const auto waited = std::chrono::steady_clock::now() - last_progress;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(stall_timeout_ - waited);
    if (left.count() <= 0) {
      RAG_LOG(INFO) << "sse: the client took no byte for " << stall_timeout_.count() / 1000
                    << " s; stream closed";
      failed_ = true;
      break;
    }
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
  }
  return !failed_;
}

bool SseWriter::Send(std::string_view event, std::string_view data) {
  if (failed_ || ended_) return false;
  std::string frame;
  if (!started_) {
    started_ = true;
    frame =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
  }
  std::string event_text;
  event_text.reserve(event.size() + data.size() + 16);
  if (!event.empty()) event_text.append("event: ").append(event).append("\n");
  event_text.append("data: ").append(data).append("\n\n");
  char size_line[24];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", event_text.size());
  frame.append(size_line).append(event_text).append("\r\n");
  return Write(frame);
}

void SseWriter::End() {
  if (ended_) return;
  ended_ = true;
  if (failed_ || !started_) return;
  Write("0\r\n\r\n");
}

bool SocketGone(int fd, bool eof_is_gone) {
  // POLLERR and POLLHUP are always reported; POLLRDHUP is the client's FIN.
  pollfd p{fd, static_cast<short>(eof_is_gone ? POLLRDHUP : 0), 0};
  const short gone = static_cast<short>(POLLERR | POLLHUP | POLLNVAL | (eof_is_gone ? POLLRDHUP : 0));
  return ::poll(&p, 1, 0) > 0 && (p.revents & gone) != 0;
}

bool SseWriter::ClientGone() const { return SocketGone(fd_); }

}  // namespace rag
