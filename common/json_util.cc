#include "common/json_util.h"

namespace rag {

namespace {
// Depth of [ and { outside strings. JSON strings cannot contain raw quotes except escaped.
int MaxNesting(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return max_depth;
}
}  // namespace

StatusOr<Json> ParseJson(std::string_view text, int max_depth) {
  if (MaxNesting(text) > max_depth) {
    return InvalidArgument("JSON nests deeper than " + std::to_string(max_depth) + " levels");
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgument("malformed JSON at byte " + std::to_string(e.byte));
  } catch (const Json::exception& e) {
    // out_of_range 406: a number that overflows a double ("1e400"); found by tests/fuzz/json_fuzz.
    return InvalidArgument("malformed JSON: number out of range");
  }
}

StatusOr<Json> ParseJsonObject(std::string_view text, std::initializer_list<std::string_view> allowed,
                               int max_depth) {
  RAG_ASSIGN_OR_RETURN(Json j, ParseJson(text, max_depth));
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  RAG_RETURN_IF_ERROR(CheckKnownFields(j, allowed));
  return j;
}

Status CheckKnownFields(const Json& obj, std::initializer_list<std::string_view> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (auto a : allowed) known = known || it.key() == a;
    if (!known) return InvalidArgument("unknown field \"" + it.key() + "\"");
  }
  return Status::Ok();
}

StatusOr<std::optional<std::string>> GetOptionalString(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return InvalidArgument("field \"" + key + "\" must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

StatusOr<std::optional<long long>> GetOptionalInt(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<long long>();
  if (!it->is_number_integer()) return InvalidArgument("field \"" + key + "\" must be an integer");
  return std::optional<long long>(it->get<long long>());
}

StatusOr<std::optional<bool>> GetOptionalBool(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return InvalidArgument("field \"" + key + "\" must be true or false");
  return std::optional<bool>(it->get<bool>());
}

StatusOr<std::optional<double>> GetOptionalNumber(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return InvalidArgument("field \"" + key + "\" must be a number");
  return std::optional<double>(it->get<double>());
}

StatusOr<std::string> GetString(const Json& obj, const std::string& key) {
  RAG_ASSIGN_OR_RETURN(auto value, GetOptionalString(obj, key));
  if (!value) return InvalidArgument("missing field \"" + key + "\"");
  return *value;
}

bool IsDiskFull(const Status& status) {
  return status.code() == StatusCode::kResourceExhausted &&
         status.message().find("disk full: ") != std::string::npos;
}

int HttpCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted:
      // The server's disk is full (file_util.h, sqlite_util.h): not the request's fault.
      return IsDiskFull(status) ? 507 : 413;
    case StatusCode::kUnsupported: return 415;
    case StatusCode::kDataLoss: return 422;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

Json ErrorJson(const Status& status) {
  std::string type;
  const int code = HttpCodeFor(status);
  if (code >= 500) type = "server_error";
  else if (code == 401 || code == 403) type = "authentication_error";
  else if (code == 404) type = "not_found_error";
  else type = "invalid_request_error";
  std::string name = IsDiskFull(status) ? "insufficient_storage" : StatusCodeName(status.code());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return Json{{"error", {{"message", status.message()}, {"type", type}, {"code", name}}}};
}

}  // namespace rag
