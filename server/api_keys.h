// API keys of `rag serve --keys FILE` (docs/API.md, "API keys"): who may call the API, and which
// collections each caller sees.
//
// The keys file is JSON:
//   {"keys": [{"name": "alice", "key": "3f9c...", "collections": ["hr", "eng"]},
//             {"name": "ops",   "key": "b71e...", "collections": ["*"]}]}
// - name: [A-Za-z0-9_.-]{1,64}, unique; it is what logs show (never the key).
// - key: at least kMinKeyLength printable ASCII characters without spaces (it travels in an
//   HTTP header), unique.
// - collections: a non-empty list of collection names, or ["*"] for an admin key that sees
//   every collection (and /metrics). A document uploaded without a collection is in "default".
// Unknown fields are refused, like everywhere in the API: a typo must not silently widen access.
//
// Keys are kept only as SHA-256 digests, and a presented key is compared with every digest in
// constant time, so neither the key's bytes nor which entry matched leaks through timing.
// Thread-safety: immutable after Parse/Load; any thread may call Find.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rag {

// What one request may see. Without keys every request gets the default: all collections.
struct Access {
  std::string key_name;                  // the key's name for logs; "" without keys
  bool all_collections = true;           // no keys, or an admin ("*") key
  std::vector<std::string> collections;  // when !all_collections: the only ones visible (non-empty)

  bool MaySee(std::string_view collection) const;
  // The key's prefix-cache scope (GenerationRequest::cache_scope): 0 without keys, else a hash of
  // the key's name, so that no key can time another's cached prompts.
  uint64_t CacheScope() const;
  // Admin keys (and servers without keys) may read server-wide figures such as /metrics.
  bool admin() const { return all_collections; }
};

class ApiKeys {
 public:
  static constexpr size_t kMinKeyLength = 16;

  // Parses the keys file's text. InvalidArgument naming the entry (by index and name, never
  // the key) for a malformed file, an empty list, a duplicate name or key, an empty, short or
  // non-printable key, or a bad collection list.
  static StatusOr<std::shared_ptr<const ApiKeys>> Parse(std::string_view json_text);
  // Reads and parses the file; errors start with the path. Logs a warning when other users may
  // read it.
  static StatusOr<std::shared_ptr<const ApiKeys>> Load(const std::string& path);

  // The access of the presented key; nullopt when it is no key of the file.
  std::optional<Access> Find(std::string_view presented) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string digest;  // SHA-256 hex of the key
    Access access;
  };
  std::vector<Entry> entries_;
};

}  // namespace rag
