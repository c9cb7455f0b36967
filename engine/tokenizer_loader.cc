// Loading a tokenizer.json into a Tokenizer: what is supported, and clear refusals of the rest.
#include <unordered_map>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/byte_level.h"
#include "engine/tokenizer.h"

namespace rag {
namespace {


std::string Quote(const std::string& s) { return "\"" + s + "\""; }

bool IsNullOrAbsent(const JsonValue* v) { return v == nullptr || v->is_null(); }
bool IsTrue(const JsonValue* v) { return v != nullptr && v->is_bool() && v->as_bool(); }
std::string TypeOf(const JsonValue& v) {
  const JsonValue* t = v.Find("type");
  return t && t->is_string() ? t->as_string() : "";
}

// The split pattern of a supported pre_tokenizer, or Unsupported naming the field.
StatusOr<std::string> SplitPattern(const JsonValue* pre, const std::string& name) {
  const std::string field = name + ": pre_tokenizer";
  if (IsNullOrAbsent(pre)) return Unsupported(field + " is null (byte-level BPE needs ByteLevel)");
  auto check_byte_level = [&](const JsonValue& bl, bool want_regex, const std::string& where) -> Status {
    if (IsTrue(bl.Find("add_prefix_space"))) return Unsupported(where + ".add_prefix_space true is not supported");
    const JsonValue* use_regex = bl.Find("use_regex");
    const bool regex = use_regex == nullptr || (use_regex->is_bool() && use_regex->as_bool());
    if (regex != want_regex) {
      return Unsupported(where + ".use_regex " + (regex ? "true" : "false") + " is not supported here");
    }
    return Status::Ok();
  };
  const std::string type = TypeOf(*pre);
  if (type == "ByteLevel") {
    RAG_RETURN_IF_ERROR(check_byte_level(*pre, true, field));
    return std::string(kGpt2SplitPattern);
  }
  if (type != "Sequence") return Unsupported(field + ".type " + Quote(type) + " is not supported");
  const JsonValue* list = pre->Find("pretokenizers");
  if (!list || !list->is_array() || list->size() != 2 || TypeOf(list->items()[0]) != "Split" ||
      TypeOf(list->items()[1]) != "ByteLevel") {
    return Unsupported(field + ": only a Sequence of [Split, ByteLevel] is supported");
  }
  const JsonValue& split = list->items()[0];
  const std::string split_field = field + ".pretokenizers[0]";
  const JsonValue* behavior = split.Find("behavior");
  if (!behavior || behavior->as_string() != "Isolated") {
    return Unsupported(split_field + ".behavior must be \"Isolated\"");
  }
  if (IsTrue(split.Find("invert"))) return Unsupported(split_field + ".invert true is not supported");
  const JsonValue* pattern = split.Find("pattern");
  const JsonValue* regex = pattern ? pattern->Find("Regex") : nullptr;
  if (!regex || !regex->is_string()) {
    return Unsupported(split_field + ".pattern must be {\"Regex\": ...} (String patterns are not supported)");
  }
  RAG_RETURN_IF_ERROR(check_byte_level(list->items()[1], false, field + ".pretokenizers[1]"));
  return regex->as_string();
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithPrefix("tokenizer");
  return FromJson(*text, path);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json, const std::string& name) {
  RAG_ASSIGN_OR_RETURN(JsonValue root, ReadJson(json, name));
  if (!root.is_object()) return InvalidArgument(name + ": not a JSON object");
  return Build(root, name);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Build(const JsonValue& root, const std::string& name) {
  if (!IsNullOrAbsent(root.Find("normalizer"))) {
    return Unsupported(name + ": normalizer " + Quote(TypeOf(*root.Find("normalizer"))) +
                       " is not supported (only null)");
  }
  const JsonValue* decoder = root.Find("decoder");
  if (!IsNullOrAbsent(decoder) && TypeOf(*decoder) != "ByteLevel") {
    return Unsupported(name + ": decoder.type " + Quote(TypeOf(*decoder)) + " is not supported (only ByteLevel)");
  }
  const JsonValue* model = root.Find("model");
  if (!model || !model->is_object()) return InvalidArgument(name + ": model is missing");
  if (TypeOf(*model) != "BPE") {
    return Unsupported(name + ": model.type " + Quote(TypeOf(*model)) + " is not supported (only BPE)");
  }
  if (!IsNullOrAbsent(model->Find("dropout"))) return Unsupported(name + ": model.dropout is not supported");
  if (IsTrue(model->Find("byte_fallback"))) return Unsupported(name + ": model.byte_fallback is not supported");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const JsonValue* v = model->Find(affix);
    if (v && v->is_string() && !v->as_string().empty()) {
      return Unsupported(name + ": model." + affix + " is not supported");
    }
  }
  RAG_ASSIGN_OR_RETURN(std::string pattern, SplitPattern(root.Find("pre_tokenizer"), name));

  // Vocabulary: byte-level token strings -> raw bytes, by id.
  const JsonValue* vocab = model->Find("vocab");
  if (!vocab || !vocab->is_object() || vocab->size() == 0) {
    return InvalidArgument(name + ": model.vocab must be a non-empty object");
  }
  const std::vector<int> table = ByteLevelDecodeTable();
  std::unordered_map<std::string_view, int32_t> token_id;
  token_id.reserve(vocab->size());
  std::vector<std::string> token_bytes;
  std::string bytes;
  for (const auto& [token, id_value] : vocab->members()) {
    if (!id_value.is_integer() || id_value.as_int() < 0 || id_value.as_int() >= (1 << 30)) {
      return InvalidArgument(name + ": model.vocab[" + Quote(token) + "] is not a valid id");
    }
    const auto id = static_cast<int32_t>(id_value.as_int());
    if (!ByteLevelToBytes(token, table, &bytes)) {
      return Unsupported(name + ": model.vocab[" + Quote(token) +
                         "] has characters outside the byte-level alphabet");
    }
    if (static_cast<size_t>(id) >= token_bytes.size()) token_bytes.resize(id + 1);
    token_bytes[id] = bytes;
    token_id.emplace(token, id);
  }

  // Merges, in rank order: "a b" strings (older files) or [a, b] pairs (tokenizers >= 0.20).
  const JsonValue* merges = model->Find("merges");
  if (!merges || !merges->is_array()) return InvalidArgument(name + ": model.merges must be an array");
  std::vector<std::pair<int32_t, int32_t>> merge_ids;
  merge_ids.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const JsonValue& m = merges->items()[i];
    std::string_view left, right;
    if (m.is_string()) {
      const std::string& s = m.as_string();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return InvalidArgument(name + ": model.merges[" + std::to_string(i) + "] " + Quote(s) +
                               " is not two tokens separated by one space");
      }
      left = std::string_view(s).substr(0, space);
      right = std::string_view(s).substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m.items()[0].is_string() && m.items()[1].is_string()) {
      left = m.items()[0].as_string();
      right = m.items()[1].as_string();
    } else {
      return InvalidArgument(name + ": model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [a, b]");
    }
    const auto l = token_id.find(left), r = token_id.find(right);
    if (l == token_id.end() || r == token_id.end()) {
      return InvalidArgument(name + ": model.merges[" + std::to_string(i) + "] names a token not in model.vocab");
    }
    merge_ids.emplace_back(l->second, r->second);
  }
  const bool ignore_merges = IsTrue(model->Find("ignore_merges"));
  const auto bpe_size = static_cast<int32_t>(token_bytes.size());
  RAG_ASSIGN_OR_RETURN(BpeModel bpe, BpeModel::Create(std::move(token_bytes), merge_ids, ignore_merges, name));
  RAG_ASSIGN_OR_RETURN(auto splitter, RegexSplitter::Create(pattern, name + ": pre_tokenizer"));

