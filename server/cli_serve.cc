// `rag serve`: the HTTP API and the web page until SIGINT/SIGTERM.
#include <cstdio>

#include "server/api_keys.h"
#include "server/assistant.h"
#include "server/cli_commands.h"
#include "server/http_server.h"

namespace rag {

int RunServeCommand(const CommonFlags& common, const ServeFlags& flags) {
  // Keys first: a broken keys file fails in a moment, before a model is loaded.
  std::shared_ptr<const ApiKeys> keys;
  if (!flags.keys_file.empty()) {
    StatusOr<std::shared_ptr<const ApiKeys>> loaded = ApiKeys::Load(flags.keys_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "rag serve: %s\n", loaded.status().message().c_str());
      return 2;
    }
    keys = std::move(*loaded);
  }
  AssistantOptions options;
  options.data_dir = common.data_dir;
  options.embedder_path = ResolveEmbedder(common);
  std::string error;
  if (!ResolveAnswerFlags(flags.answer, &options, &error)) {
    std::fprintf(stderr, "rag serve: %s\n", error.c_str());
    return 2;
  }
  auto assistant = Assistant::Open(options);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag serve: %s\n", assistant.status().message().c_str());
    return 1;
  }
  ServerOptions server;
  server.host = flags.host;
  server.port = flags.port;
  server.threads = flags.threads;
  server.max_answers = flags.max_answers;
  server.web_dir = flags.web_dir;
  server.insecure = flags.insecure;
  server.api_keys = keys;
  Status st = RunServer(**assistant, server);
  if (!st.ok()) {
    std::fprintf(stderr, "rag serve: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace rag
