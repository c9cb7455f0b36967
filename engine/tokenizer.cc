// Encoding, decoding and lookups of Tokenizer (loading is in tokenizer_loader.cc).
#include <algorithm>

#include "engine/tokenizer.h"
#include "common/utf8.h"

namespace rag {

void Tokenizer::IndexAddedTokens() {
  std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  });
  for (auto& list : added_by_first_) list.clear();
  added_index_of_id_.assign(vocab_size_, -1);
  for (size_t i = 0; i < added_.size(); ++i) {
    added_by_first_[static_cast<uint8_t>(added_[i].content[0])].push_back(static_cast<int32_t>(i));
    added_index_of_id_[added_[i].id] = static_cast<int32_t>(i);
  }
}

const Tokenizer::AddedToken* Tokenizer::MatchAddedAt(std::string_view text, size_t pos,
                                                     bool normalized_pass, Special special) const {
  for (int32_t index : added_by_first_[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& t = added_[index];
    if (t.normalized != normalized_pass) continue;
    if (t.special && special == Special::kAsText) continue;
    if (text.compare(pos, t.content.size(), t.content) == 0) return &t;  // longest first
  }
  return nullptr;
}

// Hugging Face splits on added tokens in two passes: those with normalized=false on the raw
// text, then those with normalized=true on the (normalized) stretches left over. Without a
// normalizer the text is the same, but the pass order still decides overlapping matches.
Status Tokenizer::EncodeAddedPass(std::string_view text, bool normalized_pass, Special special,
                                  std::vector<int32_t>* ids) const {
  auto flush = [&](std::string_view stretch) -> Status {
    if (stretch.empty()) return Status::Ok();
    return normalized_pass ? EncodeOrdinary(stretch, ids)
                           : EncodeAddedPass(stretch, /*normalized_pass=*/true, special, ids);
  };
  size_t stretch_begin = 0;
  for (size_t i = 0; i < text.size();) {
    if (added_by_first_[static_cast<uint8_t>(text[i])].empty()) {
      ++i;
      continue;
    }
    const AddedToken* t = MatchAddedAt(text, i, normalized_pass, special);
    if (!t) {
      ++i;
      continue;
    }
    RAG_RETURN_IF_ERROR(flush(text.substr(stretch_begin, i - stretch_begin)));
    ids->push_back(t->id);
    i += t->content.size();
    stretch_begin = i;
  }
  return flush(text.substr(stretch_begin));
}

Status Tokenizer::EncodeOrdinary(std::string_view text, std::vector<int32_t>* ids) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  RAG_RETURN_IF_ERROR(splitter_->Split(text, &pieces));
  for (std::string_view piece : pieces) bpe_.EncodePiece(piece, ids);
  return Status::Ok();
}

StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, Special special) const {
  const size_t bad = FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    return InvalidArgument("tokenizer: the text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  RAG_RETURN_IF_ERROR(EncodeAddedPass(text, /*normalized_pass=*/false, special, &ids));
  return ids;
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return {};
  const int32_t added = added_index_of_id_[id];
  if (added >= 0) return added_[added].content;
  if (id < bpe_.size()) return bpe_.TokenBytes(id);
  return {};
}

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out.append(TokenBytes(id));
  return out;
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  for (const AddedToken& t : added_) {
    if (t.content == token) return t.id;
  }
  const int32_t id = bpe_.TokenId(token);
  if (id >= 0) return id;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return false;
  const int32_t added = added_index_of_id_[id];
  return added >= 0 && added_[added].special;
}

std::string StreamingDecoder::Feed(int32_t id) {
  pending_.append(tokenizer_.TokenBytes(id));
  std::string out;
  const size_t held = AppendUtf8Lossy(pending_, /*keep_incomplete_tail=*/true, &out);
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out;
  (void)AppendUtf8Lossy(pending_, /*keep_incomplete_tail=*/false, &out);
  pending_.clear();
  return out;
}

}  // namespace rag
