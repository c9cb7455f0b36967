// GET /metrics: the server's counters in Prometheus' text exposition format (version 0.0.4).
//
// HttpMetrics counts requests by route, method and status and keeps a latency histogram per
// route; it is fed by ApiHandler after every response. The other series are read when the page is
// rendered: in-flight requests, the ingestion queue, the assistant's ingestion and generation
// counters, the engine's prefix cache, the vector count.
//
// Thread-safety: RecordRequest and Render may run on any threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace rag {

// The route a path belongs to, as a label of bounded cardinality: "/v1/documents",
// "/v1/documents/{id}", "/v1/documents/{id}/file", "/v1/jobs/{id}", "/v1/query",
// "/v1/retrieve", "/v1/chat/completions", "/v1/models", "/healthz", "/metrics", "static" (the web
// page and its files) or "other" (no route: 404, and any other path under /v1/, e.g. one refused
// with 401 before routing).
std::string RouteLabel(std::string_view path, bool is_static);

// The counts of one histogram series, with the bucket bounds its owner keeps (the owner locks).
struct HistogramCounts {
  std::vector<uint64_t> counts;  // per bucket, not cumulative; the last one is +Inf
  double sum = 0;
  uint64_t count = 0;

  void Observe(const std::vector<double>& bounds, double seconds);  // sizes counts at first use
};

class HttpMetrics {
 public:
  // Upper bounds of the latency histogram's buckets, seconds (+Inf is implicit).
  static const std::vector<double>& Buckets();

  void RecordRequest(const std::string& route, const std::string& method, int status,
                     double seconds);
  // rag_http_requests_total and rag_http_request_duration_seconds, with HELP and TYPE lines.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, HistogramCounts> latency_;
};

// One series of a gauge or counter, appended with HELP and TYPE lines.
void AppendMetric(std::string* out, const char* name, const char* type, const char* help,
                  double value);

// A histogram of durations without labels (cumulative buckets, sum and count), e.g. the time to
// an answer's first token. Thread-safe: Observe may run on the engine thread while GET /metrics
// renders.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::vector<double> bounds);  // seconds, ascending (+Inf implicit)

  void Observe(double seconds);
  // `name`'s series with HELP and TYPE lines.
  void AppendTo(std::string* out, const char* name, const char* help) const;
  uint64_t count() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  HistogramCounts counts_;
};

}  // namespace rag
