// A ChatML model directory for tests of model mode: the random-weight Llama 3 shaped golden
// model (tests/data/golden/llama3_vocab_bf16, 2 layers, dim 32) with the Llama 3 tokenizer whose
// reserved special tokens 34 and 35 are renamed <|im_start|>/<|im_end|>, as
// tools/make_tokenizer_golden.py does (Hermes 3 puts ChatML on reserved slots the same way).
// Random weights: tests check structure (passages in, tokens out, parsing), never quality.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "server/assistant.h"

namespace rag::testing {

inline void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

// Writes the model into `dir` (created); returns dir, or "" after a test failure.
inline std::string MakeChatMlTestModel(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string golden = std::string(RAG_TEST_DATA_DIR) + "/golden/llama3_vocab_bf16";
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
    fs::copy_file(golden + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      ADD_FAILURE() << "copy " << f << ": " << ec.message();
      return "";
    }
  }
  auto json = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/llama3-tokenizer/tokenizer.json");
  if (!json.ok()) {
    ADD_FAILURE() << json.status().ToString();
    return "";
  }
  ReplaceAll(&*json, "<|reserved_special_token_34|>", "<|im_start|>");
  ReplaceAll(&*json, "<|reserved_special_token_35|>", "<|im_end|>");
  Status st = WriteFileAtomic(dir + "/tokenizer.json", *json);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    return "";
  }
  return dir;
}

inline const char kTestNotes[] =
    "# Ferry notes\n\nThe island ferry departs from the north pier at seven o'clock every "
    "morning.\n\nTickets for the zebrafinch excursion are sold at the kiosk near the lighthouse.\n";

}  // namespace rag::testing
