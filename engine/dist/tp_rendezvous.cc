// The rendezvous over POSIX TCP sockets (IPv4). Sockets stay blocking; every wait that has a
// deadline goes through poll() first, so Host and Join never wait past their timeout, while
// SendToFollowers and Receive block as long as the group lives (a step may take any time).
//
// Rank 0 answers the followers only once all of them have said hello, so Join returning means
// the whole group exists (the unique id is of no use to a group that will never be complete).
// When rank 0 fails (a follower refused, the timeout) every follower still connected is told
// why, so no Join is left to find out by its own timeout.
//
// A TpRendezvous is used by one thread at a time.
#include "engine/dist/tp_rendezvous.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "common/logging.h"

namespace rag {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 30;
constexpr std::string_view kHelloMagic = "rag-tp 1";
constexpr std::string_view kOk = "ok\n";
constexpr std::string_view kError = "error\n";
// Between attempts to reach a rank 0 that is not listening yet.
constexpr auto kConnectRetry = std::chrono::milliseconds(100);
// Untrusted text quoted in an error stays one short line.
constexpr size_t kQuoteLimit = 160;

std::string ErrnoText(int err) { return std::system_category().message(err); }

// Owns one file descriptor.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Socket() { Close(); }

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  // close() is not retried on EINTR: on Linux the descriptor is gone either way.
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

std::string AddressText(const TpAddress& a) {
  return (a.host.empty() ? std::string("0.0.0.0") : a.host) + ":" + std::to_string(a.port);
}

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// `text` as a short printable quotation (it may come from any peer).
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kQuoteLimit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  out += text.size() > kQuoteLimit ? "...\"" : "\"";
  return out;
}

// Parses all of `text` as a decimal int (no sign, spaces or leftovers).
bool ParseInt(std::string_view text, int* value) {
  if (text.empty() || text.front() == '-' || text.front() == '+') return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

// --- waiting and whole reads / writes ------------------------------------------------------

// Waits until `fd` has one of `events` or `deadline` passes (Clock::time_point::max(): no
// deadline). False on the deadline; true otherwise, also on errors and hang-ups, which the
// following call on the socket reports. A socket already ready at the deadline counts as ready
// (it is polled once more without waiting), so a late check still sees what has arrived.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return true;
  while (true) {
    const auto left = deadline - Clock::now();
    // Rounded up: a wait that ends before the deadline would only loop again.
    const int64_t ms =
        std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count());
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (n > 0 || (n < 0 && errno != EINTR)) return true;
    if (n == 0 && ms == 0) return false;
  }
}

// Errors read as the end of a sentence whose subject is the peer ("rank 0 closed ...").
Status ReadAll(int fd, char* data, size_t size, Clock::time_point deadline, bool at_boundary) {
  size_t done = 0;
  while (done < size) {
    if (!WaitFor(fd, POLLIN, deadline)) return Unavailable("sent nothing in time");
    const ssize_t n = ::recv(fd, data + done, size - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      return Unavailable(done == 0 && at_boundary
                             ? "closed the connection"
                             : "closed the connection in the middle of a message");
    } else if (errno != EINTR) {
      return Unavailable("broke the connection (recv: " + ErrnoText(errno) + ")");
    }
  }
  return Status::Ok();
}

// MSG_NOSIGNAL: a closed peer is an error here, not a SIGPIPE that ends the process.
Status WriteAll(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      return Unavailable("broke the connection (send: " + ErrnoText(errno) + ")");
    }
  }
  return Status::Ok();
}

Status SendMessage(int fd, std::string_view message) {
  char header[8];
  const uint64_t size = message.size();
  for (int i = 0; i < 8; ++i) header[i] = static_cast<char>(size >> (8 * i));
  RAG_RETURN_IF_ERROR(WriteAll(fd, header, sizeof(header)));
  return WriteAll(fd, message.data(), message.size());
}

