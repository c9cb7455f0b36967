// `rag eval-retrieval` end to end on the sample corpus: a question whose gold is a passage of one
// of the documents is found at rank 1, a question about nothing in the corpus is missed, and the
// report carries recall@1, recall@k and MRR@10 over both; bad QA files fail with a clear line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using Json = nlohmann::json;

std::string Rag(const std::string& data, const std::string& args) {
  return ShellQuote(RAG_BINARY) + " --log-level warn --data " + ShellQuote(data) + " " + args + " 2>&1";
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(CliEvalRetrievalTest, ScoresAQuestionSetAgainstTheIngestedCorpus) {
  testing::TempDir dir;
  const std::string data = dir.file("data");
  const std::string corpus = std::string(RAG_SOURCE_DIR) + "/corpora/sample";
  ASSERT_EQ(RunCommand(Rag(data, "ingest " + ShellQuote(corpus))).exit_code, 0);

  const std::string qa = dir.file("qa.jsonl");
  Write(qa,
        R"({"question": "Which four UIDs are special on Linux, such as the nobody overflow UID 65534?", )"
        R"("gold": "However, four UIDs are special on Linux: 0 The root super-user. 65534 The nobody UID, also called the overflow UID or similar."})"
        "\n\n"
        R"({"question": "How do I bake sourdough bread?", )"
        R"("gold": "Mix flour water salt and starter then let the dough rise overnight in a cool kitchen before baking it hot."})"
        "\n");
  auto r = RunCommand(Rag(data, "eval-retrieval " + ShellQuote(qa) + " --json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Json report = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  EXPECT_EQ(report["n"], 2);
  EXPECT_DOUBLE_EQ(report["recall@1"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(report["recall@5"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(report["mrr@10"].get<double>(), 0.5);

  auto human = RunCommand(Rag(data, "eval-retrieval " + ShellQuote(qa) + " --k 3"));
  ASSERT_EQ(human.exit_code, 0) << human.out;
  EXPECT_NE(human.out.find("2 questions: recall@1 0.500, recall@3 0.500, MRR@10 0.500"), std::string::npos)
      << human.out;

  Write(dir.file("bad.jsonl"), "{\"question\": \"no gold here\"}\n");
  auto bad = RunCommand(Rag(data, "eval-retrieval " + ShellQuote(dir.file("bad.jsonl"))));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("bad.jsonl:1: not a JSON object with \"question\" and \"gold\" strings"),
            std::string::npos) << bad.out;
  auto missing = RunCommand(Rag(data, "eval-retrieval " + ShellQuote(dir.file("none.jsonl"))));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("cannot read"), std::string::npos) << missing.out;
  auto empty_data = RunCommand(Rag(dir.file("empty"), "eval-retrieval " + ShellQuote(qa)));
  EXPECT_EQ(empty_data.exit_code, 1);
  EXPECT_NE(empty_data.out.find("run `rag ingest CORPUS"), std::string::npos) << empty_data.out;
}

}  // namespace
}  // namespace rag
