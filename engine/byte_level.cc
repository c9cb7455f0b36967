#include "engine/byte_level.h"

#include <cstdint>

namespace rag {

std::vector<int> ByteLevelDecodeTable() {
  std::vector<int> table(324, -1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[printable ? b : next++] = b;
  }
  return table;
}

bool ByteLevelToBytes(const std::string& token, const std::vector<int>& table, std::string* out) {
  out->clear();
  for (size_t i = 0; i < token.size();) {
    const auto b0 = static_cast<uint8_t>(token[i]);
    uint32_t cp;
    if (b0 < 0x80) {
      cp = b0;
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < token.size()) {
      cp = ((b0 & 0x1F) << 6) | (static_cast<uint8_t>(token[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;  // the alphabet has no code point above U+07FF
    }
    if (cp >= table.size() || table[cp] < 0) return false;
    out->push_back(static_cast<char>(table[cp]));
  }
  return true;
}

}  // namespace rag
