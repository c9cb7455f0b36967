// `rag eval-answers QA.jsonl`: answers every question of a QA file (one JSON object a line with
// a "question"; other fields such as "gold" are ignored) and reports, ALCE-style (Gao et al.
// 2023, "Enabling Large Language Models to Generate Text with Citations"), with the lexical
// support measure of retrieval/answer_attribution.h in place of ALCE's NLI model:
//   answer_support_rate  claim sentences that some retrieved passage supports / claim sentences
//   citation_precision   cited (sentence, passage span) pairs whose span, re-read from the
//                        passage by its offsets, supports the sentence / cited pairs
//   citation_recall      supported claim sentences that carry a citation / supported ones
//   model_tag_precision  the model's own <co:N> (sentence, source) pairs that verify / all such
//                        pairs (before attribution repairs them; absent when no tags)
// The delivered citations are verified before they are returned, so precision and recall
// check the pipeline end to end (sentence and span offsets, attribution): anything below 1.0 is
// a bug. The model's raw tag precision and the support rate measure the model.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "common/json_util.h"
#include "ingest/chunker.h"
#include "retrieval/answer_attribution.h"
#include "retrieval/text_terms.h"
#include "server/assistant.h"
#include "server/cli_commands.h"

namespace rag {
namespace {

// Code-point span [start, end) of UTF-8 text as a byte substring.
std::string CodePointSubstr(const std::string& s, size_t start, size_t end) {
  size_t cp = 0, b0 = s.size(), b1 = s.size();
  for (size_t i = 0; i <= s.size(); ++i) {
    const bool boundary = i == s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (!boundary) continue;
    if (cp == start && b0 == s.size()) b0 = i;
    if (cp == end) {
      b1 = i;
      break;
    }
    ++cp;
  }
  return b0 <= b1 ? s.substr(b0, b1 - b0) : std::string();
}

// Unique stemmed content terms, as answer_attribution.cc counts them.
size_t ContentTermCount(const std::string& text) {
  std::set<std::string> terms;
  for (const auto& w : WordTokens(text)) {
    if (!IsStopWord(w)) terms.insert(Stem(w));
  }
  return terms.size();
}

struct Totals {
  int questions = 0, failed = 0, no_answer = 0;
  int claims = 0, supported = 0, supported_cited = 0;
  int cited_pairs = 0, cited_pairs_ok = 0;
  int tag_pairs = 0, tag_pairs_ok = 0;
};

// Adds one answer to the totals, re-checking its sentences and spans independently of
// AttributeAnswer's own bookkeeping.
void Score(const QueryResult& r, const AttributionOptions& opt, Totals* t) {
  const AttributedAnswer& a = r.answer;
  t->tag_pairs += a.tag_pairs;
  t->tag_pairs_ok += a.tag_pairs_supported;
  if (a.citations.empty() && a.unsupported.empty()) ++t->no_answer;
  for (const VerifiedCitation& c : a.citations) {
    for (const SpanSupport& s : c.support) {
      ++t->cited_pairs;
      if (s.source < 0 || s.source >= static_cast<int>(r.passages.size())) continue;
      const std::string span =
          CodePointSubstr(r.passages[s.source].chunk.text, s.passage_start, s.passage_end);
      if (BestSupport(c.text, span, s.source).score >= opt.min_support) ++t->cited_pairs_ok;
    }
  }
  for (const SentenceSpan& s : SplitSentences(a.answer)) {
    const std::string text = a.answer.substr(s.begin, s.end - s.begin);
    if (ContentTermCount(text) < opt.min_terms) continue;
    ++t->claims;
    bool supported = false;
    for (const Passage& p : r.passages) {
      supported = supported || BestSupport(text, p.chunk.text, p.index).score >= opt.min_support;
    }
    if (!supported) continue;
    ++t->supported;
    const size_t start = Utf8Length(std::string_view(a.answer).substr(0, s.begin));
    const size_t end = start + Utf8Length(text);
    bool cited = false;
    for (const VerifiedCitation& c : a.citations) cited = cited || (c.start < end && start < c.end);
    t->supported_cited += cited ? 1 : 0;
  }
}

Json Ratio(int num, int den) { return den > 0 ? Json(static_cast<double>(num) / den) : Json(nullptr); }

}  // namespace

int RunEvalAnswersCommand(const CommonFlags& common, const EvalAnswersFlags& flags) {
  std::ifstream in(flags.qa_path);
  if (!in) {
    std::fprintf(stderr, "rag eval-answers: cannot read %s\n", flags.qa_path.c_str());
    return 1;
  }
  AssistantOptions options;
  options.data_dir = common.data_dir;
  options.embedder_path = ResolveEmbedder(common);
  std::string error;
  if (!ResolveAnswerFlags(flags.answer, &options, &error)) {
    std::fprintf(stderr, "rag eval-answers: %s\n", error.c_str());
    return 2;
  }
  auto assistant = Assistant::Open(options);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag eval-answers: %s\n", assistant.status().message().c_str());
    return 1;
  }
  Totals t;
  const auto t0 = std::chrono::steady_clock::now();
  std::string line;
  int line_no = 0;
  while (std::getline(in, line) && (flags.limit == 0 || t.questions < flags.limit)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("question") || !j["question"].is_string()) {
      std::fprintf(stderr, "rag eval-answers: %s:%d: not a JSON object with a \"question\" string\n",
                   flags.qa_path.c_str(), line_no);
      return 1;
    }
    ++t.questions;
    QueryRequest request;
    request.question = j["question"].get<std::string>();
    request.top_k = flags.top_k;
    StatusOr<QueryResult> r = (*assistant)->Query(request);
    if (!r.ok()) {
      std::fprintf(stderr, "rag eval-answers: %s:%d: %s\n", flags.qa_path.c_str(), line_no,
                   r.status().message().c_str());
      ++t.failed;
      continue;
    }
    Score(*r, options.attribution, &t);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Json report = {{"questions", t.questions},
                 {"failed", t.failed},
                 {"no_answer", t.no_answer},
                 {"mode", (*assistant)->mode()},
                 {"model", (*assistant)->model_name()},
                 {"top_k", flags.top_k},
                 {"claim_sentences", t.claims},
                 {"answer_support_rate", Ratio(t.supported, t.claims)},
                 {"citation_precision", Ratio(t.cited_pairs_ok, t.cited_pairs)},
                 {"citation_recall", Ratio(t.supported_cited, t.supported)},
                 {"model_tag_precision", Ratio(t.tag_pairs_ok, t.tag_pairs)},
                 {"min_support", options.attribution.min_support},
                 {"seconds", seconds}};
  if (!flags.json_only) {
    // "n/a" when a rate has no denominator (e.g. a model that emits no tags).
    auto show = [](const Json& v) {
      char buf[32];
      if (!v.is_number()) return std::string("n/a");
      std::snprintf(buf, sizeof(buf), "%.3f", v.get<double>());
      return std::string(buf);
    };
    std::printf("%-22s %s%s%s\n", "mode", (*assistant)->mode().c_str(),
                (*assistant)->model_name().empty() ? "" : " / ", (*assistant)->model_name().c_str());
    std::printf("%-22s %d (%d failed, %d without an answer)\n", "questions", t.questions, t.failed,
                t.no_answer);
    std::printf("%-22s %d\n", "claim sentences", t.claims);
    std::printf("%-22s %s\n", "answer support rate", show(report["answer_support_rate"]).c_str());
    std::printf("%-22s %s (%d cited spans)\n", "citation precision",
                show(report["citation_precision"]).c_str(), t.cited_pairs);
    std::printf("%-22s %s\n", "citation recall", show(report["citation_recall"]).c_str());
    std::printf("%-22s %s (%d tagged pairs)\n", "model tag precision",
                show(report["model_tag_precision"]).c_str(), t.tag_pairs);
  }
  std::printf("%s\n", report.dump().c_str());
  return t.failed > 0 ? 1 : 0;
}

}  // namespace rag
