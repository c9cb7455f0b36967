// What a group of tensor-parallel processes adds to a step that a server's Engine makes one call
// at a time (engine/dist/tp_process.h): rank 0 encodes the call and sends it over the rendezvous'
// TCP connection before running its own rank; the follower receives and decodes it before it can
// launch the same kernels. tp_step_wire_bench [STEPS] times both on loopback, the two ranks as
// threads of this process, for decode steps of the RAG load's shapes (block tables of 16-token
// blocks): rank 0's cost (encode + send) and the follower's start delay (from rank 0's encode to
// the decoded step on the follower). Prints the median and 99th percentile in microseconds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/dist/tp_rendezvous.h"
#include "engine/dist/tp_step_wire.h"

namespace {

using Clock = std::chrono::steady_clock;

// A decode step of `batch` sequences, each `context` tokens long (one new token each).
rag::TpStep DecodeStep(int batch, int context) {
  rag::TpStep step;
  step.call = rag::TpCall::kForwardSample;
  for (int s = 0; s < batch; ++s) {
    rag::SequenceInput in;
    in.tokens = {1000 + s};
    in.start_pos = context - 1;
    for (int b = 0; b < (context + 15) / 16; ++b) in.block_table.push_back(s * 1000 + b);
    step.batch.sequences.push_back(std::move(in));
    step.sampling.push_back({0.7f, 40, 0.9f, 0.5f});
  }
  return step;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::max(10, std::atoi(argv[1])) : 2000;
  const auto port = rag::FreeLoopbackPort();
  if (!port.ok()) return 1;
  const rag::TpAddress address{"127.0.0.1", *port};
  std::unique_ptr<rag::TpRendezvous> follower;
  std::thread join([&] {
    auto j = rag::TpRendezvous::Join(address, 1, 2, "bench", std::chrono::seconds(10));
    if (j.ok()) follower = std::move(*j);
  });
  auto host = rag::TpRendezvous::Host(address, 2, "bench", "id", std::chrono::seconds(10));
  join.join();
  if (!host.ok() || follower == nullptr) {
    std::fprintf(stderr, "tp_step_wire_bench: no rendezvous\n");
    return 1;
  }
  std::printf(
      "decode step (batch x context)  bytes   rank 0 encode+send us (p50 / p99)   follower start "
      "delay us (p50 / p99)\n");
  for (const auto& [batch, context] :
       std::vector<std::pair<int, int>>{{1, 2176}, {8, 2176}, {64, 5500}}) {
    const rag::TpStep step = DecodeStep(batch, context);
    std::vector<double> send_us, delay_us;
    std::vector<Clock::time_point> decoded(static_cast<size_t>(steps));
    std::atomic<int> done{0};
    // The follower as it runs: one thread receiving and decoding step after step.
    std::thread receiver([&] {
      for (int i = 0; i < steps; ++i) {
        auto m = follower->Receive();
        if (!m.ok() || !rag::DecodeTpStep(*m).ok()) std::abort();
        decoded[static_cast<size_t>(i)] = Clock::now();
        done.store(i + 1, std::memory_order_release);
      }
    });
    size_t bytes = 0;
    for (int i = 0; i < steps; ++i) {
      const Clock::time_point start = Clock::now();
      const std::string message = rag::EncodeTpStep(step);
      if (!(*host)->SendToFollowers(message).ok()) return 1;
      const Clock::time_point sent = Clock::now();
      while (done.load(std::memory_order_acquire) < i + 1) {
      }
      bytes = message.size();
      send_us.push_back(std::chrono::duration<double, std::micro>(sent - start).count());
      delay_us.push_back(
          std::chrono::duration<double, std::micro>(decoded[static_cast<size_t>(i)] - start)
              .count());
    }
    receiver.join();
    std::printf(
        "%4d x %-5d                  %7zu   %8.1f / %8.1f                    %8.1f / %8.1f\n",
        batch, context, bytes, Percentile(send_us, 0.5), Percentile(send_us, 0.99),
        Percentile(delay_us, 0.5), Percentile(delay_us, 0.99));
  }
  return 0;
}