StatusOr<std::string> ReadMessage(int fd, Clock::time_point deadline) {
  unsigned char header[8];
  RAG_RETURN_IF_ERROR(ReadAll(fd, reinterpret_cast<char*>(header), sizeof(header), deadline,
                              /*at_boundary=*/true));
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= uint64_t{header[i]} << (8 * i);
  if (size > kMaxMessageBytes) {
    return InvalidArgument("announced a message of " + std::to_string(size) +
                           " bytes, over the 1 GiB limit (not a rag-tp peer?)");
  }
  std::string message(size, '\0');
  RAG_RETURN_IF_ERROR(ReadAll(fd, message.data(), size, deadline, /*at_boundary=*/false));
  return message;
}

// `status` with `who` as the subject of its message.
Status About(const std::string& who, const Status& status) {
  return Status(status.code(), who + " " + status.message());
}

// --- connections ---------------------------------------------------------------------------

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// IPv4 addresses of `address`; `passive` with an empty host means every interface.
StatusOr<AddrInfoPtr> Resolve(const TpAddress& address, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const std::string port = std::to_string(address.port);
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(),
                               &hints, &found);
  if (rc != 0) {
    return InvalidArgument("cannot resolve " + AddressText(address) + ": " + ::gai_strerror(rc));
  }
  return AddrInfoPtr(found);
}

// Steps are small and latency-bound: no Nagle delay.
void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void SetBlocking(int fd, bool blocking) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

// The listener is non-blocking so that a connection withdrawn between poll() and accept() costs
// a loop, not a hang.
StatusOr<Socket> Listen(const TpAddress& address) {
  RAG_ASSIGN_OR_RETURN(AddrInfoPtr found, Resolve(address, /*passive=*/true));
  const addrinfo* a = found.get();
  Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return Internal("socket: " + ErrnoText(errno));
  // A restarted rank 0 can listen again while the old connections linger in TIME_WAIT.
  const int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(s.fd(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(s.fd(), SOMAXCONN) != 0) {
    return Unavailable("tensor parallel rendezvous: cannot listen on " + AddressText(address) +
                       ": " + ErrnoText(errno));
  }
  return s;
}

// Linux lets a connect to a local port nobody listens on pick that very port as its own and
// connect the socket to itself (TCP simultaneous open); for us that is "nobody listens".
bool ConnectedToItself(int fd) {
  sockaddr_in self{}, peer{};
  socklen_t self_len = sizeof(self), peer_len = sizeof(peer);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    return false;
  }
  return self.sin_port == peer.sin_port && self.sin_addr.s_addr == peer.sin_addr.s_addr;
}

// One attempt, bounded by `deadline` (a connect to an unreachable host may otherwise take
// minutes). The message says why it failed, for the caller's final error.
StatusOr<Socket> ConnectOnce(const TpAddress& address, Clock::time_point deadline) {
  RAG_ASSIGN_OR_RETURN(AddrInfoPtr found, Resolve(address, /*passive=*/false));
  const addrinfo* a = found.get();
  Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return Internal("socket: " + ErrnoText(errno));
  int err = 0;
  if (::connect(s.fd(), a->ai_addr, a->ai_addrlen) != 0) err = errno;
  if (err == EINPROGRESS || err == EINTR) {
    if (!WaitFor(s.fd(), POLLOUT, deadline)) return Unavailable("connect timed out");
    socklen_t len = sizeof(err);
    ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err != 0) return Unavailable(ErrnoText(err));
  if (ConnectedToItself(s.fd())) return Unavailable(ErrnoText(ECONNREFUSED));
  SetBlocking(s.fd(), true);
  SetNoDelay(s.fd());
  return s;
}

StatusOr<Socket> ConnectRetrying(const TpAddress& address, Clock::time_point deadline,
                                 std::chrono::milliseconds timeout) {
  while (true) {
    StatusOr<Socket> s = ConnectOnce(address, deadline);
    if (s.ok()) return s;
    const auto now = Clock::now();
    if (now >= deadline) {
      return Unavailable("tensor parallel rendezvous: could not reach rank 0 at " +
                         AddressText(address) + " within " + Millis(timeout) + " (" +
                         s.status().message() + ")");
    }
    std::this_thread::sleep_until(std::min(now + kConnectRetry, deadline));
  }
}

// --- hello and its checks ------------------------------------------------------------------

struct Hello {
  int rank = 0;
  int world = 0;
  std::string settings;
};

