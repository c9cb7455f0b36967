// The WordPiece tokenizer of BERT-family embedding models, encoding as Hugging Face `tokenizers`
// does for a tokenizer.json with a BertNormalizer, a BertPreTokenizer and a WordPiece model
// (golden-tested on all-MiniLM-L6-v2, tests/data/embedder/minilm_golden.json).
//
// Steps: special added tokens written in the text ([CLS], [SEP], ...) are matched first
// (leftmost-longest); the rest is normalized (clean text: controls dropped, whitespace to ' ';
// CJK ideographs padded with spaces; accents stripped; lowercased, each as configured), split on
// whitespace and around punctuation, and each word is cut greedily into the longest vocabulary
// pieces, "##"-prefixed after the first. A word longer than max_input_chars_per_word characters,
// or one that cannot be cut, is the single token [UNK].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace rag {

struct WordPieceOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // tokenizer.json's null means "as lowercase"
  bool lowercase = true;
  int max_input_chars_per_word = 100;
  std::string continuing_prefix = "##";
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
};

class WordPieceTokenizer {
 public:
  // Reads a tokenizer.json. NotFound when the file is missing; InvalidArgument for malformed
  // JSON or a vocabulary without the unk/cls/sep tokens; Unsupported (naming the field) for a
  // normalizer, pre-tokenizer or model other than the BERT ones.
  static StatusOr<std::unique_ptr<WordPieceTokenizer>> Load(const std::string& path);
  // The same from the file's text; `name` stands for the file in messages.
  static StatusOr<std::unique_ptr<WordPieceTokenizer>> FromJson(std::string_view json,
                                                                const std::string& name);
  // From a vocabulary (token i has id i, as in vocab.txt); the special tokens of `options` that
  // are in it are matched in text as added tokens.
  static StatusOr<std::unique_ptr<WordPieceTokenizer>> FromVocab(
      const std::vector<std::string>& vocab, const WordPieceOptions& options);

  // [CLS] pieces... [SEP], at most max_length ids (>= 2): the pieces are cut to fit, [SEP]
  // stays. InvalidArgument when text is not valid UTF-8 (names the byte offset) or
  // max_length < 2. Thread-safe.
  StatusOr<std::vector<int32_t>> Encode(std::string_view text, int max_length) const;
  // The pieces of text alone (no [CLS]/[SEP], no truncation).
  StatusOr<std::vector<int32_t>> EncodePieces(std::string_view text) const;

  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  // The token's text, "" for ids out of range.
  std::string_view Token(int32_t id) const;

 private:
  struct Added {
    std::string content;
    int32_t id;
  };
  WordPieceTokenizer() = default;
  Status Init(std::vector<std::string> tokens, const WordPieceOptions& options,
              std::vector<Added> added, const std::string& name);
  // Normalizes and pre-tokenizes one stretch between added tokens, appending the pieces.
  void EncodeStretch(const std::u32string& text, std::vector<int32_t>* ids) const;
  void EncodeWord(const std::u32string& word, std::vector<int32_t>* ids) const;

  WordPieceOptions options_;
  std::vector<std::string> tokens_;                            // id -> text
  std::unordered_map<std::string, int32_t> ids_;               // word-initial pieces
  std::unordered_map<std::string, int32_t> continuation_ids_;  // "##x" stored as "x"
  std::vector<Added> added_;                                   // longest first
  int32_t unk_id_ = -1, cls_id_ = -1, sep_id_ = -1;
};

}  // namespace rag
