// The tensor-parallel rendezvous (engine/dist/tp_rendezvous.h) over real loopback sockets, with
// threads as ranks: a group forms whichever side starts first, every follower gets the unique
// id, rank 0's messages arrive whole and in order, a closed rank 0 ends the followers, and
// every refusal or timeout is reported on both sides with its cause.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "engine/dist/tp_rendezvous.h"

namespace rag {
namespace {

using std::chrono::milliseconds;
using Rendezvous = StatusOr<std::unique_ptr<TpRendezvous>>;

constexpr milliseconds kLong(5000);  // for waits that succeed well before it
const std::string kSettings = "model=tiny-llama\nhidden_size=64\nlayers=2\n";
const std::string kUniqueId("nccl\0id\nbytes\xff", 14);  // opaque bytes, NULs and all

// A port nobody listens on now: the kernel picks it, so parallel tests do not collide.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

TpAddress Loopback(int port) { return TpAddress{"127.0.0.1", port}; }

std::future<Rendezvous> StartHost(const TpAddress& address, int world, const std::string& settings,
                                  milliseconds timeout = kLong) {
  return std::async(std::launch::async, [=] {
    return TpRendezvous::Host(address, world, settings, kUniqueId, timeout);
  });
}

std::future<Rendezvous> StartJoin(const TpAddress& address, int rank, int world,
                                  const std::string& settings, milliseconds timeout = kLong) {
  return std::async(std::launch::async,
                    [=] { return TpRendezvous::Join(address, rank, world, settings, timeout); });
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

#define EXPECT_FAILS_WITH(result, code_, part)                                      \
  do {                                                                              \
    const auto& r_ = (result);                                                      \
    ASSERT_FALSE(r_.ok()) << "expected an error containing: " << (part);            \
    EXPECT_EQ(r_.status().code(), (code_)) << r_.status().ToString();               \
    EXPECT_TRUE(Contains(r_.status().message(), (part))) << r_.status().ToString(); \
  } while (0)

struct Group {
  std::unique_ptr<TpRendezvous> host;
  std::vector<std::unique_ptr<TpRendezvous>> followers;  // ranks 1 .. world-1
};

Group FormGroup(int world) {
  const TpAddress address = Loopback(FreePort());
  auto host = StartHost(address, world, kSettings);
  std::vector<std::future<Rendezvous>> joins;
  for (int r = 1; r < world; ++r) joins.push_back(StartJoin(address, r, world, kSettings));
  Group g;
  Rendezvous h = host.get();
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  if (h.ok()) g.host = std::move(h).value();
  for (auto& j : joins) {
    Rendezvous f = j.get();
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (f.ok()) g.followers.push_back(std::move(f).value());
  }
  return g;
}

TEST(TpRendezvousTest, WorldOfThreeFormsWhicheverSideStartsFirst) {
  const TpAddress address = Loopback(FreePort());
  // Rank 1 comes before rank 0 listens (Join retries), rank 2 after.
  auto early = StartJoin(address, 1, 3, kSettings);
  std::this_thread::sleep_for(milliseconds(150));
  auto host = StartHost(address, 3, kSettings);
  std::this_thread::sleep_for(milliseconds(50));
  auto late = StartJoin(address, 2, 3, kSettings);

  Rendezvous h = host.get();
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ((*h)->rank(), 0);
  EXPECT_EQ((*h)->world(), 3);
  EXPECT_EQ((*h)->unique_id(), kUniqueId);
  int rank = 1;
  for (auto* join : {&early, &late}) {
    Rendezvous f = join->get();
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ((*f)->rank(), rank++);
    EXPECT_EQ((*f)->world(), 3);
    EXPECT_EQ((*f)->unique_id(), kUniqueId);
  }
}

TEST(TpRendezvousTest, WorldOfOneNeedsNobody) {
  Rendezvous h = TpRendezvous::Host(Loopback(FreePort()), 1, kSettings, kUniqueId, kLong);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE((*h)->SendToFollowers("nobody hears this").ok());
}

TEST(TpRendezvousTest, MessagesArriveWholeAndInOrderThenTheCloseEndsFollowers) {
  Group g = FormGroup(3);
  ASSERT_TRUE(g.host);
  ASSERT_EQ(g.followers.size(), 2u);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 11));
  const std::vector<std::string> messages = {"first", "", big, std::string("\0\n", 2), "last"};

  // The followers read while rank 0 writes: 1 MB is more than a socket buffer holds.
  std::vector<std::future<std::vector<StatusOr<std::string>>>> readers;
  for (auto& f : g.followers) {
    readers.push_back(std::async(std::launch::async, [&f, n = messages.size()] {
      std::vector<StatusOr<std::string>> got;
      for (size_t i = 0; i <= n; ++i) got.push_back(f->Receive());  // one past the last
      return got;
    }));
  }
  for (const std::string& m : messages) ASSERT_TRUE(g.host->SendToFollowers(m).ok());
  g.host.reset();  // rank 0 goes away

