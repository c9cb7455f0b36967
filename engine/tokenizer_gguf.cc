// A Tokenizer from GGUF metadata: byte-level BPE ("gpt2" model) with the pre-tokenizer that
// tokenizer.ggml.pre names.
#include <unordered_map>

#include "engine/gguf.h"
#include "engine/byte_level.h"
#include "engine/tokenizer.h"

namespace rag {
namespace {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
constexpr int64_t kTokenControl = 3;
constexpr int64_t kTokenUserDefined = 4;

// Llama 3's split pattern (its tokenizer.json; llama.cpp's "llama-bpe").
constexpr char kLlama3SplitPattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// "smollm" (SmolLM/SmolLM2; llama.cpp groups it with starcoder and refact): Hugging Face's
// pre_tokenizer is Sequence[Digits(individual_digits), ByteLevel(use_regex)], i.e. every digit is
// its own piece, then the GPT-2 pattern runs on the pieces between digits. One pattern does both:
// \p{N} first (a single digit), " ?\p{N}+" dropped (no piece holds a digit run any more), and
// the lookahead of "\s+(?!\S)" also stops before a digit, because in the two-stage split a digit
// ends the piece, where (?!\S) holds ("a  1" is "a", "  ", "1", not "a", " ", " ", "1").
constexpr char kDigitsThenGpt2SplitPattern[] =
    R"(\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+)";

// The split pattern and ignore_merges of a tokenizer.ggml.pre value, or Unsupported.
StatusOr<std::pair<std::string, bool>> PreTokenizer(const std::string& pre, const std::string& path) {
  if (pre == "llama-bpe" || pre == "llama3") return std::make_pair(std::string(kLlama3SplitPattern), true);
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    return std::make_pair(std::string(kDigitsThenGpt2SplitPattern), false);
  }
  if (pre == "gpt2" || pre == "default") return std::make_pair(std::string(kGpt2SplitPattern), false);
  return Unsupported(path + ": tokenizer.ggml.pre \"" + pre +
                     "\" is not supported (supported: llama-bpe, smollm, starcoder, refact, gpt2)");
}


}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& f) {
  const std::string& path = f.path();
  RAG_ASSIGN_OR_RETURN(const std::string model, f.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return Unsupported(path + ": tokenizer.ggml.model \"" + model + "\" is not supported (only gpt2, byte-level BPE)");
  }
  std::string pre = "default";
  if (f.Find("tokenizer.ggml.pre")) {
    RAG_ASSIGN_OR_RETURN(pre, f.GetString("tokenizer.ggml.pre"));
  }
  RAG_ASSIGN_OR_RETURN(auto split, PreTokenizer(pre, path));
  RAG_ASSIGN_OR_RETURN(const std::vector<GgufValue>* tokens,
                       f.GetArray("tokenizer.ggml.tokens", GgufValueType::kString));
  const std::vector<GgufValue>* types = nullptr;
  if (f.Find("tokenizer.ggml.token_type")) {
    RAG_ASSIGN_OR_RETURN(types, f.GetArray("tokenizer.ggml.token_type", GgufValueType::kInt32));
    if (types->size() != tokens->size()) {
      return InvalidArgument(path + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                             " entries for " + std::to_string(tokens->size()) + " tokens");
    }
  }
  RAG_ASSIGN_OR_RETURN(const std::vector<GgufValue>* merges,
                       f.GetArray("tokenizer.ggml.merges", GgufValueType::kString));

  const std::vector<int> table = ByteLevelDecodeTable();
  std::vector<std::string> token_bytes(tokens->size());
  std::unordered_map<std::string_view, int32_t> token_id;
  token_id.reserve(tokens->size());
  std::vector<AddedToken> added;
  std::string bytes;
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& text = (*tokens)[id].s;
    const int64_t type = types ? (*types)[id].i : 1;
    const auto id32 = static_cast<int32_t>(id);
    if (type == kTokenControl || type == kTokenUserDefined) {
      // Added tokens match their text as written; they stay out of the BPE vocabulary unless
      // their text is also a valid byte-level token (as in a tokenizer.json's model.vocab).
      if (!text.empty()) added.push_back({text, id32, type == kTokenControl, false});
    }
    if (ByteLevelToBytes(text, table, &bytes)) {
      token_bytes[id] = bytes;
    } else if (type != kTokenControl && type != kTokenUserDefined) {
      return Unsupported(path + ": tokenizer.ggml.tokens[" + std::to_string(id) +
                         "] has characters outside the byte-level alphabet");
    }
    token_id.emplace(text, id32);
  }
  std::vector<std::pair<int32_t, int32_t>> merge_ids;
  merge_ids.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string& s = (*merges)[i].s;
    const size_t space = s.find(' ');
    const std::string where = path + ": tokenizer.ggml.merges[" + std::to_string(i) + "]";
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return InvalidArgument(where + " is not two tokens separated by one space");
    }
    const auto l = token_id.find(std::string_view(s).substr(0, space));
    const auto r = token_id.find(std::string_view(s).substr(space + 1));
    if (l == token_id.end() || r == token_id.end()) return InvalidArgument(where + " names an unknown token");
    merge_ids.emplace_back(l->second, r->second);
  }
  const auto size = static_cast<int32_t>(token_bytes.size());
  RAG_ASSIGN_OR_RETURN(BpeModel bpe, BpeModel::Create(std::move(token_bytes), merge_ids, split.second, path,
                                                        /*allow_missing_bytes=*/true));
  RAG_ASSIGN_OR_RETURN(auto splitter, RegexSplitter::Create(split.first, path + ": tokenizer.ggml.pre"));
  std::unique_ptr<Tokenizer> tok(new Tokenizer(std::move(bpe), std::move(splitter)));
  tok->name_ = path;
  tok->vocab_size_ = size;
  tok->added_ = std::move(added);
  tok->IndexAddedTokens();
  return tok;
}

}  // namespace rag
