// The web page: GET / (index.html) and the other files of web/, from the copy embedded at
// build time, or from ServerOptions::web_dir when set (development: edit, reload).
#include <string>

#include "common/file_util.h"
#include "server/http_internal.h"
#include "server/web_assets.h"

namespace rag {
namespace {

std::string MimeTypeFor(std::string_view path) {
  const std::string ext = FileExtension(path);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// A request path names a page file when every segment is [A-Za-z0-9_.-]+ and none starts with
// a dot (no "..", no hidden files): nothing outside web/ can be reached.
bool IsPagePath(std::string_view name) {
  if (name.empty()) return false;
  size_t segment_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '/') {
      if (i == segment_start || name[segment_start] == '.') return false;
      segment_start = i + 1;
      continue;
    }
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<HttpReply> HandleStatic(const ServerContext& ctx, std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  const std::string name = path == "/" ? "index.html" : std::string(path.substr(1));
  if (!IsPagePath(name)) return std::nullopt;

  HttpReply reply;
  if (!ctx.options.web_dir.empty()) {
    StatusOr<std::string> bytes = ReadFileToString(ctx.options.web_dir + "/" + name);
    if (!bytes.ok()) return std::nullopt;  // missing, or a directory
    reply.body = std::move(*bytes);
  } else {
    const WebAsset* found = nullptr;
    for (const WebAsset& asset : EmbeddedWebAssets()) {
      if (name == asset.path) found = &asset;
    }
    if (found == nullptr) return std::nullopt;
    reply.body.assign(reinterpret_cast<const char*>(found->data), found->size);
  }
  reply.content_type = MimeTypeFor(name);
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return reply;
}

}  // namespace rag