// "rag-tp 1\n<rank>\n<world>\n<settings>": the settings are the rest, newlines and all.
std::string EncodeHello(int rank, int world, const std::string& settings) {
  return std::string(kHelloMagic) + "\n" + std::to_string(rank) + "\n" + std::to_string(world) +
         "\n" + settings;
}

// The text of `*rest` up to the next '\n' (or its end), which is consumed.
std::string_view TakeLine(std::string_view* rest) {
  const size_t end = std::min(rest->find('\n'), rest->size());
  const std::string_view line = rest->substr(0, end);
  rest->remove_prefix(std::min(end + 1, rest->size()));
  return line;
}

StatusOr<Hello> ParseHello(std::string_view rest) {
  const std::string_view magic = TakeLine(&rest);
  if (!magic.starts_with("rag-tp ")) {
    return InvalidArgument("a peer that is not a rag tensor-parallel rank connected (it said " +
                           Quote(magic) + ")");
  }
  if (magic != kHelloMagic) {
    return InvalidArgument("a follower speaks protocol " + Quote(magic) + ", rank 0 speaks " +
                           Quote(kHelloMagic));
  }
  Hello hello;
  if (!ParseInt(TakeLine(&rest), &hello.rank) || !ParseInt(TakeLine(&rest), &hello.world)) {
    return InvalidArgument("a follower sent a hello without a valid rank and world size");
  }
  hello.settings = std::string(rest);
  return hello;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (true) {
    const size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) return lines;
    text.remove_prefix(end + 1);
  }
}

// "" when equal; else names the first differing line (1-based) with both versions.
std::string SettingsDifference(const std::string& ours, const Hello& hello) {
  if (ours == hello.settings) return "";
  const auto a = Lines(ours), b = Lines(hello.settings);
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto line = [i](const std::vector<std::string_view>& lines) {
    return i < lines.size() ? Quote(lines[i]) : std::string("no such line");
  };
  const std::string r = "rank " + std::to_string(hello.rank);
  return r + "'s settings differ from rank 0's at line " + std::to_string(i + 1) + ": rank 0 has " +
         line(a) + ", " + r + " has " + line(b);
}

// --- rank 0's side -------------------------------------------------------------------------

// Rank 0 gathering its followers: accepts connections until every rank has said a valid hello,
// the deadline passes, or a hello is refused.
class Gathering {
 public:
  Gathering(Socket listener, int world, const std::string& settings, std::string where,
            std::chrono::milliseconds timeout)
      : listener_(std::move(listener)),
        world_(world),
        settings_(settings),
        where_(std::move(where)),
        timeout_(timeout),
        deadline_(Clock::now() + timeout),
        followers_(static_cast<size_t>(world)) {}

  // On failure every follower still connected gets "error" and the message.
  Status Run(const std::string& unique_id) {
    Status s = Gather();
    if (s.ok()) s = AnswerAll(std::string(kOk) + unique_id);
    if (!s.ok()) TellAll(std::string(kError) + s.message());
    return s;
  }

  // Followers' sockets in rank order 1 .. world-1, handed to the caller.
  std::vector<int> Release() {
    std::vector<int> fds;
    for (size_t r = 1; r < followers_.size(); ++r) fds.push_back(followers_[r].Release());
    return fds;
  }

 private:
  Status Gather() {
    while (joined_ < world_ - 1) RAG_RETURN_IF_ERROR(AcceptOne());
    return Status::Ok();
  }

