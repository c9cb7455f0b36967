#include "engine/bert/wordpiece.h"

#include <algorithm>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "common/utf8.h"
#include "engine/bert/unicode_tables.h"

namespace rag {
namespace {

namespace uc = bert_unicode;

// Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF); on error the byte offset
// of the bad sequence is put in *bad.
bool DecodeUtf8(std::string_view s, std::u32string* out, size_t* bad) {
  out->clear();
  out->reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int len;
    char32_t c;
    if (b < 0x80) {
      len = 1;
      c = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      c = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      c = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      c = b & 0x07;
    } else {
      *bad = i;
      return false;
    }
    if (i + len > s.size()) {
      *bad = i;
      return false;
    }
    for (int j = 1; j < len; ++j) {
      const unsigned char cb = static_cast<unsigned char>(s[i + j]);
      if ((cb & 0xC0) != 0x80) {
        *bad = i;
        return false;
      }
      c = (c << 6) | (cb & 0x3F);
    }
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      *bad = i;
      return false;
    }
    out->push_back(c);
    i += len;
  }
  return true;
}

Status Field(const std::string& name, const std::string& field, const std::string& why) {
  return Unsupported(name + ": " + field + ": " + why);
}

// The normalizer's boolean option: absent or null gives `fallback`.
bool BoolOr(const JsonValue& obj, std::string_view key, bool fallback) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->is_bool() ? v->as_bool() : fallback;
}

}  // namespace

StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Load(const std::string& path) {
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return FromJson(text, path);
}

StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromJson(
    std::string_view json, const std::string& name) {
  RAG_ASSIGN_OR_RETURN(JsonValue root, ReadJson(json, name));
  if (!root.is_object()) return InvalidArgument(name + ": not a JSON object");
  WordPieceOptions options;
  const JsonValue* norm = root.Find("normalizer");
  if (norm == nullptr || !norm->is_object() || norm->Find("type") == nullptr ||
      norm->Find("type")->as_string() != "BertNormalizer") {
    return Field(name, "normalizer", "only BertNormalizer is supported");
  }
  options.clean_text = BoolOr(*norm, "clean_text", true);
  options.handle_chinese_chars = BoolOr(*norm, "handle_chinese_chars", true);
  options.lowercase = BoolOr(*norm, "lowercase", true);
  options.strip_accents = BoolOr(*norm, "strip_accents", options.lowercase);
  const JsonValue* pre = root.Find("pre_tokenizer");
  if (pre == nullptr || !pre->is_object() || pre->Find("type") == nullptr ||
      pre->Find("type")->as_string() != "BertPreTokenizer") {
    return Field(name, "pre_tokenizer", "only BertPreTokenizer is supported");
  }
  const JsonValue* model = root.Find("model");
  if (model == nullptr || !model->is_object() || model->Find("type") == nullptr ||
      model->Find("type")->as_string() != "WordPiece") {
    return Field(name, "model.type", "only WordPiece is supported");
  }
  if (const JsonValue* v = model->Find("unk_token"); v != nullptr && v->is_string()) {
    options.unk_token = v->as_string();
  }
  if (const JsonValue* v = model->Find("continuing_subword_prefix");
      v != nullptr && v->is_string()) {
    options.continuing_prefix = v->as_string();
  }
  if (const JsonValue* v = model->Find("max_input_chars_per_word");
      v != nullptr && v->is_integer()) {
    options.max_input_chars_per_word = static_cast<int>(v->as_int());
  }
  const JsonValue* vocab = model->Find("vocab");
  if (vocab == nullptr || !vocab->is_object() || vocab->size() == 0) {
    return InvalidArgument(name + ": model.vocab: missing or empty");
  }
  std::vector<std::string> tokens(vocab->size());
  for (const auto& [token, id] : vocab->members()) {
    if (!id.is_integer() || id.as_int() < 0 || id.as_int() >= static_cast<int64_t>(tokens.size()) ||
        !tokens[static_cast<size_t>(id.as_int())].empty()) {
      return InvalidArgument(name + ": model.vocab: bad or repeated id for token \"" + token +
                             "\"");
    }
    tokens[static_cast<size_t>(id.as_int())] = token;
  }
  std::vector<Added> added;
  if (const JsonValue* list = root.Find("added_tokens"); list != nullptr && list->is_array()) {
    for (const JsonValue& t : list->items()) {
      const JsonValue* content = t.Find("content");
      const JsonValue* id = t.Find("id");
      if (content == nullptr || !content->is_string() || id == nullptr || !id->is_integer()) {
        return InvalidArgument(name + ": added_tokens: entry without content or id");
      }
      if (BoolOr(t, "normalized", false) || BoolOr(t, "lstrip", false) ||
          BoolOr(t, "rstrip", false) || BoolOr(t, "single_word", false)) {
        return Field(name, "added_tokens",
                     "\"" + content->as_string() + "\" uses normalized/lstrip/rstrip/single_word");
      }
      added.push_back({content->as_string(), static_cast<int32_t>(id->as_int())});
    }
  }
  auto tok = std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer());
  RAG_RETURN_IF_ERROR(tok->Init(std::move(tokens), options, std::move(added), name));
  return tok;
}

StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromVocab(
    const std::vector<std::string>& vocab, const WordPieceOptions& options) {
  std::vector<Added> added;
  for (const std::string* special : {&options.unk_token, &options.cls_token, &options.sep_token}) {
    auto it = std::find(vocab.begin(), vocab.end(), *special);
    if (it != vocab.end()) added.push_back({*special, static_cast<int32_t>(it - vocab.begin())});
  }
  auto tok = std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer());
  RAG_RETURN_IF_ERROR(tok->Init(vocab, options, std::move(added), "vocabulary"));
  return tok;
}

