// UTF-8 in one place: encoding a code point, the length of the valid character at an offset
// (the rules of the Unicode standard: no overlong forms, surrogates or code points above
// U+10FFFF), validation, and the two ways invalid bytes become U+FFFD (one per byte, where code
// point offsets must stay tied to byte positions; one per maximal invalid subpart, as Python's
// and Rust's lossy decoders do, for the tokenizer's streamed text).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rag {

inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends the UTF-8 bytes of code point `cp` (<= U+10FFFF; surrogates are the caller's choice).
void AppendUtf8(uint32_t cp, std::string* out);

// Length (1-4) of the valid character that starts at s[i] (i < s.size()), 0 when none does: a
// stray continuation byte, an invalid lead byte, an overlong form, a surrogate, a code point
// above U+10FFFF, or a sequence cut off by the end of s; then *incomplete (when given) says
// whether it was cut off while still a valid prefix of a character.
size_t Utf8CharLength(std::string_view s, size_t i, bool* incomplete = nullptr);

// Byte offset of the first invalid UTF-8 sequence (truncated ones included), or
// std::string_view::npos when all is valid.
size_t FindInvalidUtf8(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

// s with every byte that is not part of a valid character replaced by U+FFFD (one each).
std::string ReplaceInvalidUtf8Bytes(std::string_view s);

// Appends the valid UTF-8 characters of `bytes` to `out`, invalid sequences replaced by U+FFFD
// (one per maximal invalid subpart). When `keep_incomplete_tail` is true, a final sequence that
// is a valid prefix of a character (it may still be completed by later bytes) is not emitted;
// its length is returned so the caller can hold it. Otherwise the tail is replaced by U+FFFD and
// 0 is returned.
size_t AppendUtf8Lossy(std::string_view bytes, bool keep_incomplete_tail, std::string* out);

}  // namespace rag
