// The tokenizer of the engine: a Hugging Face tokenizer.json of byte-level BPE (Llama 3, Hermes 3),
// encoding and decoding exactly as Hugging Face `tokenizers` does (golden-tested on >300 strings).
//
// Supported tokenizer.json: normalizer null; pre_tokenizer a Sequence of Split (Regex pattern,
// behavior Isolated) + ByteLevel (use_regex false), or a single ByteLevel (use_regex true, GPT-2
// pattern), add_prefix_space false; model BPE without dropout, byte fallback or subword affixes,
// merges as "a b" strings or [a, b] pairs; added_tokens without lstrip/rstrip/single_word.
// Anything else is refused with kUnsupported naming the file and the field. The post_processor
// is not applied: Encode never adds BOS (callers put <|begin_of_text|> where they want it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/bpe.h"
#include "engine/pretokenizer.h"

namespace rag {

class GgufFile;
class JsonValue;

class Tokenizer {
 public:
  // Reads and checks a tokenizer.json. NotFound when the file is missing; InvalidArgument for
  // malformed JSON or fields; Unsupported for features we do not implement.
  static StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // The same from the file's text; `name` stands for the file in error messages.
  static StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json, const std::string& name);
  // From a GGUF file's metadata (tokenizer.ggml.model "gpt2"): tokens, merges, token types
  // (control tokens become special added tokens, user-defined ones plain added tokens), and the
  // split pattern that tokenizer.ggml.pre names. Implemented in tokenizer_gguf.cc.
  static StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  enum class Special {
    kRecognize,  // special tokens written in the text become their ids (HF's encode does this)
    kAsText,     // special tokens in the text are plain text (for untrusted content)
  };

  // Token ids of `text`, without BOS: added tokens first (leftmost-longest match), then the regex
  // split and BPE on the stretches between them. Non-special added tokens are always recognized.
  // InvalidArgument when `text` is not valid UTF-8 (names the byte offset). Thread-safe.
  StatusOr<std::vector<int32_t>> Encode(std::string_view text, Special special = Special::kRecognize) const;

  // The bytes of the tokens concatenated (may end inside a UTF-8 character; ids that are not in
  // the vocabulary contribute nothing). Added tokens give their content.
  std::string Decode(std::span<const int32_t> ids) const;
  // The bytes of one token, "" for unknown ids.
  std::string_view TokenBytes(int32_t id) const;

  // Id of a token given as its text (an added token's content like "<|im_end|>", or a vocabulary
  // token's bytes), or nullopt.
  std::optional<int32_t> TokenId(std::string_view token) const;
  bool IsSpecial(int32_t id) const;
  // One past the largest id (vocabulary and added tokens): the logits' width.
  int32_t vocab_size() const { return vocab_size_; }
  const std::string& name() const { return name_; }

 private:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special;
    bool normalized;
  };

  Tokenizer(BpeModel bpe, std::unique_ptr<RegexSplitter> splitter)
      : bpe_(std::move(bpe)), splitter_(std::move(splitter)) {}
  static StatusOr<std::unique_ptr<Tokenizer>> Build(const JsonValue& root, const std::string& name);
  void IndexAddedTokens();
  // Longest added token of the given kind starting at text[pos], or nullptr.
  const AddedToken* MatchAddedAt(std::string_view text, size_t pos, bool normalized_pass,
                                 Special special) const;
  Status EncodeOrdinary(std::string_view text, std::vector<int32_t>* ids) const;
  Status EncodeAddedPass(std::string_view text, bool normalized_pass, Special special,
                         std::vector<int32_t>* ids) const;

  std::string name_;
  BpeModel bpe_;
  std::unique_ptr<RegexSplitter> splitter_;
  std::vector<AddedToken> added_;             // sorted by descending content length
  std::vector<int32_t> added_by_first_[256];  // indices into added_, per first byte, longest first
  std::vector<int32_t> added_index_of_id_;    // id -> index into added_, -1 when not added
  int32_t vocab_size_ = 0;
};

// Turns ids into text while they are generated: Feed returns only complete UTF-8 characters and
// holds back a character whose bytes are split across tokens until it is completed. Bytes that
// can never form a character become U+FFFD, as Hugging Face's lossy decode does. Not thread-safe;
// one per stream. The Tokenizer must outlive it.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::string Feed(int32_t id);
  // Everything still held (an unfinished character becomes U+FFFD); the decoder is then empty.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;  // a valid prefix of one UTF-8 character, at most 3 bytes
};

}  // namespace rag
