// How far a model's FP8 weights (`rag quantize`) move its answers from the original, on the CPU
// backend: driven by bench/fp8_accuracy.sh, which makes both model directories from a trained
// model and the token windows from real documents, and measures the same with transformers.
//
//   fp8_accuracy_bench ORIG_DIR FP8_DIR WINDOWS [--threads N] [--greedy-prompt P] [--greedy-tokens G]
//                      [--device cpu|cuda] [--kv-cache auto|bf16|fp8]
// --device cuda (builds with the CUDA backend) runs both models on GPU 0: the FP8 model's
// teacher-forced windows then take the FP8 GEMMs (activations rounded to e4m3 per row), its
// greedy decode steps the FP8 GEMVs. --kv-cache sets the second model's KV cache there (the
// original's stays bf16; auto, the default, is FP8 for an FP8 model); FP8_DIR = ORIG_DIR with
// --kv-cache fp8 measures the FP8 KV cache alone.
//
// FP8_DIR is written first (engine/quantize.h, what `rag quantize` runs) when it holds no model.
// WINDOWS: one token window a line (ids separated by spaces). For every window both models read
// it teacher-forced (logits at every position); compared at each position: the argmax, the
// largest logit difference against the largest logit, KL(orig || fp8) of the softmaxes, and each
// model's negative log-likelihood of the window's next token (perplexity). Then from the first P
// tokens of each window both models decode G tokens greedily on their own: how many tokens of
// the FP8 model's continuation equal the original's before the first difference, and in all.
// Prints one JSON line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/kv_cache_type.h"
#include "engine/quantize.h"
#ifdef RAG_FP8_ACCURACY_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace {

struct Args {
  std::string orig, fp8, windows, device = "cpu", kv_cache = "auto";
  int threads = 2, greedy_prompt = 128, greedy_tokens = 64;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  if (argc < 4) return false;
  a->orig = argv[1];
  a->fp8 = argv[2];
  a->windows = argv[3];
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) a->threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--greedy-prompt")) a->greedy_prompt = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--greedy-tokens")) a->greedy_tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--device")) a->device = argv[i + 1];
    else if (!std::strcmp(argv[i], "--kv-cache")) a->kv_cache = argv[i + 1];
    else return false;
  }
  return a->threads > 0 && a->greedy_prompt > 0 && a->greedy_tokens > 0 &&
         (a->device == "cpu" || a->device == "cuda") &&
         rag::ParseKvCacheType(a->kv_cache).ok() &&
         (a->device == "cuda" || a->kv_cache != "fp8");
}

std::vector<std::vector<int32_t>> ReadWindows(const std::string& path) {
  std::vector<std::vector<int32_t>> windows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> w;
    for (int32_t id; ids >> id;) w.push_back(id);
    if (!w.empty()) windows.push_back(std::move(w));
  }
  return windows;
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  std::exit(1);
}

// A model on the CPU (or CUDA) backend with a cache for one sequence of up to max_tokens tokens.
class Model {
 public:
  // kv_cache: the CUDA backend's (ParseKvCacheType's names).
  Model(const std::string& dir, const Args& args, int max_tokens, const std::string& kv_cache) {
    constexpr int kBlockSize = 16;
    const int blocks = (max_tokens + kBlockSize - 1) / kBlockSize;
    rag::StatusOr<std::unique_ptr<rag::Backend>> created = rag::Unsupported("no backend");
    if (args.device == "cpu") {
      rag::CpuBackendOptions options;
      options.num_threads = args.threads;
      options.block_size = kBlockSize;
      options.num_blocks = blocks;
      created = rag::CreateCpuBackend(dir, options);
    } else {
#ifdef RAG_FP8_ACCURACY_CUDA
      rag::CudaBackendOptions options;
      options.block_size = kBlockSize;
      options.num_blocks = blocks;
      options.max_seq_len = blocks * kBlockSize;
      options.max_logit_rows = max_tokens;
      auto kv = rag::ParseKvCacheType(kv_cache);
      if (!kv.ok()) Fail(kv.status().ToString());
      options.kv_cache = *kv;
      auto cuda = rag::CreateCudaBackend(dir, options);
      if (cuda.ok()) created = std::unique_ptr<rag::Backend>(std::move(*cuda));
      else created = cuda.status();
#else
      Fail("built without the CUDA backend");
#endif
    }
    if (!created.ok()) Fail(dir + ": " + created.status().ToString());
    backend_ = std::move(*created);
    for (int b = 0; b < blocks; ++b) table_.push_back(b);
  }
  int64_t vocab() const { return backend_->config().vocab_size; }

  // Logits of every position of `tokens` fed from start_pos (rows of vocab()), or of the last.
  std::vector<float> Forward(const std::vector<int32_t>& tokens, int start_pos, bool all_logits) {
    rag::ForwardBatch batch;
    rag::SequenceInput s;
    s.tokens = tokens;
    s.start_pos = start_pos;
    s.block_table = table_;
    s.all_logits = all_logits;
    batch.sequences.push_back(std::move(s));
    auto logits = backend_->Forward(batch);
    if (!logits.ok()) Fail(logits.status().ToString());
    return std::move(*logits);
  }

