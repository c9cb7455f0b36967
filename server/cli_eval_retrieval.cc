// `rag eval-retrieval QA.jsonl`: retrieves the passages of every question of a QA file (the
// format of ../shared/eval: one JSON object a line with "question" and "gold") from the data
// folder, and scores them with the shared scorer's rule (retrieval/retrieval_eval.h): recall@1,
// recall@k and MRR@10. The corpus must have been ingested into the data folder first.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/json_util.h"
#include "retrieval/retrieval_eval.h"
#include "server/assistant.h"
#include "server/cli_commands.h"

namespace rag {

int RunEvalRetrievalCommand(const CommonFlags& common, const EvalRetrievalFlags& flags) {
  std::ifstream in(flags.qa_path);
  if (!in) {
    std::fprintf(stderr, "rag eval-retrieval: cannot read %s\n", flags.qa_path.c_str());
    return 1;
  }
  std::error_code ec;
  if (!std::filesystem::exists(common.data_dir + "/rag.db", ec)) {
    std::fprintf(stderr, "rag eval-retrieval: no documents in %s: run `rag ingest CORPUS --data %s` first\n",
                 common.data_dir.c_str(), common.data_dir.c_str());
    return 1;
  }
  AssistantOptions options;
  options.data_dir = common.data_dir;
  options.embedder_path = ResolveEmbedder(common);
  options.mode = "extractive";  // retrieval only: no model is loaded
  auto assistant = Assistant::Open(options);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag eval-retrieval: %s\n", assistant.status().message().c_str());
    return 1;
  }
  RetrievalScorer scorer(flags.k);
  const auto t0 = std::chrono::steady_clock::now();
  std::string line;
  int line_no = 0;
  while (std::getline(in, line) && (flags.limit == 0 || scorer.Result().questions < flags.limit)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("question") || !j["question"].is_string() ||
        !j.contains("gold") || !j["gold"].is_string()) {
      std::fprintf(stderr, "rag eval-retrieval: %s:%d: not a JSON object with \"question\" and \"gold\" strings\n",
                   flags.qa_path.c_str(), line_no);
      return 1;
    }
    QueryRequest request;
    request.question = j["question"].get<std::string>();
    request.top_k = flags.top_k;
    request.collection = flags.collection;
    auto passages = (*assistant)->Retrieve(request);
    if (!passages.ok()) {
      std::fprintf(stderr, "rag eval-retrieval: %s:%d: %s\n", flags.qa_path.c_str(), line_no,
                   passages.status().message().c_str());
      return 1;
    }
    std::vector<std::string> texts;
    for (const Passage& p : *passages) texts.push_back(p.chunk.text);
    scorer.Add(j["gold"].get<std::string>(), texts);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const RetrievalScore s = scorer.Result();
  if (s.questions == 0) {
    std::fprintf(stderr, "rag eval-retrieval: %s has no questions\n", flags.qa_path.c_str());
    return 1;
  }
  Json report = {{"n", s.questions},
                 {"recall@1", s.recall_at_1},
                 {"recall@" + std::to_string(s.k), s.recall_at_k},
                 {"mrr@10", s.mrr_at_10},
                 {"top_k", flags.top_k},
                 {"ms_per_question", 1e3 * seconds / static_cast<double>(s.questions)}};
  if (!flags.json_only) {
    std::printf("%lld questions: recall@1 %.3f, recall@%d %.3f, MRR@10 %.3f (%.1f ms a question)\n",
                static_cast<long long>(s.questions), s.recall_at_1, s.k, s.recall_at_k, s.mrr_at_10,
                1e3 * seconds / static_cast<double>(s.questions));
  }
  std::printf("%s\n", report.dump().c_str());
  return 0;
}

}  // namespace rag
