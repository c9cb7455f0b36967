#include "engine/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace rag {

const char kGpt2SplitPattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Per-thread match data and JIT stack, grown on demand: a long whitespace run makes the
// lookahead alternative backtrack deeply, beyond the JIT's default 32 KiB machine stack.
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~ThreadMatchState() {
    if (data) pcre2_match_data_free(data);
    if (context) pcre2_match_context_free(context);
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
  }
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  if (!state.data) {
    state.data = pcre2_match_data_create(4, nullptr);
    state.context = pcre2_match_context_create(nullptr);
    state.jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(state.context, nullptr, state.jit_stack);
  }
  return state;
}

// Oniguruma's \s (what Hugging Face runs) is Unicode White_Space; PCRE2's \s with UCP also
// takes U+180E MONGOLIAN VOWEL SEPARATOR (White_Space before Unicode 6.3), which splits such
// text differently (found by fuzzing against HF). So \s and \S are spelled out as White_Space.
constexpr char kWhiteSpace[] =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Rewrites \s and \S of `pattern` as explicit White_Space classes. Unsupported for \S inside a
// character class (it cannot be spliced into one).
StatusOr<std::string> SpellOutWhitespace(const std::string& pattern, const std::string& what) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S') {
        if (in_class) return Unsupported(what + ": \\S inside a character class is not supported");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

std::string Pcre2Error(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct RegexSplitter::Impl {
  pcre2_code* code = nullptr;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

RegexSplitter::~RegexSplitter() = default;

StatusOr<std::unique_ptr<RegexSplitter>> RegexSplitter::Create(const std::string& pattern,
                                                               const std::string& what) {
  std::unique_ptr<RegexSplitter> s(new RegexSplitter());
  s->impl_ = std::make_unique<Impl>();
  RAG_ASSIGN_OR_RETURN(const std::string translated, SpellOutWhitespace(pattern, what));
  int error = 0;
  PCRE2_SIZE offset = 0;
  s->impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                 PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!s->impl_->code) {
    return InvalidArgument(what + ": the split pattern does not compile at offset " +
                           std::to_string(offset) + ": " + Pcre2Error(error));
  }
  s->jit_ = pcre2_jit_compile(s->impl_->code, PCRE2_JIT_COMPLETE) == 0;
  return s;
}

Status RegexSplitter::Split(std::string_view text, std::vector<std::string_view>* pieces) const {
  ThreadMatchState& state = MatchState();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;  // start of the next piece not yet emitted
  size_t search = 0;
  while (search < text.size()) {
    const int rc = pcre2_match(impl_->code, subject, text.size(), search, PCRE2_NO_UTF_CHECK,
                               state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return Internal("tokenizer split pattern: " + Pcre2Error(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    size_t begin = ov[0], end = ov[1];
    if (end == begin) {
      // An empty match carries no piece; step over one character so the scan moves on.
      search = begin + 1;
      while (search < text.size() && (static_cast<uint8_t>(text[search]) & 0xC0) == 0x80) ++search;
      continue;
    }
    if (begin > pos) pieces->push_back(text.substr(pos, begin - pos));
    pieces->push_back(text.substr(begin, end - begin));
    pos = search = end;
  }
  if (pos < text.size()) pieces->push_back(text.substr(pos));
  return Status::Ok();
}

}  // namespace rag
