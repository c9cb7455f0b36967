// `rag`: the one binary of the document assistant (DESIGN.md section 4).
#include <CLI/CLI.hpp>
#include <algorithm>

#include "common/logging.h"
#include "server/cli_commands.h"
#ifdef RAG_HAVE_CUDA
#include "engine/cuda/bench_command.h"
#endif

namespace {

// --tp, --tp-rendezvous, --kv-cache, --gpu-memory, --step-tokens and --seats of the commands that
// run the model.
void AddGpuFlags(CLI::App* cmd, rag::GpuFlags* gpu,
                 const char* rendezvous_help =
                     "HOST:PORT: the --tp ranks are processes; this one is rank 0 "
                     "and waits there for `rag tp-worker` ranks 1..N-1 (default: "
                     "all in this process)") {
  cmd->add_option("--tp", gpu->tp,
                  "split the model over GPUs 0..N-1 (tensor parallel over NCCL; default 1)")
      ->check(CLI::Range(1, 8));
  cmd->add_option("--tp-rendezvous", gpu->tp_rendezvous, rendezvous_help);
  cmd->add_option(
         "--kv-cache", gpu->kv_cache,
         "GPU KV cache: fp8 (half the memory, e4m3 with a scale per token and head), bf16, or "
         "auto: fp8 for an FP8 model (rag quantize), else bf16 (default)")
      ->check(CLI::IsMember({"auto", "bf16", "fp8"}));
  cmd->add_option(
         "--gpu-memory", gpu->memory_fraction,
         "the most of each GPU's memory the model takes: weights, buffers and the KV cache, "
         "which gets what is left (default 0.9)")
      ->check(CLI::Range(0.05, 1.0));
  cmd->add_option("--step-tokens", gpu->step_tokens,
                  "GPU: the most tokens one model step feeds, every answer's next token and then "
                  "prompt chunks; smaller steps keep answers flowing while a long prompt is read, "
                  "larger ones read prompts faster (default 4096; 2048 halves the pauses for ~1% "
                  "throughput, docs/BENCHMARKS.md)")
      ->check(CLI::Range(rag::kMinStepTokens, rag::kMaxStepTokens));
  cmd->add_option("--seats", gpu->seats,
                  "GPU: the most requests answered at once, the rest wait their turn; more "
                  "seats share each step among more answers where the KV cache holds them "
                  "(default 64, at most 128)")
      ->check(CLI::Range(1, rag::kMaxSeats));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rag: a document assistant that answers with citations"};
  app.require_subcommand(1);
  app.fallthrough();  // --data and --log-level also after the subcommand, as DESIGN.md writes them
  rag::CommonFlags common;
  std::string log_level;
  app.add_option("--data", common.data_dir, "data directory (rag.db, files/)")->default_val("data");
  app.add_option("--log-level", log_level, "debug, info, warn or error (default: info)");
  app.add_option("--embedder", common.embedder,
                 std::string("sentence embedder for dense retrieval: a directory, or none for BM25 only (default: ") +
                     rag::kDefaultEmbedderPath + " when it exists)");

  rag::IngestFlags ingest;
  auto* ingest_cmd = app.add_subcommand("ingest", "ingest files or folders");
  ingest_cmd->add_option("paths", ingest.paths, "files or folders (.pdf .txt .md .html)")->required();
  ingest_cmd->add_option("--collection", ingest.collection, "collection to add the documents to");
  ingest_cmd->add_option("--jobs", ingest.jobs, "files parsed in parallel (default: one per core)");
  ingest_cmd->add_option("--chunk-words", ingest.chunk_words, "target words per chunk")->check(CLI::Range(16, 2000));
  ingest_cmd->add_option("--chunk-overlap", ingest.chunk_overlap, "words shared by consecutive chunks")->check(CLI::Range(0, 1000));

  rag::QueryFlags query;
  auto* query_cmd = app.add_subcommand("query", "answer a question with citations");
  query_cmd->add_option("question", query.question, "the question")->required();
  query_cmd->add_option("--top-k", query.top_k, "passages to retrieve (1-50)")->default_val(5);
  query_cmd->add_option("--collection", query.collection, "only this collection");
  query_cmd->add_flag("--json", query.json, "print the API's JSON response");
  const std::string model_help = std::string("a model directory or .gguf file (default: ") +
                                 rag::kDefaultModelPath + " when it exists)";
  const std::string mode_help =
      "model or extractive (default: model when there is a model, else extractive)";
  query_cmd->add_option("--model", query.answer.model_path, model_help);
  query_cmd->add_option("--mode", query.answer.mode, mode_help)->check(CLI::IsMember({"model", "extractive"}));
  const std::string device_help =
      "cpu, cuda, or auto: cuda when this build has it and a GPU is present (default)";
  query_cmd->add_option("--device", query.answer.device, device_help)->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  AddGpuFlags(query_cmd, &query.answer.gpu);

  rag::RetrieveFlags retrieve;
  auto* retrieve_cmd = app.add_subcommand("retrieve", "questions on stdin, one a line; JSON lines out");
  retrieve_cmd->add_option("--top-k", retrieve.top_k, "passages per question (1-50)")->default_val(5);
  retrieve_cmd->add_option("--collection", retrieve.collection, "only this collection");

  rag::ServeFlags serve;
  auto* serve_cmd = app.add_subcommand("serve", "HTTP API and web page");
  serve_cmd->add_option("--host", serve.host, "address to bind")->default_val("127.0.0.1");
  serve_cmd->add_option("--port", serve.port, "port")->default_val(8080)->check(CLI::Range(1, 65535));
  serve_cmd->add_option("--threads", serve.threads, "HTTP threads")->default_val(4)->check(CLI::Range(1, 256));
  auto* max_answers_option =
      serve_cmd
          ->add_option("--max-answers", serve.max_answers,
                       "model answers made at once (more get 429; default 64, or --seats when "
                       "that is more)")
          ->default_val(64)
          ->check(CLI::Range(1, 1024));
  serve_cmd->add_option("--web-dir", serve.web_dir, "serve the page from this folder instead of the built-in copy");
  serve_cmd->add_option("--keys", serve.keys_file,
                        "API keys file (JSON, docs/API.md): every /v1 route then needs "
                        "Authorization: Bearer KEY, and each key sees only its collections");
  serve_cmd->add_flag("--insecure", serve.insecure,
                      "allow a --host other than loopback without --keys");
  serve_cmd->add_option("--model", serve.answer.model_path, model_help);
  serve_cmd->add_option("--mode", serve.answer.mode, mode_help)->check(CLI::IsMember({"model", "extractive"}));
  serve_cmd->add_option("--device", serve.answer.device, device_help)->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  AddGpuFlags(serve_cmd, &serve.answer.gpu);

  rag::EvalAnswersFlags eval_answers;
  auto* eval_cmd = app.add_subcommand("eval-answers", "answer QA.jsonl questions; report answer support and citation precision/recall");
  eval_cmd->add_option("qa", eval_answers.qa_path, "questions, one JSON object a line ({\"question\", ...})")->required();
  eval_cmd->add_option("--top-k", eval_answers.top_k, "passages per question (1-50)")->default_val(5)->check(CLI::Range(1, 50));
  eval_cmd->add_option("--limit", eval_answers.limit, "only the first N questions (0: all)")->default_val(0)->check(CLI::NonNegativeNumber);
  eval_cmd->add_flag("--json", eval_answers.json_only, "print only the JSON report");
  eval_cmd->add_option("--model", eval_answers.answer.model_path, model_help);
  eval_cmd->add_option("--mode", eval_answers.answer.mode, mode_help)->check(CLI::IsMember({"model", "extractive"}));
  eval_cmd->add_option("--device", eval_answers.answer.device, device_help)->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  AddGpuFlags(eval_cmd, &eval_answers.answer.gpu);

  rag::EvalRetrievalFlags eval_retrieval;
  auto* eval_retrieval_cmd = app.add_subcommand(
      "eval-retrieval", "retrieve for QA.jsonl questions; report recall@1, recall@k and MRR@10 against their gold");
  eval_retrieval_cmd->add_option("qa", eval_retrieval.qa_path, "questions, one JSON object a line ({\"question\", \"gold\"})")->required();
  eval_retrieval_cmd->add_option("--top-k", eval_retrieval.top_k, "passages per question (1-50)")->default_val(10)->check(CLI::Range(1, 50));
  eval_retrieval_cmd->add_option("--k", eval_retrieval.k, "the k of recall@k")->default_val(5)->check(CLI::Range(1, 50));
  eval_retrieval_cmd->add_option("--limit", eval_retrieval.limit, "only the first N questions (0: all)")->default_val(0)->check(CLI::NonNegativeNumber);
  eval_retrieval_cmd->add_option("--collection", eval_retrieval.collection, "only this collection");
  eval_retrieval_cmd->add_flag("--json", eval_retrieval.json_only, "print only the JSON report");

  auto* reindex_cmd = app.add_subcommand("reindex", "embed every document again (after changing --embedder)");

  std::string tokenizer_path;
  auto* tokenize_cmd = app.add_subcommand("tokenize", "text on stdin -> JSON array of token ids (no BOS)");
  tokenize_cmd->add_option("--tokenizer", tokenizer_path, "a Hugging Face tokenizer.json")->required();

  rag::GenerateFlags generate;
  auto* generate_cmd = app.add_subcommand("generate", "prompt on stdin -> the model's continuation (CPU)");
  generate_cmd->add_option("--model", generate.model_dir, "model: a Hugging Face directory (config.json, *.safetensors, tokenizer.json) or a .gguf file")->required();
  generate_cmd->add_flag("--raw", generate.raw, "tokenize stdin exactly as given: no BOS, no chat template");
  generate_cmd->add_flag("--json", generate.json, "print {\"prompt_ids\",\"ids\",\"text\",\"finish_reason\"}");
  generate_cmd->add_option("--max-tokens", generate.max_tokens, "tokens to generate at most")->default_val(256)->check(CLI::Range(1, 1 << 20));
  generate_cmd->add_option("--temperature", generate.temperature, "0 is greedy")->default_val(0)->check(CLI::Range(0.0, 100.0));
  generate_cmd->add_option("--top-k", generate.top_k, "0 is off")->default_val(0)->check(CLI::NonNegativeNumber);
  generate_cmd->add_option("--top-p", generate.top_p, "1 is off")->default_val(1)->check(CLI::Range(0.0, 1.0));
  generate_cmd->add_option("--seed", generate.seed, "random seed for sampling")->default_val(0);
  generate_cmd->add_option("--stop", generate.stop, "stop before this text (repeatable)");
  generate_cmd->add_option("--device", generate.device, device_help)->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  AddGpuFlags(generate_cmd, &generate.gpu);
  generate_cmd->add_option("--threads", generate.threads, "CPU threads (default: one per core)")->default_val(0)->check(CLI::NonNegativeNumber);

  rag::QuantizeFlags quantize;
  auto* quantize_cmd = app.add_subcommand(
      "quantize", "write a model's decoder projections as FP8 (e4m3, a scale per output row)");
  quantize_cmd->add_option("--model", quantize.model_dir, "a Hugging Face model directory (bf16, f16 or f32 safetensors)")->required();
  quantize_cmd->add_option("--out", quantize.out_dir, "the directory to write the FP8 model to")->required();
  quantize_cmd->add_flag("--force", quantize.force, "replace a model.safetensors already in --out");

  rag::TpWorkerFlags tp_worker;
  auto* tp_worker_cmd = app.add_subcommand(
      "tp-worker",
      "one GPU of a model split over processes: follows the rank 0 at --tp-rendezvous");
  tp_worker_cmd
      ->add_option("--model", tp_worker.model_dir,
                   "the model directory rank 0 serves (safetensors)")
      ->required();
  tp_worker_cmd->add_option("--rank", tp_worker.rank, "this process's rank, 1..--tp minus 1")
      ->required()
      ->check(CLI::Range(1, 7));
  tp_worker_cmd
      ->add_option("--gpu", tp_worker.device, "the CUDA device to run on (default: the rank)")
      ->check(CLI::Range(0, 63));
  AddGpuFlags(tp_worker_cmd, &tp_worker.gpu,
              "HOST:PORT where rank 0 (rag serve ... --tp-rendezvous) waits");

  auto* bench_cmd = app.add_subcommand(
      "bench", "time to first token and decode tokens/s of the CUDA backend (rag bench --help)");
  // Every argument after `bench` goes to the bench's own parser (engine/cuda/bench_command.cc,
  // shared with the server-less rag-bench binary), --help included.
  bench_cmd->prefix_command();
  bench_cmd->allow_extras();
  bench_cmd->fallthrough(false);
  bench_cmd->set_help_flag();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!log_level.empty()) {
    rag::LogLevel level;
    if (!rag::ParseLogLevel(log_level, &level)) {
      std::fprintf(stderr, "rag: unknown log level \"%s\" (debug, info, warn, error)\n", log_level.c_str());
      return 2;
    }
    rag::SetLogLevel(level);
  }
  if (*bench_cmd) {
#ifdef RAG_HAVE_CUDA
    return rag::RunBenchCommand(bench_cmd->remaining(), {"bench"});
#else
    std::fprintf(stderr, "rag bench: this build has no CUDA backend (configure with -DRAG_CUDA=ON)\n");
    return 1;
#endif
  }
  if (*ingest_cmd) return rag::RunIngestCommand(common, ingest);
  if (*query_cmd) return rag::RunQueryCommand(common, query);
  if (*retrieve_cmd) return rag::RunRetrieveCommand(common, retrieve);
  if (*eval_cmd) return rag::RunEvalAnswersCommand(common, eval_answers);
  if (*eval_retrieval_cmd) return rag::RunEvalRetrievalCommand(common, eval_retrieval);
  if (*reindex_cmd) return rag::RunReindexCommand(common);
  if (*tokenize_cmd) return rag::RunTokenizeCommand(tokenizer_path);
  if (*generate_cmd) return rag::RunGenerateCommand(generate);
  if (*quantize_cmd) return rag::RunQuantizeCommand(quantize);
  if (*tp_worker_cmd) return rag::RunTpWorkerCommand(tp_worker);
  // Seats beyond the answers the server takes at once would stay empty: the default follows.
  if (max_answers_option->count() == 0) {
    serve.max_answers = std::max(serve.max_answers, serve.answer.gpu.seats);
  }
  return rag::RunServeCommand(common, serve);
}