  Status AcceptOne() {
    if (!WaitFor(listener_.fd(), POLLIN, deadline_)) return TimedOut();
    Socket conn(::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return Status::Ok();  // withdrawn, EINTR, ...: wait for the next one
    SetNoDelay(conn.fd());
    StatusOr<std::string> hello = ReadMessage(conn.fd(), deadline_);
    if (!hello.ok() && hello.status().code() == StatusCode::kInvalidArgument) {
      return Refuse(&conn, About("a peer", hello.status()).message());
    }
    if (!hello.ok()) {
      if (Clock::now() >= deadline_) return TimedOut();
      // A peer that hangs up before its hello (a port probe) is not one of the ranks.
      RAG_LOG(WARN) << "tensor parallel rendezvous on " << where_
                    << ": dropped a connection whose peer " << hello.status().message();
      return Status::Ok();
    }
    return Admit(std::move(conn), *hello);
  }

  Status Admit(Socket conn, const std::string& message) {
    StatusOr<Hello> hello = ParseHello(message);
    if (!hello.ok()) return Refuse(&conn, hello.status().message());
    const std::string reason = RefusalReason(*hello);
    if (!reason.empty()) return Refuse(&conn, reason);
    followers_[static_cast<size_t>(hello->rank)] = std::move(conn);
    ++joined_;
    return Status::Ok();
  }

  std::string RefusalReason(const Hello& h) const {
    const std::string r = "rank " + std::to_string(h.rank);
    if (h.world != world_) {
      return r + " says the world has " + std::to_string(h.world) + " ranks, rank 0 says " +
             std::to_string(world_);
    }
    if (h.rank < 1 || h.rank >= world_) {
      return r + " is out of range: a world of " + std::to_string(world_) + " has followers 1.." +
             std::to_string(world_ - 1);
    }
    if (followers_[static_cast<size_t>(h.rank)].valid()) return r + " joined twice";
    return SettingsDifference(settings_, h);
  }

  // The refused follower hears the reason itself; the others hear it from Run.
  Status Refuse(Socket* conn, const std::string& reason) {
    (void)SendMessage(conn->fd(), std::string(kError) + reason);
    return FailedPrecondition("tensor parallel rendezvous on " + where_ + ": " + reason);
  }

  Status TimedOut() const {
    std::string missing;
    for (int r = 1; r < world_; ++r) {
      if (followers_[static_cast<size_t>(r)].valid()) continue;
      missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    const bool several = missing.find(',') != std::string::npos;
    return Unavailable("tensor parallel rendezvous on " + where_ + ": timed out after " +
                       Millis(timeout_) + " waiting for rank" + (several ? "s " : " ") + missing);
  }

  Status AnswerAll(const std::string& answer) {
    for (int r = 1; r < world_; ++r) {
      Socket& s = followers_[static_cast<size_t>(r)];
      Status sent = SendMessage(s.fd(), answer);
      if (!sent.ok()) {
        s = Socket();
        return About("tensor parallel rendezvous on " + where_ + ": rank " + std::to_string(r),
                     sent);
      }
    }
    return Status::Ok();
  }

  void TellAll(const std::string& message) {
    for (Socket& s : followers_) {
      if (s.valid()) (void)SendMessage(s.fd(), message);
    }
  }

  Socket listener_;
  int world_;
  const std::string& settings_;
  std::string where_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  std::vector<Socket> followers_;  // by rank; [0] stays empty
  int joined_ = 0;
};

}  // namespace

StatusOr<TpAddress> ParseTpAddress(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("tensor parallel address " + Quote(text) + ": expected host:port");
  }
  TpAddress a;
  a.host = text.substr(0, colon);
  if (a.host.find(':') != std::string::npos || a.host.find('[') != std::string::npos) {
    return InvalidArgument("tensor parallel address " + Quote(text) +
                           ": expected host:port with a name or an IPv4 address");
  }
  if (!ParseInt(std::string_view(text).substr(colon + 1), &a.port) || a.port < 1 ||
      a.port > 65535) {
    return InvalidArgument("tensor parallel address " + Quote(text) +
                           ": the port must be a number from 1 to 65535");
  }
  return a;
}