Status WordPieceTokenizer::Init(std::vector<std::string> tokens, const WordPieceOptions& options,
                                std::vector<Added> added, const std::string& name) {
  options_ = options;
  tokens_ = std::move(tokens);
  const std::string& prefix = options_.continuing_prefix;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    ids_.emplace(t, static_cast<int32_t>(i));
    if (!prefix.empty() && t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
      continuation_ids_.emplace(t.substr(prefix.size()), static_cast<int32_t>(i));
    }
  }
  auto id_of = [&](const std::string& t, int32_t* out) -> Status {
    auto it = ids_.find(t);
    if (it == ids_.end()) return InvalidArgument(name + ": the vocabulary has no token " + t);
    *out = it->second;
    return Status::Ok();
  };
  RAG_RETURN_IF_ERROR(id_of(options_.unk_token, &unk_id_));
  RAG_RETURN_IF_ERROR(id_of(options_.cls_token, &cls_id_));
  RAG_RETURN_IF_ERROR(id_of(options_.sep_token, &sep_id_));
  if (options_.max_input_chars_per_word < 1) {
    return InvalidArgument(name + ": max_input_chars_per_word must be positive");
  }
  added.erase(
      std::remove_if(added.begin(), added.end(), [](const Added& a) { return a.content.empty(); }),
      added.end());
  std::stable_sort(added.begin(), added.end(), [](const Added& a, const Added& b) {
    return a.content.size() > b.content.size();
  });
  added_ = std::move(added);
  return Status::Ok();
}

std::string_view WordPieceTokenizer::Token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return tokens_[static_cast<size_t>(id)];
}

StatusOr<std::vector<int32_t>> WordPieceTokenizer::Encode(std::string_view text,
                                                          int max_length) const {
  if (max_length < 2) return InvalidArgument("max_length must be at least 2 ([CLS] and [SEP])");
  std::vector<int32_t> ids{cls_id_};
  RAG_ASSIGN_OR_RETURN(std::vector<int32_t> pieces, EncodePieces(text));
  const size_t keep = std::min(pieces.size(), static_cast<size_t>(max_length - 2));
  ids.insert(ids.end(), pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(sep_id_);
  return ids;
}

StatusOr<std::vector<int32_t>> WordPieceTokenizer::EncodePieces(std::string_view text) const {
  std::u32string chars;
  size_t bad = 0;
  if (!DecodeUtf8(text, &chars, &bad)) {
    return InvalidArgument("text is not valid UTF-8 at byte " + std::to_string(bad));
  }
  std::vector<int32_t> ids;
  // Added tokens split the text before anything else (leftmost, longest at a position).
  size_t start = 0, pos = 0;
  std::u32string stretch;
  while (pos < text.size()) {
    const Added* hit = nullptr;
    for (const Added& a : added_) {
      if (text.compare(pos, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    DecodeUtf8(text.substr(start, pos - start), &stretch, &bad);
    EncodeStretch(stretch, &ids);
    ids.push_back(hit->id);
    pos += hit->content.size();
    start = pos;
  }
  DecodeUtf8(text.substr(start), &stretch, &bad);
  EncodeStretch(stretch, &ids);
  return ids;
}

void WordPieceTokenizer::EncodeStretch(const std::u32string& text,
                                       std::vector<int32_t>* ids) const {
  // Normalize.
  std::u32string norm, step;
  norm.reserve(text.size());
  for (char32_t c : text) {
    if (options_.clean_text) {
      if (uc::IsRemoved(c)) continue;
      if (uc::IsCleanWhitespace(c)) c = ' ';
    }
    step.clear();
    if (options_.strip_accents) {
      uc::AppendStripped(c, &step);
    } else {
      step.push_back(c);
    }
    const bool pad = options_.handle_chinese_chars && uc::IsChinese(c);
    if (pad) norm.push_back(' ');
    for (char32_t s : step) {
      if (options_.lowercase) {
        uc::AppendLower(s, &norm);
      } else {
        norm.push_back(s);
      }
    }
    if (pad) norm.push_back(' ');
  }
  // Pre-tokenize: whitespace separates words, punctuation characters are words of their own.
  std::u32string word;
  auto flush = [&] {
    if (!word.empty()) EncodeWord(word, ids);
    word.clear();
  };
  for (char32_t c : norm) {
    if (uc::IsWhitespace(c)) {
      flush();
    } else if (uc::IsPunctuation(c)) {
      flush();
      word.push_back(c);
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
}

void WordPieceTokenizer::EncodeWord(const std::u32string& word, std::vector<int32_t>* ids) const {
  if (word.size() > static_cast<size_t>(options_.max_input_chars_per_word)) {
    ids->push_back(unk_id_);
    return;
  }
  // Byte offsets of each character in the word's UTF-8 form, so pieces are substrings.
  std::string utf8;
  std::vector<size_t> offset;
  for (char32_t c : word) {
    offset.push_back(utf8.size());
    AppendUtf8(c, &utf8);
  }
  offset.push_back(utf8.size());
  const size_t first = ids->size();
  size_t start = 0;
  std::string piece;
  while (start < word.size()) {
    int32_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      piece.assign(utf8, offset[start], offset[end] - offset[start]);
      const auto& map = start == 0 ? ids_ : continuation_ids_;
      auto it = map.find(piece);
      if (it != map.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids->resize(first);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    start = end;
  }
}

}  // namespace rag
