// Text helpers shared by the parsers of the ingest module (internal to ingest/): decoding the
// bytes of a text-like file to UTF-8, newline and whitespace normalisation, titles.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ingest/document.h"

namespace rag::ingest_internal {

// Longest title we keep, in bytes (cut at a word or character boundary).
inline constexpr size_t kMaxTitleBytes = 120;

// Decodes the bytes of a text-like file (plain text, Markdown, HTML) to valid UTF-8:
// - a UTF-8 BOM is stripped; UTF-16 with a BOM (what Windows editors save) is converted;
// - valid UTF-8 passes through unchanged;
// - invalid UTF-8 that contains no valid multi-byte sequence at all is taken as Windows-1252
//   (legacy Western files, whose accented letters we would otherwise lose), otherwise each
//   invalid byte becomes U+FFFD (a mostly UTF-8 file with a few corrupt bytes keeps its text).
// Fails, with a message that starts with `filename`, on NUL bytes outside UTF-16 (a binary
// file given a text extension).
StatusOr<std::string> DecodeTextFile(std::string_view bytes, const std::string& filename);

// "\r\n" and lone "\r" become "\n".
std::string NormalizeNewlines(std::string_view s);

// True for the ASCII whitespace bytes: space, \t, \n, \v, \f, \r.
inline bool IsAsciiSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// `s` without leading and trailing ASCII whitespace.
std::string_view TrimAscii(std::string_view s);

// True when `s` has nothing but ASCII whitespace.
bool IsBlank(std::string_view s);

// Runs of whitespace (ASCII, and U+00A0) become one space; leading and trailing whitespace go.
std::string CollapseWhitespace(std::string_view s);

// The longest prefix of `s` that is at most `max_bytes` long and ends at a UTF-8 character
// boundary.
std::string_view Utf8Prefix(std::string_view s, size_t max_bytes);

// A title made from `text`: whitespace collapsed, at most kMaxTitleBytes (cut at the last space
// when there is one in the second half, else at a character boundary). "" for blank text.
std::string MakeTitle(std::string_view text);

// A title from the first line of the document that makes a non-empty title; "" when none.
std::string FirstLineTitle(const ParsedDocument& doc);

// The last resort for a document whose text yields no title (only U+00A0 on its first line,
// say): the file's base name.
std::string FileNameTitle(const std::string& filename);

// True when every page of `doc` is blank.
bool HasNoText(const ParsedDocument& doc);

// The error of a document without text: "<filename>: the document has no text".
Status NoTextError(const std::string& filename);

}  // namespace rag::ingest_internal
