// UTF-8 helpers of the tokenizer: validation, and the boundary between complete characters and an
// unfinished tail (for the streaming decoder).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rag {

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates, code points above
// U+10FFFF and truncated sequences are invalid), or std::string_view::npos when all is valid.
size_t FindInvalidUtf8(std::string_view s);

// Appends the valid UTF-8 characters of `bytes` to `out`, invalid sequences replaced by U+FFFD
// (one per maximal invalid subpart, as Python's and Rust's lossy decoders do). When
// `keep_incomplete_tail` is true, a final sequence that is a valid prefix of a character (it may
// still be completed by later bytes) is not emitted; its length is returned so the caller can
// hold it. Otherwise the tail is replaced by U+FFFD and 0 is returned.
size_t AppendUtf8Lossy(std::string_view bytes, bool keep_incomplete_tail, std::string* out);

}  // namespace rag