  // Greedy continuation of `prompt`, `n` tokens.
  std::vector<int32_t> Greedy(const std::vector<int32_t>& prompt, int n) {
    std::vector<int32_t> out;
    std::vector<float> row = Forward(prompt, 0, false);
    for (int i = 0; i < n; ++i) {
      out.push_back(static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
      if (i + 1 < n) row = Forward({out.back()}, static_cast<int>(prompt.size()) + i, false);
    }
    return out;
  }

 private:
  std::unique_ptr<rag::Backend> backend_;
  std::vector<int32_t> table_;
};

// log-softmax of one row (double precision).
std::vector<double> LogSoftmax(const float* row, int64_t n) {
  const double max = *std::max_element(row, row + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(row[i] - max);
  const double log_z = max + std::log(sum);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = row[i] - log_z;
  return out;
}

int64_t Argmax(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: %s ORIG_DIR FP8_DIR WINDOWS [--threads N] [--greedy-prompt P] [--greedy-tokens G]\n"
                 "       [--device cpu|cuda] [--kv-cache auto|bf16|fp8 (cuda)]\n",
                 argv[0]);
    return 2;
  }
  if (!std::ifstream(args.fp8 + "/model.safetensors")) {
    auto report = rag::QuantizeModelFp8(args.orig, args.fp8, /*force=*/false);
    if (!report.ok()) Fail(report.status().ToString());
    std::fprintf(stderr, "quantized %lld matrices to FP8 e4m3 (relative RMS error %.4f) into %s\n",
                 static_cast<long long>(report->quantized), report->relative_rms_error, args.fp8.c_str());
  }
  const auto windows = ReadWindows(args.windows);
  if (windows.empty()) Fail(args.windows + ": no token windows");
  size_t longest = 0;
  for (const auto& w : windows) longest = std::max(longest, w.size());
  const int max_tokens = static_cast<int>(std::max<size_t>(longest, args.greedy_prompt + args.greedy_tokens));
  Model orig(args.orig, args, max_tokens, "bf16"), fp8(args.fp8, args, max_tokens, args.kv_cache);
  const int64_t V = orig.vocab();
  if (fp8.vocab() != V) Fail("the two models have different vocabularies");

  int64_t positions = 0, top1_agree = 0;
  double nll_orig = 0, nll_fp8 = 0, kl_sum = 0, kl_max = 0, rel_err_sum = 0, rel_err_max = 0;
  for (const auto& w : windows) {
    const std::vector<float> a = orig.Forward(w, 0, true), b = fp8.Forward(w, 0, true);
    for (size_t p = 0; p + 1 < w.size(); ++p) {  // the last position has no next token to score
      const float* ra = a.data() + p * V;
      const float* rb = b.data() + p * V;
      top1_agree += Argmax(ra, V) == Argmax(rb, V);
      double diff = 0, scale = 0;
      for (int64_t i = 0; i < V; ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(ra[i]) - rb[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(ra[i])));
      }
      rel_err_sum += diff / scale;
      rel_err_max = std::max(rel_err_max, diff / scale);
      const std::vector<double> la = LogSoftmax(ra, V), lb = LogSoftmax(rb, V);
      double kl = 0;
      for (int64_t i = 0; i < V; ++i) kl += std::exp(la[i]) * (la[i] - lb[i]);
      kl_sum += kl;
      kl_max = std::max(kl_max, kl);
      nll_orig -= la[static_cast<size_t>(w[p + 1])];
      nll_fp8 -= lb[static_cast<size_t>(w[p + 1])];
      ++positions;
    }
  }

  int64_t greedy_same = 0, greedy_total = 0, prefix_sum = 0, identical = 0;
  int runs = 0;
  for (const auto& w : windows) {
    if (w.size() < static_cast<size_t>(args.greedy_prompt)) continue;
    const std::vector<int32_t> prompt(w.begin(), w.begin() + args.greedy_prompt);
    const auto ga = orig.Greedy(prompt, args.greedy_tokens), gb = fp8.Greedy(prompt, args.greedy_tokens);
    size_t prefix = 0;
    while (prefix < ga.size() && ga[prefix] == gb[prefix]) ++prefix;
    for (size_t i = 0; i < ga.size(); ++i) greedy_same += ga[i] == gb[i];
    greedy_total += static_cast<int64_t>(ga.size());
    prefix_sum += static_cast<int64_t>(prefix);
    identical += prefix == ga.size();
    ++runs;
  }

  std::printf(
      "{\"impl\": \"rag-%s\", \"kv_cache\": \"%s\", \"same_weights\": %s, \"windows\": %zu, \"positions\": %lld, \"top1_agreement\": %.4f, "
      "\"logit_rel_error_mean\": %.4f, \"logit_rel_error_max\": %.4f, \"kl_mean\": %.5f, \"kl_max\": %.4f, "
      "\"ppl_orig\": %.3f, \"ppl_fp8\": %.3f, \"greedy_runs\": %d, \"greedy_tokens\": %d, "
      "\"greedy_same_position\": %.4f, \"greedy_mean_identical_prefix\": %.1f, \"greedy_identical_runs\": %lld}\n",
      args.device.c_str(), args.kv_cache.c_str(), args.fp8 == args.orig ? "true" : "false", windows.size(), static_cast<long long>(positions),
      static_cast<double>(top1_agree) / static_cast<double>(positions), rel_err_sum / positions, rel_err_max,
      kl_sum / positions, kl_max, std::exp(nll_orig / positions), std::exp(nll_fp8 / positions), runs,
      args.greedy_tokens, greedy_total ? static_cast<double>(greedy_same) / greedy_total : 0.0,
      runs ? static_cast<double>(prefix_sum) / runs : 0.0, static_cast<long long>(identical));
  return 0;
}
