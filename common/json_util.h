// JSON helpers over nlohmann::json for strict request parsing: every failure is a Status whose
// message names the field, so the HTTP layer can answer 400 with it.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace rag {

using Json = nlohmann::json;

// Parses text; InvalidArgument on malformed JSON (with the byte offset) or when objects/arrays
// nest deeper than max_depth (checked before parsing, so hostile input cannot recurse deeply).
StatusOr<Json> ParseJson(std::string_view text, int max_depth = 32);

// Parses text that must be a JSON object whose keys are all in `allowed`.
StatusOr<Json> ParseJsonObject(std::string_view text, std::initializer_list<std::string_view> allowed,
                               int max_depth = 32);

// InvalidArgument naming the first key of obj that is not in allowed.
Status CheckKnownFields(const Json& obj, std::initializer_list<std::string_view> allowed);

// Typed optional fields: nullopt when absent (or null); InvalidArgument when of the wrong type.
StatusOr<std::optional<std::string>> GetOptionalString(const Json& obj, const std::string& key);
StatusOr<std::optional<long long>> GetOptionalInt(const Json& obj, const std::string& key);
StatusOr<std::optional<bool>> GetOptionalBool(const Json& obj, const std::string& key);
StatusOr<std::optional<double>> GetOptionalNumber(const Json& obj, const std::string& key);

// Required string field; InvalidArgument when absent or not a string.
StatusOr<std::string> GetString(const Json& obj, const std::string& key);

// The JSON error body of DESIGN.md: {"error":{"message","type","code"}}.
Json ErrorJson(const Status& status);
// HTTP status code for a Status (400, 404, 409, 413, 415, 401, 403, 422, 500, 503; 507 for a
// full disk).
int HttpCodeFor(const Status& status);
// A full disk, quota or file size limit: ResourceExhausted whose message has "disk full: " (as
// the file writers of file_util.h and the document store word it). HTTP 507, error code
// "insufficient_storage".
bool IsDiskFull(const Status& status);

}  // namespace rag
