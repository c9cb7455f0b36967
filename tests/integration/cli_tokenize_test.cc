// `rag tokenize` end to end: the binary's ids for golden strings (Hugging Face tokenizers' ids,
// tests/data/tokenizer/llama3_golden.jsonl) and one clear error line for a missing file.
#include <gtest/gtest.h>

#include <sstream>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "tests/testing/subprocess.h"

namespace rag {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

const std::string kData = RAG_TEST_DATA_DIR;
const std::string kTokenizer = kData + "/llama3-tokenizer/tokenizer.json";

std::string Tokenize(const std::string& tokenizer) {
  return ShellQuote(RAG_BINARY) + " tokenize --tokenizer " + ShellQuote(tokenizer);
}

TEST(CliTokenizeTest, PrintsTheGoldenIdsForAFewStrings) {
#ifndef RAG_HAVE_TOKENIZER
  GTEST_SKIP() << "built without the tokenizer";
#endif
  auto golden = ReadFileToString(kData + "/tokenizer/llama3_golden.jsonl");
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  std::istringstream lines(*golden);
  std::string line;
  int checked = 0;
  for (int n = 0; std::getline(lines, line); ++n) {
    if (n % 70 != 7) continue;  // 5 strings spread over the file (each run loads the 9 MB file)
    auto json = ReadJson(line, "golden line");
    ASSERT_TRUE(json.ok()) << json.status().ToString();
    const std::string& text = json->Find("text")->as_string();
    std::string want = "[";
    for (const JsonValue& id : json->Find("ids")->items()) {
      want += (want.size() > 1 ? "," : "") + std::to_string(id.as_int());
    }
    want += "]\n";
    auto r = RunCommand(Tokenize(kTokenizer), text);
    EXPECT_EQ(r.exit_code, 0) << text;
    EXPECT_EQ(r.out, want) << "text: " << text;
    ++checked;
  }
  EXPECT_GE(checked, 5);
  // Special tokens in the text are recognized; no BOS is added (ids from HF tokenizers 0.23.3).
  auto r = RunCommand(Tokenize(kTokenizer), "<|begin_of_text|>Hello<|eot_id|>");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "[128000,9906,128009]\n");
}

TEST(CliTokenizeTest, MissingTokenizerFileIsOneErrorLine) {
  auto r = RunCommand(Tokenize("/nonexistent/tokenizer.json") + " 2>&1", "hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("rag tokenize: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/tokenizer.json"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
}

}  // namespace
}  // namespace rag
