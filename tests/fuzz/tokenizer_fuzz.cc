// Fuzz target: the Llama 3 tokenizer (engine/tokenizer.h, tests/data/llama3-tokenizer) on
// arbitrary text. Byte-level BPE is lossless: for valid UTF-8, Encode succeeds and Decode gives
// the text back, with special tokens recognized or kept as text, and every id is below
// vocab_size; invalid UTF-8 is an error, never a crash. The input's bytes read as ids also
// decode without a crash (unknown ids contribute nothing).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const rag::Tokenizer& Llama3Tokenizer() {
  static const rag::Tokenizer* tokenizer = [] {
    auto t = rag::Tokenizer::Load(RAG_TEST_DATA_DIR "/llama3-tokenizer/tokenizer.json");
    if (!t.ok()) {
      std::fprintf(stderr, "tokenizer: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    return t->release();
  }();
  return *tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rag::Tokenizer& tok = Llama3Tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool utf8 = rag::fuzz::IsValidUtf8(text);
  for (auto special : {rag::Tokenizer::Special::kRecognize, rag::Tokenizer::Special::kAsText}) {
    rag::StatusOr<std::vector<int32_t>> ids = tok.Encode(text, special);
    FUZZ_CHECK(ids.ok() == utf8);
    if (!ids.ok()) continue;
    for (int32_t id : *ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
    if (special == rag::Tokenizer::Special::kAsText) {
      for (int32_t id : *ids) FUZZ_CHECK(!tok.IsSpecial(id));
    }
    FUZZ_CHECK(tok.Decode(*ids) == text);
  }
  // The bytes as little-endian int32 ids (any value: negative, huge, unknown).
  std::vector<int32_t> raw(size / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
  std::string decoded = tok.Decode(raw);
  size_t expected = 0;
  for (int32_t id : raw) expected += tok.TokenBytes(id).size();
  FUZZ_CHECK(decoded.size() == expected);
  return 0;
}
