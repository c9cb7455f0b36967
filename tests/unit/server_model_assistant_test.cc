// The assistant in model mode with the real engine on the CPU (a tiny random-weight model):
// retrieval -> grounded prompt -> engine -> streamed pieces -> citations parsed and verified.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/citations.h"
#include "server/assistant.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/server_model_testing.h"

namespace rag {
namespace {

class ModelAssistantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = testing::MakeChatMlTestModel(dir_.file("chatml-tiny"));
    ASSERT_FALSE(model_dir_.empty());
    AssistantOptions options;
    options.data_dir = dir_.file("data");
    options.model_path = model_dir_;
    options.max_answer_tokens = 24;
    options.model_threads = 1;
    auto assistant = Assistant::Open(options);
    ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
    assistant_ = std::move(*assistant);
    std::ofstream(dir_.file("ferry.md")) << testing::kTestNotes;
    auto added = assistant_->IngestPath(dir_.file("ferry.md"), "default");
    ASSERT_TRUE(added.ok()) << added.status().ToString();
  }

  ::rag::testing::TempDir dir_;
  std::string model_dir_;
  std::unique_ptr<Assistant> assistant_;
};

TEST_F(ModelAssistantTest, AnswersWithTheModelAndReportsIt) {
  EXPECT_EQ(assistant_->mode(), "model");
  EXPECT_EQ(assistant_->model_name(), "chatml-tiny");
  auto r = assistant_->Query({.question = "When does the island ferry depart?"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mode, "model");
  EXPECT_EQ(r->model, "chatml-tiny");
  ASSERT_FALSE(r->passages.empty());
  // The grounded prompt holds the system text, the question and the passage: far more than 100
  // tokens; the random model then runs to max_tokens (or an eos).
  EXPECT_GT(r->prompt_tokens, 100);
  EXPECT_GT(r->completion_tokens, 0);
  EXPECT_LE(r->completion_tokens, 24);
  EXPECT_TRUE(r->finish_reason == "length" || r->finish_reason == "stop") << r->finish_reason;
  EXPECT_FALSE(r->answer.answer.empty());
  // Random tokens support nothing: no citation survives verification, and every claim
  // sentence is reported as unsupported.
  EXPECT_TRUE(r->answer.citations.empty());
  EXPECT_EQ(static_cast<int>(r->answer.unsupported.size()), r->answer.claim_sentences);
}

// The same question twice reuses the cached blocks of the first prompt, but only within one
// cache scope (one API key in the server): another scope computes its own, so the speed of an
// answer never tells one key what another asked.
TEST_F(ModelAssistantTest, CachedPromptsAreSharedOnlyWithinAScope) {
  QueryRequest a{.question = "When does the island ferry depart?"};
  a.cache_scope = 11;
  ASSERT_TRUE(assistant_->Query(a).ok());
  const int64_t hits0 = assistant_->prefix_cache_stats().hits;
  QueryRequest other = a;
  other.cache_scope = 12;
  ASSERT_TRUE(assistant_->Query(other).ok());
  EXPECT_EQ(assistant_->prefix_cache_stats().hits, hits0) << "scope 12 reused scope 11's blocks";
  ASSERT_TRUE(assistant_->Query(a).ok());
  EXPECT_GT(assistant_->prefix_cache_stats().hits, hits0 + 64) << "scope 11 did not reuse its own prompt";
}

TEST_F(ModelAssistantTest, StreamsPassagesThenPiecesThenTheResult) {
  std::vector<QueryEvent::Kind> kinds;
  std::string streamed;
  std::string final_answer;
  auto r = assistant_->QueryStream({.question = "Where are zebrafinch tickets sold?"},
                                   [&](const QueryEvent& e) {
                                     kinds.push_back(e.kind);
                                     if (e.kind == QueryEvent::Kind::kPassages) {
                                       EXPECT_FALSE(e.passages->empty());
                                     }
                                     if (e.kind == QueryEvent::Kind::kToken) streamed += e.text;
                                     if (e.kind == QueryEvent::Kind::kResult) {
                                       final_answer = e.result->answer.answer;
                                     }
                                     return true;
                                   });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_GE(kinds.size(), 3u);
  EXPECT_EQ(kinds.front(), QueryEvent::Kind::kPassages);
  EXPECT_EQ(kinds.back(), QueryEvent::Kind::kResult);
  for (size_t i = 1; i + 1 < kinds.size(); ++i) EXPECT_EQ(kinds[i], QueryEvent::Kind::kToken);
  // The pieces are the model's raw text; the answer is that text parsed.
  EXPECT_EQ(ParseCitations(streamed, static_cast<int>(r->passages.size())).answer, r->answer.answer);
  EXPECT_EQ(final_answer, r->answer.answer);
  // Greedy decoding: the same question gives the same answer.
  auto again = assistant_->Query({.question = "Where are zebrafinch tickets sold?"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->answer.answer, r->answer.answer);
}

TEST_F(ModelAssistantTest, AConsumerThatStopsCancelsTheRequest) {
  int pieces = 0;
  auto r = assistant_->QueryStream({.question = "When does the island ferry depart?"},
                                   [&](const QueryEvent& e) {
                                     if (e.kind != QueryEvent::Kind::kToken) return true;
                                     return ++pieces < 2;
                                   });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(pieces, 2);  // no event after the one that said stop
  EXPECT_EQ(assistant_->generating(), 0);
  auto after = assistant_->Query({.question = "When does the island ferry depart?"});
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

TEST(ModelAssistantOpenTest, ModeAndModelAreChecked) {
  ::rag::testing::TempDir dir;
  AssistantOptions options;
  options.data_dir = dir.file("data");
  options.mode = "model";
  auto no_model = Assistant::Open(options);
  ASSERT_FALSE(no_model.ok());
  EXPECT_EQ(no_model.status().code(), StatusCode::kInvalidArgument);
  options.mode = "poetry";
  EXPECT_FALSE(Assistant::Open(options).ok());
  options.mode = "";
  options.model_path = dir.file("missing-model");
  EXPECT_FALSE(Assistant::Open(options).ok());
  // Extractive mode loads no model even when one is named.
  options.mode = "extractive";
  auto extractive = Assistant::Open(options);
  ASSERT_TRUE(extractive.ok()) << extractive.status().ToString();
  EXPECT_EQ((*extractive)->mode(), "extractive");
  EXPECT_EQ((*extractive)->model_name(), "");
}

}  // namespace
}  // namespace rag
