// A minimal HTTP/1.1 client over a blocking loopback socket, for tests of the real server: it
// sends raw bytes (so malformed requests and abrupt hang-ups can be sent too) and reads
// responses framed by Content-Length or chunked encoding. Every read and write has a 10 s
// timeout, so a server that does not answer fails a test instead of hanging it.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/json_util.h"

namespace rag::testing {

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  Json json() const { return Json::parse(body, nullptr, /*allow_exceptions=*/false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response (1xx interim responses are skipped); nullopt on EOF or timeout.
  std::optional<Response> Read() {
    for (;;) {
      size_t end;
      while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill()) return std::nullopt;
      }
      Response r;
      std::string head = buffer_.substr(0, end);
      buffer_.erase(0, end + 4);
      if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) return std::nullopt;
      r.status = std::stoi(head.substr(9, 3));
      size_t pos = head.find("\r\n");
      while (pos != std::string::npos) {
        const size_t next = head.find("\r\n", pos + 2);
        const std::string line =
            head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        pos = next;
      }
      if (r.status >= 100 && r.status < 200) continue;
      if (r.header("transfer-encoding") == "chunked") {
        if (!ReadChunked(&r.body)) return std::nullopt;
      } else {
        const size_t length =
            std::stoul(r.headers.count("content-length") ? r.header("content-length") : "0");
        while (buffer_.size() < length) {
          if (!Fill()) return std::nullopt;
        }
        r.body = buffer_.substr(0, length);
        buffer_.erase(0, length);
      }
      return r;
    }
  }

  // Whether the server closes the connection (EOF) within the timeout; bytes are discarded.
  bool ClosedByServer() {
    buffer_.clear();
    while (Fill()) buffer_.clear();
    return eof_;
  }

  // Reads at least n bytes of whatever comes (false on EOF/timeout).
  bool ReadAtLeast(size_t n) {
    while (buffer_.size() < n) {
      if (!Fill()) return false;
    }
    return true;
  }

  // Hangs up abruptly: a reset instead of an orderly close.
  void Abort() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd_);
    fd_ = -1;
  }

 private:
  bool Fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  bool ReadChunked(std::string* body) {
    for (;;) {
      size_t eol;
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (!Fill()) return false;
      }
      const size_t size = std::stoul(buffer_.substr(0, eol), nullptr, 16);
      buffer_.erase(0, eol + 2);
      while (buffer_.size() < size + 2) {
        if (!Fill()) return false;
      }
      body->append(buffer_, 0, size);
      buffer_.erase(0, size + 2);
      if (size == 0) return true;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

// A request with Host and, for a body or a POST, Content-Length (unless `headers`, each
// "Name: value", frame the body themselves).
inline std::string RawRequest(const std::string& method, const std::string& path,
                              const std::string& body, const std::vector<std::string>& headers) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool framed = false;
  for (const std::string& h : headers) {
    std::string name = h.substr(0, h.find(':'));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    framed = framed || name == "content-length" || name == "transfer-encoding";
    req += h + "\r\n";
  }
  if (!framed && (!body.empty() || method == "POST")) {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return req + "\r\n" + body;
}

// One request on a fresh connection; status 0 when there is no response.
inline Response Do(int port, const std::string& method, const std::string& path,
                   const std::string& body = "", const std::vector<std::string>& headers = {}) {
  Client client(port);
  if (!client.connected() || !client.Send(RawRequest(method, path, body, headers))) return {};
  return client.Read().value_or(Response{});
}

// Polls GET /v1/jobs/{job_id} (with `headers`, e.g. an API key) until the job is done or failed,
// or the answer is not 200, and returns that answer. Past timeout_s (60: an upload's ingestion
// on a loaded 2-core machine) the test fails and the job comes back as last seen, so that the
// caller's checks fail on its state instead of reading a null document.
inline Json WaitForJob(int port, const std::string& job_id, double timeout_s = 60,
                       const std::vector<std::string>& headers = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  Json last;
  for (;;) {
    const Response r = Do(port, "GET", "/v1/jobs/" + job_id, "", headers);
    last = r.json();
    if (r.status != 200) return last;
    const std::string state = last.value("state", "");
    if (state == "done" || state == "failed") return last;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "job " << job_id << " did not finish in " << timeout_s << " s: " << last.dump();
  return last;
}

struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string data;
};

inline constexpr char kBoundary[] = "----rag-test-boundary-7MA4YWxkTrZu0gW";

// A multipart/form-data body with boundary kBoundary.
inline std::string Multipart(const std::vector<FormPart>& parts) {
  std::string body;
  for (const FormPart& p : parts) {
    body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + p.name +
            "\"";
    if (p.filename) {
      body += "; filename=\"" + *p.filename + "\"\r\nContent-Type: application/octet-stream";
    }
    body += "\r\n\r\n" + p.data + "\r\n";
  }
  return body + "--" + kBoundary + "--\r\n";
}

struct SseEvent {
  std::string event;
  Json data;
};

// The events of a text/event-stream body (single-line data, parsed as JSON).
inline std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> events;
  size_t pos = 0, end;
  while ((end = body.find("\n\n", pos)) != std::string::npos) {
    const std::string frame = body.substr(pos, end - pos);
    pos = end + 2;
    SseEvent e;
    size_t line_start = 0;
    while (line_start < frame.size()) {
      size_t line_end = frame.find('\n', line_start);
      if (line_end == std::string::npos) line_end = frame.size();
      const std::string line = frame.substr(line_start, line_end - line_start);
      if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
      if (line.rfind("data: ", 0) == 0) e.data = Json::parse(line.substr(6), nullptr, false);
      line_start = line_end + 1;
    }
    events.push_back(std::move(e));
  }
  return events;
}

}  // namespace rag::testing
