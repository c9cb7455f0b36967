// Character classes of BERT basic tokenization, as Hugging Face `tokenizers` (BertNormalizer,
// BertPreTokenizer) defines them. The tables in unicode_tables.cc are generated from that library
// by tools/make_bert_unicode_tables.py, so they carry its Unicode versions exactly.
#pragma once

#include <cstddef>
#include <string>

namespace rag::bert_unicode {

struct CodeRange {
  char32_t first, last;  // inclusive
};
struct CodeMapping {
  char32_t from;
  const char32_t* to;  // NUL-terminated, at most 3 code points, may be empty
};

// Sorted by code point, generated.
extern const CodeRange kRemoved[];  // dropped by clean_text (NUL, U+FFFD, controls, formats)
extern const size_t kRemovedSize;
extern const CodeRange kWhitespace[];  // turned into ' ' by clean_text (space itself excluded)
extern const size_t kWhitespaceSize;
extern const CodeRange kPunctuation[];  // split off as their own words by the pre-tokenizer
extern const size_t kPunctuationSize;
extern const CodeRange kChinese[];  // padded with spaces (handle_chinese_chars)
extern const size_t kChineseSize;
extern const CodeMapping kStripAccents[];  // NFD without Mn marks, where it differs (no Hangul)
extern const size_t kStripAccentsSize;
extern const CodeMapping kLowercase[];  // Unicode lowercase, where it differs
extern const size_t kLowercaseSize;

bool IsRemoved(char32_t c);
// clean_text's whitespace: ' ', \t, \n, \r and the Zs characters.
bool IsCleanWhitespace(char32_t c);
// The pre-tokenizer's split characters (Unicode White_Space), for text not cleaned first.
bool IsWhitespace(char32_t c);
bool IsPunctuation(char32_t c);
// The CJK ideographs that become words of their own (close to, not equal to, the original
// BERT's blocks: the library's ranges are authoritative here).
bool IsChinese(char32_t c);
// Appends c with accents stripped (NFD, Mn removed; Hangul syllables as their jamo).
void AppendStripped(char32_t c, std::u32string* out);
// Appends the lowercase of c (one or two code points).
void AppendLower(char32_t c, std::u32string* out);

}  // namespace rag::bert_unicode
