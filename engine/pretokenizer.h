// The regex split of a Hugging Face pre_tokenizer ("Split" with behavior "Isolated", or ByteLevel
// with use_regex), run with PCRE2 in UTF + UCP mode, JIT-compiled when the library supports it.
// Hugging Face runs these patterns with Oniguruma; PCRE2 accepts the Llama 3 and GPT-2 patterns
// as written (lookahead included) and the golden tests check that both split alike. Two known
// differences: \s is spelled out as Unicode White_Space (see pretokenizer.cc), and characters
// assigned after Unicode 15.0 (PCRE2 10.42's tables) may get other \p{L}/\p{N} classes than in
// Oniguruma (found by fuzzing: e.g. the Sunuwar digits of Unicode 16).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rag {

// The GPT-2 pattern that ByteLevel uses when use_regex is true.
extern const char kGpt2SplitPattern[];

class RegexSplitter {
 public:
  // InvalidArgument naming `what` when the pattern does not compile.
  static StatusOr<std::unique_ptr<RegexSplitter>> Create(const std::string& pattern,
                                                         const std::string& what);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (valid UTF-8, checked by the caller) to `pieces`: every match,
  // and every stretch between matches, in order ("Isolated"). The pieces cover `text` exactly.
  // Thread-safe.
  Status Split(std::string_view text, std::vector<std::string_view>* pieces) const;

  bool jit() const { return jit_; }

 private:
  RegexSplitter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool jit_ = false;
};

}  // namespace rag
