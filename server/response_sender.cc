#include "server/response_sender.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/logging.h"

namespace rag {
ssize_t WriteAvailable(int fd, std::string_view data) {
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::send(fd, data.data() + written, data.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      written += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  return static_cast<ssize_t>(written);
}

ResponseSender::ResponseSender(std::chrono::milliseconds stall_timeout, size_t max_pending_bytes)
    : stall_timeout_(stall_timeout), max_pending_bytes_(max_pending_bytes) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

ResponseSender::~ResponseSender() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ResponseSender::Finish(Pending& p, bool written) {
  ::shutdown(p.fd, written ? SHUT_WR : SHUT_RDWR);
  ::close(p.fd);
  p.fd = -1;
  if (p.done) p.done(written);
}

bool ResponseSender::Send(int fd, std::string data, bool close, DoneFn done) {
  const ssize_t n = WriteAvailable(fd, data);
  if (n >= 0 && static_cast<size_t>(n) == data.size()) {
    if (close) ::shutdown(fd, SHUT_WR);
    if (done) done(true);
    return true;
  }
  if (n < 0) {  // the client is gone (reset, closed)
    ::shutdown(fd, SHUT_RDWR);
    if (done) done(false);
    return false;
  }
  Pending p;
  p.data = std::move(data);
  p.offset = static_cast<size_t>(n);
  p.last_progress = std::chrono::steady_clock::now();
  p.done = std::move(done);
  const size_t left = p.data.size() - p.offset;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && pending_bytes_ + left <= max_pending_bytes_) {
      p.fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (p.fd >= 0) {
        pending_bytes_ += left;
        incoming_.push_back(std::move(p));
        queued = true;
      }
    }
  }
  if (queued) {  // wake the thread
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof(one));
    return false;
  }
  // No room for more slow clients (or shutting down): drop this one.
  RAG_LOG(WARN) << "http: a client that does not read its response was disconnected ("
                << left << " bytes unsent)";
  ::shutdown(fd, SHUT_RDWR);
  if (p.done) p.done(false);
  return false;
}

size_t ResponseSender::pending_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_bytes_;
}

void ResponseSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void ResponseSender::Run() {
  std::vector<Pending> active;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!incoming_.empty()) {
        active.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
      if (stopping_) break;
    }
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    for (const Pending& p : active) fds.push_back(pollfd{p.fd, POLLOUT, 0});
    ::poll(fds.data(), fds.size(), 200);
    if (fds[0].revents & POLLIN) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof(value));
    }
    const auto now = std::chrono::steady_clock::now();
    size_t freed = 0;
    for (size_t i = 0; i < active.size();) {
      Pending& p = active[i];
      const short revents = fds[i + 1].revents;
      bool finished = false, written = false;
      if (revents & (POLLOUT | POLLERR | POLLHUP)) {
        const ssize_t n = WriteAvailable(p.fd, std::string_view(p.data).substr(p.offset));
        if (n < 0) {
          finished = true;
        } else if (n > 0) {
          p.offset += static_cast<size_t>(n);
          freed += static_cast<size_t>(n);
          p.last_progress = now;
          if (p.offset == p.data.size()) finished = written = true;
        }
      }
      if (!finished && now - p.last_progress > stall_timeout_) {
        RAG_LOG(WARN) << "http: a client took no byte of its response for "
                      << stall_timeout_.count() / 1000 << " s; disconnected";
        finished = true;
      }
      if (finished) {
        freed += p.data.size() - p.offset;
        Finish(p, written);
        // fds[i + 1] belongs to this entry: keep fds and active in step.
        active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
        fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      } else {
        ++i;
      }
    }
    if (freed > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_bytes_ -= freed;
    }
  }
  // Stopping: abandon what is left.
  std::deque<Pending> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(incoming_);
    pending_bytes_ = 0;
  }
  for (Pending& p : active) Finish(p, false);
  for (Pending& p : rest) Finish(p, false);
}

}  // namespace rag
