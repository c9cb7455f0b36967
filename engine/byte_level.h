// GPT-2's byte-level alphabet, shared by the tokenizer.json and GGUF vocabulary loaders: every
// byte is written as one printable character in the vocabulary (bytes 33-126, 161-172 and
// 174-255 as themselves, the others as U+0100 onwards).
#pragma once

#include <string>
#include <vector>

namespace rag {

// The inverse of the alphabet: code point -> byte, -1 for code points outside it.
std::vector<int> ByteLevelDecodeTable();

// Undoes the byte-level alphabet of a vocabulary token into *out; false when a character is
// outside the alphabet.
bool ByteLevelToBytes(const std::string& token, const std::vector<int>& table, std::string* out);

}  // namespace rag
