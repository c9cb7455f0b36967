// Encode speed of our tokenizer: tokenizer_bench TOKENIZER_JSON CHUNKS_FILE [REPEATS]
// CHUNKS_FILE holds texts separated by NUL bytes (bench/tokenizer_bench.sh writes it); each is
// encoded with one Encode call, single-threaded, as Hugging Face's encode() is called per chunk.
// Prints "ours: <bytes> bytes, <tokens> tokens, <MB/s> MB/s": the best of REPEATS runs, each
// with a freshly loaded tokenizer so that the word cache starts empty.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "common/file_util.h"
#include "engine/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tokenizer_bench TOKENIZER_JSON CHUNKS_FILE [REPEATS]\n");
    return 2;
  }
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  auto text = rag::ReadFileToString(argv[2]);
  if (!text.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", text.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string_view> chunks;
  size_t bytes = 0;
  for (size_t pos = 0; pos <= text->size();) {
    size_t end = text->find('\0', pos);
    if (end == std::string::npos) end = text->size();
    if (end > pos) chunks.push_back(std::string_view(*text).substr(pos, end - pos));
    bytes += end - pos;
    pos = end + 1;
  }
  double best = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    auto tok = rag::Tokenizer::Load(argv[1]);
    if (!tok.ok()) {
      std::fprintf(stderr, "tokenizer_bench: %s\n", tok.status().ToString().c_str());
      return 1;
    }
    tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::string_view chunk : chunks) {
      auto ids = (*tok)->Encode(chunk);
      if (!ids.ok()) {
        std::fprintf(stderr, "tokenizer_bench: %s\n", ids.status().ToString().c_str());
        return 1;
      }
      tokens += ids->size();
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("ours: %zu bytes, %zu tokens, %.2f MB/s\n", bytes, tokens, bytes / best / 1e6);
  return 0;
}