StatusOr<int> FreeLoopbackPort() {
  Socket s(::socket(AF_INET, SOCK_STREAM, 0));
  if (!s.valid()) return Unavailable("socket: " + ErrnoText(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Unavailable("no free TCP port on 127.0.0.1: " + ErrnoText(errno));
  }
  return static_cast<int>(ntohs(a.sin_port));
}

StatusOr<std::unique_ptr<TpRendezvous>> TpRendezvous::Host(const TpAddress& address, int world,
                                                           const std::string& settings,
                                                           const std::string& unique_id,
                                                           std::chrono::milliseconds timeout) {
  if (world < 1) {
    return InvalidArgument("tensor parallel rendezvous: the world size must be at least 1, not " +
                           std::to_string(world));
  }
  RAG_ASSIGN_OR_RETURN(Socket listener, Listen(address));
  Gathering gathering(std::move(listener), world, settings, AddressText(address), timeout);
  RAG_RETURN_IF_ERROR(gathering.Run(unique_id));
  std::unique_ptr<TpRendezvous> r(new TpRendezvous(0, world));
  r->unique_id_ = unique_id;
  r->sockets_ = gathering.Release();
  RAG_LOG(INFO) << "tensor parallel rendezvous on " << AddressText(address) << ": all " << world
                << " ranks joined";
  return r;
}

StatusOr<std::unique_ptr<TpRendezvous>> TpRendezvous::Join(const TpAddress& address, int rank,
                                                           int world, const std::string& settings,
                                                           std::chrono::milliseconds timeout) {
  // Rank and world are checked by rank 0 alone, so that both sides report a mistake.
  const auto deadline = Clock::now() + timeout;
  RAG_ASSIGN_OR_RETURN(Socket s, ConnectRetrying(address, deadline, timeout));
  const std::string rank0 = "rank 0 at " + AddressText(address);
  const std::string me = "rank " + std::to_string(rank);
  Status sent = SendMessage(s.fd(), EncodeHello(rank, world, settings));
  if (!sent.ok()) return About(rank0, sent);
  StatusOr<std::string> answer = ReadMessage(s.fd(), deadline);
  if (!answer.ok()) {
    if (Clock::now() >= deadline) {
      return Unavailable(rank0 + " did not accept " + me + " within " + Millis(timeout));
    }
    return About(rank0, answer.status());
  }
  std::string_view text = *answer;
  if (text.starts_with(kError)) {
    text.remove_prefix(kError.size());
    return FailedPrecondition(rank0 + " refused " + me + ": " + std::string(text));
  }
  if (!text.starts_with(kOk)) {
    return InvalidArgument(rank0 + " answered with something other than ok or error");
  }
  text.remove_prefix(kOk.size());
  std::unique_ptr<TpRendezvous> r(new TpRendezvous(rank, world));
  r->unique_id_ = std::string(text);
  r->sockets_.push_back(s.Release());
  return r;
}

TpRendezvous::~TpRendezvous() {
  for (int fd : sockets_) {
    if (fd >= 0) ::close(fd);
  }
}

Status TpRendezvous::SendToFollowers(const std::string& message) {
  if (rank_ != 0) return FailedPrecondition("SendToFollowers on rank " + std::to_string(rank_));
  // A follower that has gone would still take this message into its socket's buffer.
  if (const int lost = LostFollower(std::chrono::milliseconds(0)); lost > 0) {
    return Unavailable("tensor parallel: rank " + std::to_string(lost) + " has left the group");
  }
  for (size_t i = 0; i < sockets_.size(); ++i) {
    Status s = SendMessage(sockets_[i], message);
    if (!s.ok()) return About("tensor parallel: rank " + std::to_string(i + 1), s);
  }
  return Status::Ok();
}

StatusOr<std::string> TpRendezvous::Receive() {
  if (rank_ == 0) return FailedPrecondition("Receive on rank 0, which only sends");
  StatusOr<std::string> message = ReadMessage(sockets_[0], Clock::time_point::max());
  if (!message.ok()) return About("rank 0", message.status());
  return message;
}

int TpRendezvous::LostFollower(std::chrono::milliseconds wait) const {
  if (rank_ != 0 || sockets_.empty()) return -1;
  std::vector<pollfd> fds;
  for (int fd : sockets_) fds.push_back({fd, POLLIN | POLLRDHUP, 0});
  int n = -1;
  do {
    n = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
  } while (n < 0 && errno == EINTR);
  for (size_t i = 0; i < fds.size() && n > 0; ++i) {
    if (fds[i].revents != 0) return static_cast<int>(i) + 1;
  }
  return -1;
}

bool TpRendezvous::Rank0Closed() const {
  if (rank_ == 0 || sockets_.empty()) return false;
  pollfd fd{sockets_[0], POLLRDHUP, 0};
  while (::poll(&fd, 1, 0) < 0 && errno == EINTR) {
  }
  return (fd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace rag
