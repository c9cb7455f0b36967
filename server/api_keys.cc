#include "server/api_keys.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "common/file_util.h"
#include "common/json_util.h"
#include "common/logging.h"
#include "server/http_internal.h"

namespace rag {
namespace {

bool ValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// Equal strings of equal length, looking at every byte whatever the first difference.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // digests: always 64 characters
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

StatusOr<Access> ParseCollections(const Json& entry, const std::string& where) {
  if (!entry.contains("collections") || !entry["collections"].is_array() ||
      entry["collections"].empty()) {
    return InvalidArgument(where +
                           ": \"collections\" must be a non-empty list of collection "
                           "names, or [\"*\"] for every collection");
  }
  Access access;
  access.all_collections = false;
  for (const Json& c : entry["collections"]) {
    if (!c.is_string()) return InvalidArgument(where + ": collection names must be strings");
    const std::string name = c.get<std::string>();
    if (name == "*") {
      if (entry["collections"].size() != 1) {
        return InvalidArgument(where + ": \"*\" (every collection) must be alone in its list");
      }
      access.all_collections = true;
      continue;
    }
    if (Status valid = ValidateCollection(name); !valid.ok()) {
      return InvalidArgument(where + ": " + valid.message());
    }
    if (std::find(access.collections.begin(), access.collections.end(), name) ==
        access.collections.end()) {
      access.collections.push_back(name);
    }
  }
  return access;
}

}  // namespace

bool Access::MaySee(std::string_view collection) const {
  return all_collections ||
         std::find(collections.begin(), collections.end(), collection) != collections.end();
}

uint64_t Access::CacheScope() const {
  if (key_name.empty()) return 0;
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a: stable across runs and builds
  for (unsigned char c : key_name) h = (h ^ c) * 0x100000001b3ULL;
  return h == 0 ? 1 : h;  // 0 is the shared scope of a server without keys
}

StatusOr<std::shared_ptr<const ApiKeys>> ApiKeys::Parse(std::string_view json_text) {
  StatusOr<Json> root = ParseJsonObject(json_text, {"keys"});
  if (!root.ok()) return root.status();
  if (!root->contains("keys") || !(*root)["keys"].is_array() || (*root)["keys"].empty()) {
    return InvalidArgument(
        "expected {\"keys\": [{\"name\", \"key\", \"collections\"}, ...]} with "
        "at least one key");
  }
  auto keys = std::shared_ptr<ApiKeys>(new ApiKeys());
  std::set<std::string> names;
  std::vector<std::string> digest_names;  // the name of each digest, for duplicate messages
  const Json& list = (*root)["keys"];
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& entry = list[i];
    std::string where = "keys[" + std::to_string(i) + "]";
    if (!entry.is_object()) return InvalidArgument(where + " must be an object");
    RAG_RETURN_IF_ERROR(CheckKnownFields(entry, {"name", "key", "collections"}).WithPrefix(where));
    StatusOr<std::string> name = GetString(entry, "name");
    if (!name.ok()) return name.status().WithPrefix(where);
    if (!ValidKeyName(*name)) {
      return InvalidArgument(where + ": name must be 1-64 characters of [A-Za-z0-9_.-]");
    }
    where += " (\"" + *name + "\")";
    if (!names.insert(*name).second) return InvalidArgument(where + ": the name is used twice");
    StatusOr<std::string> key = GetString(entry, "key");
    if (!key.ok()) return key.status().WithPrefix(where);
    if (key->empty()) return InvalidArgument(where + ": the key is empty");
    if (!std::all_of(key->begin(), key->end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return InvalidArgument(where + ": the key must be printable ASCII without spaces");
    }
    if (key->size() < kMinKeyLength) {
      return InvalidArgument(where + ": the key is shorter than " + std::to_string(kMinKeyLength) +
                             " characters (make one with: openssl rand -hex 24)");
    }
    RAG_ASSIGN_OR_RETURN(Access access, ParseCollections(entry, where));
    access.key_name = *name;
    const std::string digest = Sha256Hex(*key);
    for (size_t j = 0; j < keys->entries_.size(); ++j) {
      if (keys->entries_[j].digest == digest) {
        return InvalidArgument(where + ": the same key as \"" + digest_names[j] +
                               "\" (every key must be different)");
      }
    }
    keys->entries_.push_back({digest, std::move(access)});
    digest_names.push_back(*name);
  }
  return std::shared_ptr<const ApiKeys>(std::move(keys));
}

StatusOr<std::shared_ptr<const ApiKeys>> ApiKeys::Load(const std::string& path) {
  StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithPrefix("keys file " + path);
  StatusOr<std::shared_ptr<const ApiKeys>> keys = Parse(*text);
  if (!keys.ok()) return keys.status().WithPrefix("keys file " + path);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    RAG_LOG(WARN) << "keys file " << path << " is readable by other users; chmod 600 it";
  }
  return keys;
}

std::optional<Access> ApiKeys::Find(std::string_view presented) const {
  const std::string digest = Sha256Hex(presented);
  const Entry* match = nullptr;
  for (const Entry& e : entries_) {  // no early exit: every entry is compared
    if (ConstantTimeEquals(e.digest, digest)) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  return match->access;
}

}  // namespace rag
