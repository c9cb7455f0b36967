// Times LoadBertEmbedder + Embed on the texts of a file (one text a line), for
// bench/embed_bench.sh. Prints one JSON line: {"texts", "seconds", "texts_per_s", "first"}
// ("first": the first 4 floats of the first embedding, to check both sides embed the same).
//
//   embed_bench MODEL_DIR TEXTS_FILE [--threads N] [--batch N] [--device cpu|cuda]
// (--device cuda: the encoder on GPU 0, engine/cuda/cuda_bert.h; builds with the CUDA backend.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/bert/embedder.h"
#ifdef RAG_EMBED_BENCH_CUDA
#include "engine/cuda/cuda_bert.h"
#endif

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: embed_bench MODEL_DIR TEXTS_FILE [--threads N] [--batch N] [--device cpu|cuda]\n");
    return 2;
  }
  int threads = 2;
  size_t batch = 32;
  std::string device = "cpu";
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--batch")
      batch = static_cast<size_t>(std::atoi(argv[i + 1]));
    else if (flag == "--device")
      device = argv[i + 1];
  }
  std::ifstream in(argv[2]);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  rag::BertEncoderFactory encoder;
  if (device == "cuda") {
#ifdef RAG_EMBED_BENCH_CUDA
    encoder = [](const rag::BertHostWeights& w) { return rag::CreateCudaBertEncoder(w, 0); };
#else
    std::fprintf(stderr, "embed_bench: built without the CUDA backend\n");
    return 2;
#endif
  } else if (device != "cpu") {
    std::fprintf(stderr, "embed_bench: --device takes cpu or cuda\n");
    return 2;
  }
  auto embedder = rag::LoadBertEmbedder(argv[1], threads, encoder);
  if (!embedder.ok()) {
    std::fprintf(stderr, "embed_bench: %s\n", embedder.status().ToString().c_str());
    return 1;
  }
  // Warm-up on one batch, untimed (page faults of the weights, thread start).
  std::vector<std::string> warm(
      texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(std::min(batch, texts.size())));
  if (!(*embedder)->Embed(warm).ok()) return 1;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> first;
  for (size_t i = 0; i < texts.size(); i += batch) {
    std::vector<std::string> part(
        texts.begin() + static_cast<std::ptrdiff_t>(i),
        texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), i + batch)));
    auto out = (*embedder)->Embed(part);
    if (!out.ok()) {
      std::fprintf(stderr, "embed_bench: %s\n", out.status().ToString().c_str());
      return 1;
    }
    if (i == 0) first.assign(out->at(0).begin(), out->at(0).begin() + 4);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "{\"texts\": %zu, \"seconds\": %.3f, \"texts_per_s\": %.2f, \"first\": [%.6f, %.6f, %.6f, "
      "%.6f]}\n",
      texts.size(), s, static_cast<double>(texts.size()) / s, first[0], first[1], first[2],
      first[3]);
  return 0;
}