  std::unique_ptr<Tokenizer> tok(new Tokenizer(std::move(bpe), std::move(splitter)));
  tok->name_ = name;
  tok->vocab_size_ = bpe_size;

  const JsonValue* added = root.Find("added_tokens");
  if (added && !added->is_array()) return InvalidArgument(name + ": added_tokens must be an array");
  for (size_t i = 0; added && i < added->size(); ++i) {
    const JsonValue& a = added->items()[i];
    const std::string field = name + ": added_tokens[" + std::to_string(i) + "]";
    const JsonValue* id = a.Find("id");
    const JsonValue* content = a.Find("content");
    if (!id || !id->is_integer() || id->as_int() < 0 || id->as_int() >= (1 << 30) || !content ||
        !content->is_string() || content->as_string().empty()) {
      return InvalidArgument(field + " needs an integer id and a non-empty content");
    }
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (IsTrue(a.Find(flag))) return Unsupported(field + "." + flag + " true is not supported");
    }
    AddedToken t{content->as_string(), static_cast<int32_t>(id->as_int()), IsTrue(a.Find("special")),
                 IsTrue(a.Find("normalized"))};
    tok->vocab_size_ = std::max(tok->vocab_size_, t.id + 1);
    tok->added_.push_back(std::move(t));
  }
  tok->IndexAddedTokens();
  return tok;
}

}  // namespace rag
