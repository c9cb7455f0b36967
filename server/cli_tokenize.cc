// `rag tokenize --tokenizer FILE`: text on stdin -> JSON array of token ids on stdout, no BOS
// (DESIGN.md section 4). Special tokens written in the text are recognized, as Hugging Face's
// encode(text, add_special_tokens=False) does.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "server/cli_commands.h"

#ifdef RAG_HAVE_TOKENIZER
#include "engine/tokenizer.h"
#endif

namespace rag {

int RunTokenizeCommand(const std::string& tokenizer_path) {
#ifdef RAG_HAVE_TOKENIZER
  auto tokenizer = Tokenizer::Load(tokenizer_path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "rag tokenize: %s\n", tokenizer.status().message().c_str());
    return 1;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto ids = (*tokenizer)->Encode(text);
  if (!ids.ok()) {
    std::fprintf(stderr, "rag tokenize: stdin: %s\n", ids.status().message().c_str());
    return 1;
  }
  std::string out = "[";
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string((*ids)[i]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
#else
  std::fprintf(stderr, "rag tokenize: this build has no tokenizer (libpcre2-8 was not found)\n");
  return 1;
#endif
}

}  // namespace rag
