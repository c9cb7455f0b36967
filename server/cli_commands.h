// The subcommands of `rag` (DESIGN.md section 4). Each returns the process exit code and prints
// one clear line to stderr on failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rag {

struct CommonFlags {
  std::string data_dir = "data";
};

struct IngestFlags {
  std::vector<std::string> paths;
  std::string collection = "default";
  int jobs = 0;  // 0: one per core
  int chunk_words = 0;    // 0: ChunkOptions' default
  int chunk_overlap = -1; // -1: ChunkOptions' default
};
int RunIngestCommand(const CommonFlags& common, const IngestFlags& flags);

struct QueryFlags {
  std::string question;
  int top_k = 5;
  std::optional<std::string> collection;
  bool json = false;
};
int RunQueryCommand(const CommonFlags& common, const QueryFlags& flags);

struct RetrieveFlags {
  int top_k = 5;
  std::optional<std::string> collection;
};
int RunRetrieveCommand(const CommonFlags& common, const RetrieveFlags& flags);

struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 4;
  std::string web_dir;  // "" = the page built into the binary
};
int RunServeCommand(const CommonFlags& common, const ServeFlags& flags);

// Text on stdin -> JSON array of token ids on stdout (no BOS added).
int RunTokenizeCommand(const std::string& tokenizer_path);

struct GenerateFlags {
  std::string model_dir;
  bool raw = false;
  bool json = false;
  int max_tokens = 256;
  float temperature = 0.0f;  // greedy unless given
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  int threads = 0;  // 0: one per core
  std::vector<std::string> stop;  // stop strings
};
int RunGenerateCommand(const GenerateFlags& flags);

}  // namespace rag
