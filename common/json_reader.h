// A small, strict JSON reader for the engine (config.json, tokenizer.json, safetensors headers),
// which must build on machines without the server's packages (nlohmann-json among them).
// Read-only DOM: parse once, walk the values. Objects keep their keys in file order.
//
// Strictness: RFC 8259 grammar, UTF-8 strings with \u escapes (surrogate pairs combined; a lone
// surrogate is an error), no trailing commas or comments, nesting limited by max_depth.
// Integers that fit int64 are exact (as_int); every number is also available as a double.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace rag {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_integer() const { return type_ == Type::kNumber && is_integer_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors of the wrong type return the zero value ("", 0, false, empty); check first.
  bool as_bool() const { return bool_; }
  double as_double() const { return number_; }
  int64_t as_int() const { return int_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // Object member by key (the first one when repeated), or nullptr (also for non-objects).
  const JsonValue* Find(std::string_view key) const;
  size_t size() const { return is_array() ? items_.size() : members_.size(); }

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_integer_ = false;
  double number_ = 0;
  int64_t int_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// InvalidArgument "<what>: malformed JSON at byte N: <reason>" on any error.
StatusOr<JsonValue> ReadJson(std::string_view text, const std::string& what, int max_depth = 64);

}  // namespace rag
