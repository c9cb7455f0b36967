#include "engine/cuda/bench_engine_load.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"

namespace rag {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The q-quantile (0..1) of the sorted `v`, nearest rank; 0 for none.
double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

StatusOr<EngineLoadResult> RunEngineLoad(
    std::unique_ptr<Backend> backend, SchedulerOptions scheduler, int requests, int new_tokens,
    double interval_s, const std::function<std::vector<int32_t>()>& random_prompt) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < requests; ++i) prompts.push_back(random_prompt());

  // Written by the engine thread's callbacks, read here once all are done; declared before the
  // Engine so that they outlive it (its destructor cancels what is in flight, with callbacks).
  std::mutex mu;
  std::condition_variable done_cv;
  int done = 0;
  int64_t tokens = 0;
  Status failure;
  std::vector<double> submitted(static_cast<size_t>(requests), 0.0);
  std::vector<double> first_token(static_cast<size_t>(requests), 0.0);
  std::vector<double> last_token(static_cast<size_t>(requests), 0.0);
  std::vector<double> token_times;  // of every token
  token_times.reserve(static_cast<size_t>(requests) * static_cast<size_t>(new_tokens));
  std::vector<double> gaps;  // seconds between consecutive tokens of one answer
  gaps.reserve(static_cast<size_t>(requests) * static_cast<size_t>(std::max(new_tokens - 1, 0)));
  double t0 = 0;
  Engine engine(std::move(backend), EngineOptions{scheduler});

  t0 = NowSeconds();
  for (int i = 0; i < requests; ++i) {
    const double due = t0 + i * interval_s;
    const double now = NowSeconds();
    if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
    {
      std::lock_guard<std::mutex> lock(mu);
      submitted[static_cast<size_t>(i)] = NowSeconds();
    }
    GenerationRequest request;
    request.prompt = std::move(prompts[static_cast<size_t>(i)]);
    request.max_tokens = new_tokens;
    request.ignore_eos = true;
    auto callback = [&, i](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (e.token >= 0) {
        ++tokens;
        const double now = NowSeconds();
        const size_t k = static_cast<size_t>(i);
        if (first_token[k] == 0.0) {
          first_token[k] = now - submitted[k];
        } else {
          gaps.push_back(now - last_token[k]);
        }
        last_token[k] = now;
        token_times.push_back(now);
      }
      if (e.finished) {
        if (e.reason == FinishReason::kError && failure.ok()) failure = e.error;
        ++done;
        done_cv.notify_all();
      }
      return true;
    };
    RAG_ASSIGN_OR_RETURN(int64_t id, engine.Submit(std::move(request), callback));
    (void)id;
  }
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return done == requests; });
  EngineLoadResult r;
  r.seconds = NowSeconds() - t0;
  if (!failure.ok()) return failure;
  r.requests = requests;
  r.output_tokens = tokens;
  r.output_tok_s = static_cast<double>(tokens) / r.seconds;
  double sum = 0;
  for (double s : first_token) {
    sum += s;
    r.max_first_token_s = std::max(r.max_first_token_s, s);
  }
  r.mean_first_token_s = sum / requests;
  // The steady rate: the middle half of all output tokens over the time it took; only where
  // requests outnumber the seats (with one cohort the middle half is all decoding).
  std::sort(token_times.begin(), token_times.end());
  const size_t quarter = token_times.size() / 4;
  if (quarter > 0 && requests > scheduler.max_running) {
    r.steady_seconds = token_times[3 * quarter] - token_times[quarter];
    if (r.steady_seconds > 0)
      r.steady_output_tok_s = static_cast<double>(2 * quarter) / r.steady_seconds;
  }
  r.preemptions = engine.preemptions();
  std::sort(gaps.begin(), gaps.end());
  r.token_gap_p50_ms = Quantile(gaps, 0.5) * 1e3;
  r.token_gap_p99_ms = Quantile(gaps, 0.99) * 1e3;
  r.token_gap_max_ms = Quantile(gaps, 1.0) * 1e3;
  return r;
}

}  // namespace rag
