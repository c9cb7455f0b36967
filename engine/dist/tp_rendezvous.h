// How the processes of one tensor-parallel group find each other (issue 8: "several processes,
// and later several nodes, can form one group"): rank 0 listens on a TCP address, every other
// rank connects to it (retrying until rank 0 is up), says who it is, and receives the group's
// NCCL unique id (opaque bytes here: this file needs neither CUDA nor NCCL). The connections
// then stay open as rank 0's channel to its followers: every step rank 0 runs is first sent to
// them (engine/dist/tp_step_wire.h), and a follower whose connection closes stops.
//
// Each process states its settings as one text (the model's shapes and every option that
// changes the kernels a step launches, engine/dist/tp_process.h): ranks that would launch
// different collectives would hang each other, so rank 0 refuses a follower whose settings
// differ from its own, naming the first line that differs, and the follower gets that error.
//
// Wire: every message is an 8-byte little-endian length and that many bytes. A follower's hello
// is "rag-tp 1", its rank, the world size and its settings; rank 0 answers "ok" and the unique
// id, or "error" and the reason.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace rag {

struct TpAddress {
  std::string host;  // a name or an IPv4 address
  int port = 0;
};

// "host:port" (port 1..65535); InvalidArgument naming the text otherwise.
StatusOr<TpAddress> ParseTpAddress(const std::string& text);

// A TCP port of 127.0.0.1 free a moment ago (the kernel's pick for port 0), for a group whose
// processes are all started by this one (rag bench --tp-processes, the tests).
StatusOr<int> FreeLoopbackPort();

class TpRendezvous {
 public:
  // Rank 0: listens on `address` (host "0.0.0.0" or "" for every interface) and waits for the
  // world - 1 followers (ranks 1 .. world-1, each once) until `timeout`; answers each with
  // `unique_id`, or with an error if its world size or settings differ from `settings` or its
  // rank is taken or out of range (and then fails itself with the same reason).
  static StatusOr<std::unique_ptr<TpRendezvous>> Host(const TpAddress& address, int world,
                                                      const std::string& settings,
                                                      const std::string& unique_id,
                                                      std::chrono::milliseconds timeout);
  // Rank `rank` (1 .. world-1): connects to rank 0 (retrying until `timeout`: rank 0 may start
  // later), says its rank, world and settings, and returns once rank 0 has accepted it.
  static StatusOr<std::unique_ptr<TpRendezvous>> Join(const TpAddress& address, int rank, int world,
                                                      const std::string& settings,
                                                      std::chrono::milliseconds timeout);
  ~TpRendezvous();
  TpRendezvous(const TpRendezvous&) = delete;
  TpRendezvous& operator=(const TpRendezvous&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  const std::string& unique_id() const { return unique_id_; }

  // Rank 0: `message` to every follower, in rank order. Unavailable naming the rank whose
  // connection failed or has closed.
  Status SendToFollowers(const std::string& message);
  // A follower: the next message from rank 0; Unavailable("rank 0 closed ...") once rank 0's
  // connection is closed (rank 0 exited or destroyed its TpRendezvous).
  StatusOr<std::string> Receive();

  // Whether a rank's process has gone, for the watchdogs of engine/dist/tp_backend.h (safe to call
  // from another thread than the one sending or receiving: they only poll the connections).
  // Rank 0: the lowest follower whose connection has closed, waiting up to `wait` for one; -1 if
  // none (followers never write after joining, so a readable connection is a closed one).
  int LostFollower(std::chrono::milliseconds wait) const;
  // A follower: whether rank 0 has closed its side (unread steps may still be buffered).
  bool Rank0Closed() const;

 private:
  TpRendezvous(int rank, int world) : rank_(rank), world_(world) {}
  int rank_;
  int world_;
  std::string unique_id_;
  std::vector<int> sockets_;  // rank 0: followers 1..world-1 in rank order; a follower: rank 0
};

}  // namespace rag
