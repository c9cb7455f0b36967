// Fuzz target: JSON request parsing, both readers.
//  - common/json_util.h (nlohmann-json, the HTTP API's request bodies): the body of POST
//    /v1/query as routes_query.cc reads it (ParseJsonObject with its field list, then the typed
//    getters). A parsed body and every error's JSON must serialize strictly (no invalid UTF-8
//    reaches a response: nlohmann's dump throws on it).
//  - common/json_reader.h (the engine's strict reader of config.json, tokenizer.json and
//    safetensors headers): a parsed document nests no deeper than max_depth, and an integer's
//    double is the integer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "common/json_reader.h"
#include "common/json_util.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr int kReaderMaxDepth = 16;

// Depth of v (a scalar is 1) and the per-value checks of the reader's contract.
int WalkJsonValue(const rag::JsonValue& v) {
  int depth = 0;
  if (v.is_integer()) FUZZ_CHECK(v.as_double() == static_cast<double>(v.as_int()));
  if (v.is_array()) {
    FUZZ_CHECK(v.size() == v.items().size());
    for (const rag::JsonValue& item : v.items()) depth = std::max(depth, WalkJsonValue(item));
  } else if (v.is_object()) {
    FUZZ_CHECK(v.size() == v.members().size());
    for (const auto& [key, member] : v.members()) {
      FUZZ_CHECK(v.Find(key) != nullptr);
      depth = std::max(depth, WalkJsonValue(member));
    }
  } else {
    FUZZ_CHECK(v.Find("x") == nullptr);
  }
  return depth + 1;
}

// The error body the server would send for a failed parse; must not throw.
void CheckErrorSerializes(const rag::Status& status) {
  FUZZ_CHECK(!status.ok());
  try {
    (void)rag::ErrorJson(status).dump();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ErrorJson(%s) does not serialize: %s\n", status.ToString().c_str(), e.what());
    FUZZ_CHECK(false);
  }
}

void FuzzRequestBody(std::string_view text) {
  rag::StatusOr<rag::Json> body =
      rag::ParseJsonObject(text, {"question", "collection", "top_k", "document_id", "stream"});
  if (!body.ok()) return CheckErrorSerializes(body.status());
  FUZZ_CHECK(body->is_object());
  try {
    (void)body->dump();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "a parsed body does not serialize: %s\n", e.what());
    FUZZ_CHECK(false);
  }
  auto question = rag::GetString(*body, "question");
  if (!question.ok()) CheckErrorSerializes(question.status());
  auto collection = rag::GetOptionalString(*body, "collection");
  if (!collection.ok()) CheckErrorSerializes(collection.status());
  auto top_k = rag::GetOptionalInt(*body, "top_k");
  if (!top_k.ok()) CheckErrorSerializes(top_k.status());
  auto document_id = rag::GetOptionalInt(*body, "document_id");
  if (!document_id.ok()) CheckErrorSerializes(document_id.status());
  auto stream = rag::GetOptionalBool(*body, "stream");
  if (!stream.ok()) CheckErrorSerializes(stream.status());
  auto number = rag::GetOptionalNumber(*body, "top_k");
  if (!number.ok()) CheckErrorSerializes(number.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzRequestBody(text);
  rag::StatusOr<rag::JsonValue> value = rag::ReadJson(text, "fuzz.json", kReaderMaxDepth);
  if (value.ok()) FUZZ_CHECK(WalkJsonValue(*value) <= kReaderMaxDepth + 1);
  return 0;
}
