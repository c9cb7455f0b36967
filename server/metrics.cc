#include "server/metrics.h"

#include <cstdio>
#include <utility>

namespace rag {
namespace {

// Prometheus' text format writes floats in Go's notation; %.17g round-trips and is accepted.
std::string Number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// A histogram's _bucket, _sum and _count lines; `labels` is "" or `key="value",` pairs.
void AppendHistogramLines(std::string* out, const std::string& name, const std::string& labels,
                          const std::vector<double>& bounds, const HistogramCounts& h) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= bounds.size(); ++b) {
    cumulative += b < h.counts.size() ? h.counts[b] : 0;
    const std::string le = b < bounds.size() ? Number(bounds[b]) : "+Inf";
    *out += name + "_bucket{" + labels + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::string bare = labels;  // without the trailing comma, or no braces at all
  if (!bare.empty()) bare = "{" + bare.substr(0, bare.size() - 1) + "}";
  *out += name + "_sum" + bare + " " + Number(h.sum) + "\n";
  *out += name + "_count" + bare + " " + std::to_string(h.count) + "\n";
}

}  // namespace

void HistogramCounts::Observe(const std::vector<double>& bounds, double seconds) {
  if (counts.empty()) counts.assign(bounds.size() + 1, 0);
  size_t bucket = 0;
  while (bucket < bounds.size() && seconds > bounds[bucket]) ++bucket;
  ++counts[bucket];
  sum += seconds;
  ++count;
}

std::string RouteLabel(std::string_view path, bool is_static) {
  constexpr std::string_view kDocuments = "/v1/documents/", kJobs = "/v1/jobs/";
  if (path == "/v1/documents" || path == "/v1/query" || path == "/v1/retrieve" ||
      path == "/healthz" || path == "/metrics" || path == "/v1/chat/completions" ||
      path == "/v1/models") {
    return std::string(path);
  }
  auto under = [](std::string_view p, std::string_view prefix) {
    return p.size() > prefix.size() && p.substr(0, prefix.size()) == prefix &&
           p.find('/', prefix.size()) == std::string_view::npos;
  };
  if (under(path, kDocuments)) return "/v1/documents/{id}";
  if (under(path, kJobs)) return "/v1/jobs/{id}";
  constexpr std::string_view kFile = "/file";
  if (path.size() > kFile.size() && path.substr(path.size() - kFile.size()) == kFile &&
      under(path.substr(0, path.size() - kFile.size()), kDocuments)) {
    return "/v1/documents/{id}/file";
  }
  // No page file lives under /v1/ (an unknown API path answered 401 is not the page).
  return is_static && path.substr(0, 4) != "/v1/" ? "static" : "other";
}

const std::vector<double>& HttpMetrics::Buckets() {
  static const std::vector<double> buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1,     2.5,  5,     10,   30, 60};
  return buckets;
}

void HttpMetrics::RecordRequest(const std::string& route, const std::string& method, int status,
                                double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, method, status}];
  latency_[route].Observe(Buckets(), seconds);
}

std::string HttpMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP rag_http_requests_total HTTP requests answered, by route, method and status.\n";
  out += "# TYPE rag_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += "rag_http_requests_total{route=\"" + route + "\",method=\"" + method + "\",code=\"" +
           std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP rag_http_request_duration_seconds Time from the request's arrival to its "
         "response being handed to the kernel (streams: to their last event).\n";
  out += "# TYPE rag_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    AppendHistogramLines(&out, "rag_http_request_duration_seconds", "route=\"" + route + "\",",
                         Buckets(), h);
  }
  return out;
}

void AppendMetric(std::string* out, const char* name, const char* type, const char* help,
                  double value) {
  *out += std::string("# HELP ") + name + " " + help + "\n";
  *out += std::string("# TYPE ") + name + " " + type + "\n";
  *out += std::string(name) + " " + Number(value) + "\n";
}

LatencyHistogram::LatencyHistogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {}

void LatencyHistogram::Observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  counts_.Observe(bounds_, seconds);
}

void LatencyHistogram::AppendTo(std::string* out, const char* name, const char* help) const {
  std::lock_guard<std::mutex> lock(mu_);
  *out += std::string("# HELP ") + name + " " + help + "\n";
  *out += std::string("# TYPE ") + name + " histogram\n";
  AppendHistogramLines(out, name, "", bounds_, counts_);
}

uint64_t LatencyHistogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_.count;
}

}  // namespace rag
