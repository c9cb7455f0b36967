// Replies and request helpers of http_internal.h.
#include <pistache/http.h>

#include "server/http_internal.h"

namespace rag {

std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

HttpReply JsonReply(int status, const Json& body) {
  HttpReply reply;
  reply.status = status;
  reply.body = DumpJson(body);
  return reply;
}

HttpReply ErrorReply(const Status& status) { return ErrorReply(HttpCodeFor(status), status); }

HttpReply ErrorReply(int http_status, const Status& status, const std::string& code) {
  Json body = ErrorJson(status);
  if (!code.empty()) body["error"]["code"] = code;
  return JsonReply(http_status, body);
}

HttpReply BusyReply(const Status& status, int retry_after_s, const std::string& code) {
  HttpReply reply = ErrorReply(429, status, code);
  reply.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return reply;
}

std::optional<std::string> HeaderValue(const Pistache::Http::Request& request,
                                       const std::string& name) {
  auto raw = request.headers().tryGetRaw(name);
  if (!raw) return std::nullopt;
  return raw->value();
}

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

StatusOr<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%') {
      const int hi = i + 2 < text.size() ? HexDigit(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return InvalidArgument("malformed percent-encoding in the query");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

StatusOr<std::map<std::string, std::string>> QueryParams(
    const Pistache::Http::Request& request, std::initializer_list<std::string_view> allowed) {
  std::map<std::string, std::string> params;
  const auto& query = request.query();
  for (auto it = query.parameters_begin(); it != query.parameters_end(); ++it) {
    RAG_ASSIGN_OR_RETURN(std::string key, PercentDecode(it->first));
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) {
      if (key.size() > 64) key = key.substr(0, 64) + "...";
      return InvalidArgument("unknown query parameter \"" + key + "\"");
    }
    RAG_ASSIGN_OR_RETURN(std::string value, PercentDecode(it->second));
    params[key] = std::move(value);
  }
  return params;
}

StatusOr<int64_t> ParsePathId(std::string_view text, std::string_view what) {
  int64_t id = 0;
  bool ok = !text.empty() && text.size() <= 18;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    if (ok) id = id * 10 + (c - '0');
  }
  if (!ok || id <= 0) {
    std::string shown(text.substr(0, 40));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') c = '?';
    }
    return InvalidArgument(std::string(what) + " id must be a positive integer, got \"" + shown +
                           "\"");
  }
  return id;
}

Status ValidateCollection(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    ok = ok && allowed;
  }
  if (!ok) {
    return InvalidArgument("collection must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
  }
  return Status::Ok();
}

}  // namespace rag
