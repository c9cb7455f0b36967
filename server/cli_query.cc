// `rag query "Q"` (an answer with numbered citations) and `rag retrieve` (JSON lines of
// passages for every question on stdin).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "engine/citations.h"
#include "server/api_json.h"
#include "server/assistant.h"
#include "server/cli_commands.h"

namespace rag {
namespace {

StatusOr<std::unique_ptr<Assistant>> OpenExisting(const CommonFlags& common,
                                                   const AnswerFlags& answer = {}) {
  std::error_code ec;
  if (!std::filesystem::exists(common.data_dir + "/rag.db", ec)) {
    return NotFound("no documents in " + common.data_dir + " yet: run `rag ingest PATH --data " +
                    common.data_dir + "` first");
  }
  AssistantOptions options;
  options.data_dir = common.data_dir;
  options.embedder_path = ResolveEmbedder(common);
  std::string error;
  if (!ResolveAnswerFlags(answer, &options, &error)) return InvalidArgument(error);
  return Assistant::Open(options);
}

// Code-point index -> byte offset in UTF-8 text.
size_t ByteOffset(const std::string& s, size_t code_points) {
  size_t cp = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cp == code_points) return i;
      ++cp;
    }
  }
  return s.size();
}

// The answer with " [n]" markers after each cited span (n = passage index + 1), then the
// numbered sources with title, page and the passage.
void PrintAnswer(const QueryResult& r) {
  std::string out;
  size_t pos = 0;
  for (const auto& c : r.answer.citations) {
    const size_t end = ByteOffset(r.answer.answer, c.end);
    out += r.answer.answer.substr(pos, end - pos);
    for (int s : c.sources) out += " [" + std::to_string(s + 1) + "]";
    pos = end;
  }
  out += r.answer.answer.substr(pos);
  std::printf("%s\n", out.c_str());
  for (const auto& u : r.answer.unsupported) {
    std::printf("(not supported by the documents: \"%s\")\n", u.text.c_str());
  }
  if (!r.model.empty()) std::printf("(answered by %s)\n", r.model.c_str());
  std::vector<bool> cited(r.passages.size(), false);
  for (const auto& c : r.answer.citations) {
    for (int s : c.sources) cited[s] = true;
  }
  bool header = false;
  for (const auto& p : r.passages) {
    if (!cited[p.index]) continue;
    if (!header) std::printf("\nSources:\n");
    header = true;
    std::string text = p.chunk.text;
    for (char& ch : text) ch = ch == '\n' ? ' ' : ch;
    if (text.size() > 300) text = text.substr(0, ByteOffset(text, 297)) + "...";
    std::printf("[%d] %s, page %d (%s)%s%s\n    %s\n", p.index + 1, p.chunk.title.c_str(), p.chunk.page,
                p.chunk.filename.c_str(), p.chunk.section.empty() ? "" : ", section: ",
                p.chunk.section.c_str(), text.c_str());
  }
}

}  // namespace

std::string ResolveEmbedder(const CommonFlags& common) {
  if (common.embedder == "none") return "";
  if (!common.embedder.empty()) return common.embedder;
  std::error_code ec;
  return std::filesystem::exists(std::string(kDefaultEmbedderPath) + "/config.json", ec)
             ? kDefaultEmbedderPath
             : "";
}

bool ResolveAnswerFlags(const AnswerFlags& flags, AssistantOptions* options, std::string* error) {
  if (!flags.mode.empty() && flags.mode != "model" && flags.mode != "extractive") {
    *error = "--mode must be model or extractive, not \"" + flags.mode + "\"";
    return false;
  }
  options->mode = flags.mode.empty() ? "" : flags.mode;
  if (flags.mode == "extractive") {
    options->model_path.clear();  // no model is loaded for extractive answers
    return true;
  }
  options->model_path = flags.model_path;
  options->device = flags.device;
  options->gpu = flags.gpu;
  std::error_code ec;
  if (options->model_path.empty() && std::filesystem::exists(kDefaultModelPath, ec)) {
    options->model_path = kDefaultModelPath;
  }
  if (options->model_path.empty() && flags.mode == "model") {
    *error = std::string("--mode model needs --model DIR|FILE.gguf (the default model ") +
             kDefaultModelPath + " is missing: run scripts/setup.sh)";
    return false;
  }
  options->mode = options->model_path.empty() ? "extractive" : "model";
  return true;
}

int RunQueryCommand(const CommonFlags& common, const QueryFlags& flags) {
  auto assistant = OpenExisting(common, flags.answer);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag query: %s\n", assistant.status().message().c_str());
    return 1;
  }
  QueryRequest request;
  request.question = flags.question;
  request.top_k = flags.top_k;
  request.collection = flags.collection;
  auto result = (*assistant)->Query(request);
  if (!result.ok()) {
    std::fprintf(stderr, "rag query: %s\n", result.status().message().c_str());
    return 1;
  }
  if (flags.json) {
    std::printf("%s\n", QueryResultToJson(*result).dump().c_str());
  } else {
    PrintAnswer(*result);
  }
  return 0;
}

int RunRetrieveCommand(const CommonFlags& common, const RetrieveFlags& flags) {
  AnswerFlags retrieval_only;
  retrieval_only.mode = "extractive";  // no model is loaded to retrieve
  auto assistant = OpenExisting(common, retrieval_only);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag retrieve: %s\n", assistant.status().message().c_str());
    return 1;
  }
  std::string line;
  int failures = 0;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    QueryRequest request;
    request.question = line;
    request.top_k = flags.top_k;
    request.collection = flags.collection;
    auto passages = (*assistant)->Retrieve(request);
    if (!passages.ok()) {
      std::fprintf(stderr, "rag retrieve: %s\n", passages.status().message().c_str());
      ++failures;
      continue;
    }
    std::printf("%s\n", RetrieveResultToJson(line, *passages).dump().c_str());
  }
  std::fflush(stdout);
  return failures ? 1 : 0;
}

}  // namespace rag