  for (auto& reader : readers) {
    std::vector<StatusOr<std::string>> got = reader.get();
    for (size_t i = 0; i < messages.size(); ++i) {
      ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
      EXPECT_TRUE(*got[i] == messages[i]) << "message " << i << " differs";
    }
    EXPECT_FAILS_WITH(got.back(), StatusCode::kUnavailable, "rank 0 closed the connection");
  }
}

TEST(TpRendezvousTest, SendToAFollowerThatLeftNamesItsRank) {
  Group g = FormGroup(3);
  ASSERT_TRUE(g.host);
  ASSERT_EQ(g.followers.size(), 2u);
  g.followers[1].reset();  // rank 2
  // The first send may still land in the socket buffer before the reset comes back; the
  // messages are small, so rank 1, which does not read, never fills its buffer.
  Status s;
  for (int i = 0; i < 200 && s.ok(); ++i) {
    s = g.host->SendToFollowers("step");
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(s.message(), "rank 2")) << s.ToString();
}

// What the watchdogs of a group of processes see: a follower whose process ends is seen by rank 0
// without a send, and rank 0 going is seen by a follower that has a step still unread (which it
// can still read).
TEST(TpRendezvousTest, ClosedConnectionsAreSeenWithoutReading) {
  Group g = FormGroup(3);
  ASSERT_TRUE(g.host);
  ASSERT_EQ(g.followers.size(), 2u);
  ASSERT_TRUE(g.host->SendToFollowers("step").ok());
  EXPECT_EQ(g.host->LostFollower(milliseconds(0)), -1);
  EXPECT_FALSE(g.followers[0]->Rank0Closed());
  auto watching = std::async(std::launch::async, [&] { return g.host->LostFollower(kLong); });
  std::this_thread::sleep_for(milliseconds(50));
  g.followers[1].reset();  // rank 2's process ends
  EXPECT_EQ(watching.get(), 2);
  const Status refused = g.host->SendToFollowers("next");
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  EXPECT_TRUE(Contains(refused.message(), "rank 2 has left the group")) << refused.ToString();

  g.host.reset();
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    closed = g.followers[0]->Rank0Closed();
    if (!closed) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(closed);
  StatusOr<std::string> unread = g.followers[0]->Receive();
  ASSERT_TRUE(unread.ok()) << unread.status().ToString();
  EXPECT_EQ(*unread, "step");
  EXPECT_FAILS_WITH(g.followers[0]->Receive(), StatusCode::kUnavailable, "rank 0 closed");
}

// Rank 0 of `host_world` ranks with `host_settings` and one follower (rank, world, settings):
// both fail with `cause`.
void ExpectRefusedOnBothSides(int host_world, const std::string& host_settings, int rank, int world,
                              const std::string& settings, const std::string& cause) {
  const TpAddress address = Loopback(FreePort());
  auto host = StartHost(address, host_world, host_settings);
  auto join = StartJoin(address, rank, world, settings);
  EXPECT_FAILS_WITH(join.get(), StatusCode::kFailedPrecondition, cause);
  EXPECT_FAILS_WITH(host.get(), StatusCode::kFailedPrecondition, cause);
}

TEST(TpRendezvousTest, WorldMismatchIsRefusedOnBothSides) {
  ExpectRefusedOnBothSides(3, kSettings, 1, 2, kSettings,
                           "rank 1 says the world has 2 ranks, rank 0 says 3");
}

TEST(TpRendezvousTest, DuplicateRankIsRefusedOnBothSides) {
  const TpAddress address = Loopback(FreePort());
  auto host = StartHost(address, 3, kSettings);
  auto first = StartJoin(address, 1, 3, kSettings);
  std::this_thread::sleep_for(milliseconds(50));
  auto second = StartJoin(address, 1, 3, kSettings);
  // Whichever came second is refused; the other hears why rank 0 gave up.
  const std::string cause = "rank 1 joined twice";
  EXPECT_FAILS_WITH(host.get(), StatusCode::kFailedPrecondition, cause);
  EXPECT_FAILS_WITH(first.get(), StatusCode::kFailedPrecondition, cause);
  EXPECT_FAILS_WITH(second.get(), StatusCode::kFailedPrecondition, cause);
}

TEST(TpRendezvousTest, RankOutOfRangeIsRefusedOnBothSides) {
  ExpectRefusedOnBothSides(3, kSettings, 3, 3, kSettings, "rank 3 is out of range");
}

TEST(TpRendezvousTest, DifferentSettingsNameTheFirstDifferingLine) {
  ExpectRefusedOnBothSides(2, kSettings, 1, 2, "model=tiny-llama\nhidden_size=32\nlayers=3\n",
                           "rank 1's settings differ from rank 0's at line 2: rank 0 has "
                           "\"hidden_size=64\", rank 1 has \"hidden_size=32\"");
}

TEST(TpRendezvousTest, SettingsWithAMissingLineNameIt) {
  ExpectRefusedOnBothSides(2, "a=1\nb=2", 1, 2, "a=1",
                           "at line 2: rank 0 has \"b=2\", rank 1 has no such line");
}

// A peer speaking another version of the protocol: rank 0 answers "error" and the reason.
TEST(TpRendezvousTest, OtherProtocolVersionIsRefused) {
  const TpAddress address = Loopback(FreePort());
  auto host = StartHost(address, 2, kSettings);
  int fd = -1;
  for (int i = 0; i < 100 && fd < 0; ++i) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(address.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(fd);
      fd = -1;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  ASSERT_GE(fd, 0);
  const std::string hello = "rag-tp 2\n1\n2\n" + kSettings;
  std::string framed(8, '\0');
  framed[0] = static_cast<char>(hello.size());
  framed += hello;
  ASSERT_EQ(::send(fd, framed.data(), framed.size(), 0), static_cast<ssize_t>(framed.size()));
  EXPECT_FAILS_WITH(host.get(), StatusCode::kFailedPrecondition, "\"rag-tp 2\"");
  std::string answer;
  char buf[512];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) answer.append(buf, n);
  ::close(fd);
  ASSERT_GE(answer.size(), 8u);
  EXPECT_TRUE(Contains(answer.substr(8), "error\n")) << answer.substr(8);
  EXPECT_TRUE(Contains(answer, "\"rag-tp 2\"")) << answer.substr(8);
}

TEST(TpRendezvousTest, HostTimeoutNamesTheMissingRank) {
  const TpAddress address = Loopback(FreePort());
  auto host = StartHost(address, 3, kSettings, milliseconds(400));
  auto join = StartJoin(address, 1, 3, kSettings);
  const std::string where = "127.0.0.1:" + std::to_string(address.port);
  Rendezvous h = host.get();
  EXPECT_FAILS_WITH(h, StatusCode::kUnavailable, "waiting for rank 2");
  EXPECT_TRUE(Contains(h.status().message(), where)) << h.status().ToString();
  // Rank 1, which did join, is told why the group failed.
  EXPECT_FAILS_WITH(join.get(), StatusCode::kFailedPrecondition, "waiting for rank 2");
}

TEST(TpRendezvousTest, HostTimeoutNamesEveryMissingRank) {
  Rendezvous h =
      TpRendezvous::Host(Loopback(FreePort()), 4, kSettings, kUniqueId, milliseconds(300));
  EXPECT_FAILS_WITH(h, StatusCode::kUnavailable, "waiting for ranks 1, 2, 3");
}

TEST(TpRendezvousTest, JoinTimeoutWhenNobodyListens) {
  const TpAddress address = Loopback(FreePort());
  Rendezvous f = TpRendezvous::Join(address, 1, 2, kSettings, milliseconds(300));
  EXPECT_FAILS_WITH(f, StatusCode::kUnavailable,
                    "could not reach rank 0 at 127.0.0.1:" + std::to_string(address.port));
}

TEST(TpRendezvousTest, ParseTpAddressAcceptsHostAndPort) {
  struct Case {
    std::string text, host;
    int port;
  };
  for (const Case& c : {Case{"127.0.0.1:29500", "127.0.0.1", 29500},
                        Case{"node-1.cluster.local:1", "node-1.cluster.local", 1},
                        Case{"gpu7:65535", "gpu7", 65535}, Case{"0.0.0.0:8000", "0.0.0.0", 8000},
                        Case{":8000", "", 8000}}) {
    StatusOr<TpAddress> a = ParseTpAddress(c.text);
    ASSERT_TRUE(a.ok()) << c.text << ": " << a.status().ToString();
    EXPECT_EQ(a->host, c.host);
    EXPECT_EQ(a->port, c.port);
  }
}

TEST(TpRendezvousTest, ParseTpAddressRefusesOtherText) {
  for (const std::string text :
       {"", "gpu7", "gpu7:", "gpu7:0", "gpu7:65536", "gpu7:-1", "gpu7:+80", "gpu7: 80", "gpu7:80x",
        "gpu7:99999999999", "[::1]:80", "::1:80"}) {
    StatusOr<TpAddress> a = ParseTpAddress(text);
    ASSERT_FALSE(a.ok()) << text;
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(a.status().message(), "\"" + text + "\"")) << a.status().ToString();
  }
}

}  // namespace
}  // namespace rag
