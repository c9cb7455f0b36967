// The subcommands of `rag` (DESIGN.md section 4). Each returns the process exit code and prints
// one clear line to stderr on failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/gpu_flags.h"

namespace rag {

struct CommonFlags {
  std::string data_dir = "data";
  std::string embedder;  // --embedder DIR|none; "" = the bundled default when present
};

// The bundled sentence embedder, relative to the working directory (scripts/setup.sh fetches it).
inline constexpr const char kDefaultEmbedderPath[] = "models/all-MiniLM-L6-v2";
// The embedder directory for AssistantOptions: --embedder, "" for none, else the bundled one
// when it exists (BM25 only without it).
std::string ResolveEmbedder(const CommonFlags& common);

int RunReindexCommand(const CommonFlags& common);

// `rag quantize --model DIR --out DIR [--force]`: FP8 weights (engine/quantize.h).
struct QuantizeFlags {
  std::string model_dir, out_dir;
  bool force = false;
};
int RunQuantizeCommand(const QuantizeFlags& flags);

// --model and --mode of query, serve and eval-answers.
struct AnswerFlags {
  std::string model_path;  // a model directory or .gguf file; "" = the default model if present
  std::string mode;        // "model", "extractive" or "" (model when there is a model)
  std::string device = "auto";  // cpu, cuda or auto
  GpuFlags gpu;                  // --tp, --kv-cache, --gpu-memory
};
// The bundled default model, relative to the working directory (scripts/setup.sh fetches it).
inline constexpr const char kDefaultModelPath[] = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
struct AssistantOptions;
// Fills options->model_path and options->mode from the flags: --mode extractive loads no model;
// otherwise --model, else the default model file when it exists, else extractive (and an error
// when --mode model was asked for without any model).
[[nodiscard]] bool ResolveAnswerFlags(const AnswerFlags& flags, AssistantOptions* options,
                                      std::string* error);

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
  AnswerFlags answer;
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
  int max_answers = 64;
  std::string web_dir;  // "" = the page built into the binary
  bool insecure = false;  // listen on a non-loopback address without API keys
  std::string keys_file;  // API keys (server/api_keys.h); "" = none
  AnswerFlags answer;
};
int RunServeCommand(const CommonFlags& common, const ServeFlags& flags);

// `rag eval-answers QA.jsonl`: answers every question and reports ALCE-style answer support,
// citation precision and recall (cli_eval_answers.cc).
struct EvalAnswersFlags {
  std::string qa_path;
  int top_k = 5;
  int limit = 0;  // 0: every question
  bool json_only = false;
  AnswerFlags answer;
};
int RunEvalAnswersCommand(const CommonFlags& common, const EvalAnswersFlags& flags);

struct EvalRetrievalFlags {
  std::string qa_path;
  int top_k = 10;  // passages retrieved per question (MRR@10 reads the first 10)
  int k = 5;       // the k of recall@k
  int limit = 0;   // 0: every question
  std::optional<std::string> collection;
  bool json_only = false;
};
int RunEvalRetrievalCommand(const CommonFlags& common, const EvalRetrievalFlags& flags);

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
  std::string device = "auto";    // cpu, cuda or auto
  GpuFlags gpu;                   // --tp, --kv-cache, --gpu-memory
  std::vector<std::string> stop;  // stop strings
};
int RunGenerateCommand(const GenerateFlags& flags);

// `rag tp-worker`: rank `rank` of a model split over processes (server/model_device.h,
// RunTpFollower), until rank 0 ends.
struct TpWorkerFlags {
  std::string model_dir;
  int rank = 1;
  int device = -1;  // -1: GPU `rank`
  GpuFlags gpu;     // --tp and --tp-rendezvous required; the rest as rank 0's
};
int RunTpWorkerCommand(const TpWorkerFlags& flags);

}  // namespace rag
