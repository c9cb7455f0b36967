// Decode speed of the CPU backend at batch 1: prefill a prompt, then greedy-decode one token
// per Forward through the paged KV cache. Prints one JSON line. Driven by cpu_decode_bench.sh,
// which also times Hugging Face transformers on the same model and CPU.
//
//   cpu_decode_bench MODEL_DIR [--threads N] [--prompt-tokens P] [--tokens T]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#ifdef RAG_HAVE_TOKENIZER
#include "engine/model_loader.h"
#endif

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR|FILE.gguf [--threads N] [--prompt-tokens P] [--tokens T]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int threads = 2, prompt_tokens = 16, tokens = 64;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prompt-tokens")) prompt_tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tokens")) tokens = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  rag::CpuBackendOptions options;
  options.num_threads = threads;
  const int total = prompt_tokens + tokens;
  options.num_blocks = (total + options.block_size - 1) / options.block_size;
  auto t0 = std::chrono::steady_clock::now();
#ifdef RAG_HAVE_TOKENIZER
  // A model directory or a .gguf file (LoadModel reads both; the tokenizer is not used here).
  auto model = rag::LoadModel(dir, options);
  if (!model.ok()) {
    std::fprintf(stderr, "error: %s\n", model.status().ToString().c_str());
    return 1;
  }
  auto backend = std::move(model->backend);
#else
  // Builds without PCRE2 (a bare GPU machine) have no LoadModel: model directories only.
  auto created = rag::CreateCpuBackend(dir, options);
  if (!created.ok()) {
    std::fprintf(stderr, "error: %s\n", created.status().ToString().c_str());
    return 1;
  }
  auto backend = std::move(*created);
#endif
  auto t1 = std::chrono::steady_clock::now();
  const int64_t vocab = backend->config().vocab_size;
  rag::SequenceInput seq;
  for (int i = 0; i < prompt_tokens; ++i) seq.tokens.push_back(static_cast<int32_t>((i * 7919 + 13) % vocab));
  for (int b = 0; b < options.num_blocks; ++b) seq.block_table.push_back(b);
  rag::ForwardBatch batch;
  batch.sequences.push_back(seq);
  auto logits = backend->Forward(batch);
  if (!logits.ok()) {
    std::fprintf(stderr, "error: %s\n", logits.status().ToString().c_str());
    return 1;
  }
  auto t2 = std::chrono::steady_clock::now();
  for (int step = 0; step < tokens; ++step) {
    const std::vector<float>& row = *logits;
    int32_t next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    batch.sequences[0].tokens = {next};
    batch.sequences[0].start_pos = prompt_tokens + step;
    logits = backend->Forward(batch);
    if (!logits.ok()) {
      std::fprintf(stderr, "error: %s\n", logits.status().ToString().c_str());
      return 1;
    }
  }
  auto t3 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("{\"impl\": \"rag-cpu\", \"threads\": %d, \"load_s\": %.3f, \"prefill_tokens\": %d, "
              "\"prefill_s\": %.4f, \"decode_tokens\": %d, \"decode_s\": %.4f, "
              "\"decode_tok_per_s\": %.3f}\n",
              threads, secs(t0, t1), prompt_tokens, secs(t1, t2), tokens, secs(t2, t3),
              tokens / secs(t2, t3));
  return 0;
}
